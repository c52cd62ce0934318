"""The ``image_properties`` filter: the host supports the image's architecture and hypervisor."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nimbus.filters.base import BaseHostFilter
from nimbus.filters.types import Bools, Facts, HostArrays, HostState, Ints, RequestSpec

__all__ = ["ImagePropertiesFilter", "version_predicate"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_PREDICATE = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)?\s*([0-9][0-9.]*)\s*$")


def _version_int(text: str) -> int:
    # Nova's convert_version_to_int: 1.2.3 -> 1002003.
    result = 0
    for part in text.split("."):
        result = result * 1000 + int(part or 0)
    return result if "." in text else int(text)


def version_predicate(text: str) -> tuple[Callable[[Any, Any], bool], int] | None:
    """Parse ``img_hv_requested_version`` (``">=6000"``, ``"2.11"``); ``None`` if unreadable."""
    match = _PREDICATE.match(text)
    if match is None:
        return None
    return _OPS[match.group(1) or "=="], _version_int(match.group(2))


def _wanted(props: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    def pick(*names: str) -> str | None:
        for name in names:
            value = props.get(name)
            if value:
                return str(value).lower()
        return None

    return (
        pick("hw_architecture", "architecture"),
        pick("img_hv_type", "hypervisor_type"),
        pick("hw_vm_mode", "vm_mode"),
    )


def _supported(
    wanted: tuple[str | None, str | None, str | None],
    supported: tuple[tuple[str, str, str], ...],
) -> bool:
    arch, hv_type, vm_mode = wanted
    for s_arch, s_hv, s_mode in supported:
        if (
            (arch is None or arch == s_arch.lower())
            and (hv_type is None or hv_type == s_hv.lower())
            and (vm_mode is None or vm_mode == s_mode.lower())
        ):
            return True
    return False


class ImagePropertiesFilter(BaseHostFilter):
    """Pass hosts whose supported instances match the image's architecture, type and mode."""

    name = "image_properties"

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        props = spec.image_properties
        wanted = _wanted(props)
        requested = props.get("img_hv_requested_version")
        if wanted != (None, None, None):
            if not host_state.supported_instances:
                return self.reject(host_state, "the host reports no supported instances")
            if not _supported(wanted, host_state.supported_instances):
                return self.reject(
                    host_state, f"supports none of {'/'.join(w or '*' for w in wanted)}"
                )
        if requested:
            predicate = version_predicate(str(requested))
            if predicate is None or not predicate[0](host_state.hypervisor_version, predicate[1]):
                return self.reject(
                    host_state,
                    f"hypervisor version {host_state.hypervisor_version} is not {requested}",
                )
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        props = spec.image_properties
        wanted = _wanted(props)
        ok = np.ones(idx.size, dtype=np.bool_)
        if wanted != (None, None, None):
            table = self.per_code(
                ("si", hosts.si_version, wanted),
                len(hosts.si_sets),
                lambda code: _supported(wanted, hosts.si_sets[code]),
            )
            ok &= table[hosts.si_code[idx]]
        requested = props.get("img_hv_requested_version")
        if requested:
            predicate = version_predicate(str(requested))
            if predicate is None:
                return np.zeros(idx.size, dtype=np.bool_)
            ok &= predicate[0](hosts.hypervisor_version[idx], predicate[1])
        return ok
