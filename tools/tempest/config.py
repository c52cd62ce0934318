"""The cloud's catalog, and the tempest.conf written from it.

:func:`build` is pure (facts in, sections out) so that tests need no
cloud; :func:`discover` asks the cloud, :func:`write` merges the sections
into the file ``tempest init`` made.
"""

from __future__ import annotations

import configparser
import json
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.tempest.selections import SELECTIONS, TEMPEST_SERVICES, Selection

__all__ = ["Admin", "Catalog", "Conf", "build", "discover", "uri_v3", "write"]

#: Sections tempest reads a ``region`` from.
_REGIONAL = ("identity", "compute", "image", "network", "volume")
_DEFAULT_REGION = "RegionOne"

Conf = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Admin:
    """The cloud administrator tempest makes its test users with."""

    username: str
    password: str
    project: str
    domain: str = "Default"


@dataclass(frozen=True)
class Catalog:
    """What tempest.conf needs from the service catalog."""

    types: frozenset[str]
    region: str

    @classmethod
    def from_token(cls, catalog: Iterable[Mapping[str, Any]]) -> Catalog:
        """Return the facts of a token's ``catalog`` list.

        The region is that of the identity service's public endpoint.
        """
        entries = list(catalog)
        region = _DEFAULT_REGION
        for entry in entries:
            if entry.get("type") != "identity":
                continue
            endpoints = entry.get("endpoints") or []
            public = [e for e in endpoints if e.get("interface") == "public"] or endpoints
            if public:
                region = public[0].get("region_id") or public[0].get("region") or ""
            break
        return cls(frozenset(str(e.get("type")) for e in entries), region)


def uri_v3(auth_url: str) -> str:
    """Return the v3 identity URL of *auth_url*, which may lack ``/v3``."""
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def discover(auth_url: str, admin: Admin, *, timeout: float = 60) -> Catalog:
    """Return the catalog facts, from a project-scoped token of *admin*.

    :raises OSError: the cloud did not answer, or refused the credentials.
    """
    domain = {"name": admin.domain}
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": admin.username, "password": admin.password, "domain": domain}
                },
            },
            "scope": {"project": {"name": admin.project, "domain": domain}},
        }
    }
    request = urllib.request.Request(
        uri_v3(auth_url) + "/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            token = json.load(answer)["token"]
    except (ValueError, KeyError) as ex:
        raise OSError(f"no token in the answer of {request.full_url}: {ex}") from ex
    return Catalog.from_token(token.get("catalog") or [])


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def build(
    auth_url: str,
    admin: Admin,
    catalog: Catalog,
    services: Iterable[Selection],
    features: Mapping[str, frozenset[str]],
    *,
    region: str | None = None,
    overrides: Iterable[tuple[str, str, str]] = (),
) -> tuple[Conf, list[str]]:
    """Return tempest.conf's sections for running *services*, and warnings.

    :param features: per service name, its features that are on (already
        expanded, see :meth:`Selection.expand`).
    :param overrides: ``(section, key, value)`` written last.
    """
    run = list(services)
    names = {s.name for s in run}
    warnings: list[str] = []
    conf: Conf = {}

    def put(section: str, key: str, value: str) -> None:
        conf.setdefault(section, {})[key] = value

    region = catalog.region if region is None else region
    put("DEFAULT", "debug", "true")
    put("identity", "uri_v3", uri_v3(auth_url))
    for section in _REGIONAL:
        put(section, "region", region)
    put("auth", "use_dynamic_credentials", "true")
    put("auth", "admin_username", admin.username)
    put("auth", "admin_password", admin.password)
    put("auth", "admin_project_name", admin.project)
    for key in (
        "admin_domain_name",
        "admin_user_domain_name",
        "admin_project_domain_name",
        "default_credentials_domain_name",
    ):
        put("auth", key, admin.domain)
    available = {s.available for s in run if s.available}
    put("auth", "create_isolated_networks", _boolean("neutron" in available))
    for service in TEMPEST_SERVICES:
        put("service_available", service, _boolean(service in available))
    put("validation", "run_validation", "false")

    # Identity is configured whether or not its tests run: every test logs in.
    for selection in SELECTIONS:
        if selection.name not in names and selection.available is not None:
            continue
        for section, values in selection.settings.items():
            for key, value in values.items():
                put(section, key, value)
        found = [t for t in selection.catalog_types if t in catalog.types]
        if not found:
            warnings.append(
                f"{selection.name}: none of the service types "
                f"{'/'.join(selection.catalog_types)} is in the catalog"
            )
        put(selection.section, "catalog_type", (found or selection.catalog_types)[0])
        enabled = features.get(selection.name, frozenset())
        extensions = []
        for feature in selection.features:
            on = feature.default or feature.name in enabled
            if feature.flag:
                put(selection.feature_section, feature.flag, _boolean(on))
            if feature.extension and on:
                extensions.append(feature.extension)
            if on:
                for section, values in feature.settings.items():
                    for key, value in values.items():
                        put(section, key, value)
        if any(f.extension for f in selection.features):
            put(selection.feature_section, "api_extensions", ",".join(extensions))

    for section, key, value in overrides:
        put(section, key, value)
    return conf, warnings


def write(path: Path, conf: Conf) -> None:
    """Write *conf* to *path*, keeping only the paths ``tempest init`` put there.

    tempest init writes ``[DEFAULT] log_dir, log_file`` and
    ``[oslo_concurrency] lock_path``; anything else a former run left is
    dropped, so each run's file says only what this run asked for.
    """
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    kept = configparser.RawConfigParser()
    kept.optionxform = str  # type: ignore[assignment,method-assign]
    for key in ("log_dir", "log_file"):
        if parser.has_option("DEFAULT", key):
            kept.set("DEFAULT", key, parser.get("DEFAULT", key))
    if parser.has_section("oslo_concurrency"):
        kept.add_section("oslo_concurrency")
        for key, value in parser.items("oslo_concurrency", raw=True):
            if key not in parser.defaults():
                kept.set("oslo_concurrency", key, value)
    for section, values in conf.items():
        if section != "DEFAULT" and not kept.has_section(section):
            kept.add_section(section)
        for key, value in values.items():
            kept.set(section, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        kept.write(f)
