"""The image stores of a cloud: one, or several by id (Glance's multi-store).

``[image] enabled_stores`` lists the stores as ``<id>:<entry-point name>``
(Glance's ``enabled_backends``); each store reads its options from
``[image_store_<id>]`` when its class has per-store options
(:meth:`~nimbus.drivers.image.base.ImageStore.store_options`).  Without
it, the one store of ``[image] store`` is the cloud's, with the driver's
name as its id, as before several stores existed.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Iterator, Mapping
from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.common.logsafe import printable
from nimbus.conf.image import store_group
from nimbus.drivers.image import ImageStore

__all__ = ["Stores", "load_stores"]

_NAMESPACE = "nimbus.image.stores"
# Store ids appear in URLs (/v2/stores/{id}/...), option group names and
# the comma-separated ``stores`` of an image: no commas, slashes or spaces.
_STORE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", re.ASCII)


@dataclasses.dataclass(frozen=True)
class Stores:
    """The stores image data may live in, by id, and the default one.

    :param stores: each store by its id, in the configured order.
    :param default: the id of the store uploads go to by default.
    :param multiple: the stores came from ``[image] enabled_stores`` (Glance
        with ``enabled_backends``): the API then offers the multi-store
        calls, even with one store listed.
    """

    stores: Mapping[str, ImageStore]
    default: str
    multiple: bool = False

    def __post_init__(self) -> None:
        if self.default not in self.stores:
            raise ValueError(f"the default store {self.default!r} is not one of the stores")

    @classmethod
    def single(cls, store: ImageStore, store_id: str | None = None) -> Stores:
        """Return the stores of a single-store cloud: *store* under *store_id*."""
        store_id = store_id or store.store_id
        return cls({store_id: store}, store_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self.stores)

    def __contains__(self, store_id: object) -> bool:
        return store_id in self.stores

    def __len__(self) -> int:
        return len(self.stores)

    @property
    def default_store(self) -> ImageStore:
        """Return the default store."""
        return self.stores[self.default]

    def get(self, store_id: str) -> ImageStore | None:
        """Return the store *store_id*, or ``None`` if no such store is enabled."""
        return self.stores.get(store_id)

    def check(self, store_id: Any) -> str:
        """Return *store_id* if it names an enabled store.

        :raises BadRequest: it names none (Glance's "Unknown scheme" answer).
        """
        if not isinstance(store_id, str) or store_id not in self.stores:
            raise exception.BadRequest(
                reason=f"Store for identifier {printable(str(store_id))[:80]} not found"
            )
        return store_id


def _accepts_store_id(cls: type[ImageStore]) -> bool:
    """Tell whether *cls*'s constructor takes ``store_id`` (the newer contract)."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return "store_id" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _parse(entries: list[str]) -> list[tuple[str, str]]:
    """Return (store id, entry-point name) of each ``enabled_stores`` entry."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for entry in entries:
        store_id, sep, driver = (part.strip() for part in entry.partition(":"))
        if not sep or not driver or not _STORE_ID.fullmatch(store_id):
            raise exception.PluginLoadError(
                namespace=_NAMESPACE,
                name=printable(entry)[:80],
                reason="[image] enabled_stores takes <store id>:<entry-point name> entries,"
                " ids of letters, digits, '_' and '-'",
            )
        if store_id in seen:
            raise exception.PluginLoadError(
                namespace=_NAMESPACE,
                name=store_id,
                reason="the store id is listed twice in [image] enabled_stores",
            )
        seen.add(store_id)
        pairs.append((store_id, driver))
    return pairs


def _build(conf: cfg.ConfigOpts, store_id: str, driver: str) -> tuple[ImageStore, bool]:
    """Return the store *store_id*, and whether its class has the older constructor."""
    from nimbus import registry

    cls = registry.load_driver(_NAMESPACE, driver, expected=ImageStore, invoke=False)
    opts = list(cls.store_options(store_id))
    group: str | None = None
    if opts:
        group = store_group(store_id)
        conf.register_group(cfg.OptGroup(group, title=f"Image store {store_id} ({driver})"))
        conf.register_opts(opts, group=group)
    legacy = not _accepts_store_id(cls)
    if not legacy:
        store = registry.construct(
            _NAMESPACE, driver, cls, conf, store_id=store_id, options_group=group
        )
    else:
        # A store written for the older __init__(conf): it reads its one
        # fixed group, and learns its id here.
        store = registry.construct(_NAMESPACE, driver, cls, conf)
    store.store_id = store_id
    return store, legacy


def load_stores(conf: cfg.ConfigOpts) -> Stores:
    """Load the stores ``[image]`` configures.

    :raises PluginNotFound: a store names no installed driver.
    :raises PluginLoadError: a malformed ``enabled_stores`` or
        ``default_store``, a store that failed to start, or two stores that
        would share their data (an older store class enabled twice, two
        ``file`` stores in one directory).
    """
    from nimbus import registry

    options = conf.image
    if not options.enabled_stores:
        store = registry.load_driver(_NAMESPACE, options.store, conf, expected=ImageStore)
        store.store_id = options.store
        return Stores.single(store, options.store)
    pairs = _parse(list(options.enabled_stores))
    stores: dict[str, ImageStore] = {}
    drivers_without_ids: set[str] = set()
    datadirs: dict[str, str] = {}
    for store_id, driver in pairs:
        store, legacy = _build(conf, store_id, driver)
        if legacy:
            if driver in drivers_without_ids:
                raise exception.PluginLoadError(
                    namespace=_NAMESPACE,
                    name=driver,
                    reason=f"this store's class predates several stores: enabling it twice"
                    f" (again as {store_id}) would share its data",
                )
            drivers_without_ids.add(driver)
        datadir = getattr(store, "datadir", None)
        if isinstance(datadir, str):
            if datadir in datadirs:
                raise exception.PluginLoadError(
                    namespace=_NAMESPACE,
                    name=driver,
                    reason=f"stores {datadirs[datadir]} and {store_id} would share the"
                    f" directory {datadir}",
                )
            datadirs[datadir] = store_id
        stores[store_id] = store
    default = options.default_store or pairs[0][0]
    if default not in stores:
        raise exception.PluginLoadError(
            namespace=_NAMESPACE,
            name=printable(default)[:80],
            reason="[image] default_store is not one of [image] enabled_stores: "
            + ", ".join(stores),
        )
    return Stores(stores, default, multiple=True)
