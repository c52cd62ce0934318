"""The image service's descriptor: Glance v2 under ``/image``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from nimbus.descriptor import CatalogEntry, Cloud, ServiceDescriptor, SetupOptions

if TYPE_CHECKING:
    from nimbus.api.app import ServiceAPI
    from nimbus.periodic import PeriodicTask

__all__ = ["ImageDescriptor"]


class ImageDescriptor(ServiceDescriptor):
    """Images with streamed data, visibility, members and tags (Glance v2)."""

    name = "image"
    # Tokens are checked by the identity service.
    requires = ("identity",)
    option_modules = ("nimbus.conf.image",)
    policy_module = "nimbus.policies.image"
    migrations = ("nimbus.image.migrations",)

    def build(self, cloud: Cloud) -> dict[str, Any]:
        from nimbus import messaging
        from nimbus.image import ImageData, ImageService, TaskService
        from nimbus.image.stores import load_stores

        conf = cloud.conf
        stores = load_stores(conf)
        notifier = messaging.Notifier(cloud.transport, f"image.{conf.host}")
        service = ImageService(
            conf,
            cloud.database,
            stores.default_store,
            cloud.enforcer,
            notifier=notifier,
            stores=stores,
        )
        data = ImageData(service)
        tasks = TaskService(conf, cloud.database, cloud.enforcer, service, data)
        return {"image": service, "image_data": data, "image_tasks": tasks}

    def api(self, cloud: Cloud) -> ServiceAPI:
        from nimbus.api.image import image_api

        return image_api(cloud.image, cloud.image_data, cloud.image_tasks)

    def catalog(self, conf: cfg.ConfigOpts, base_url: str) -> list[CatalogEntry]:
        # Unversioned: the client discovers v2 at the root.
        return [CatalogEntry("image", "glance", base_url, "nimbus image service (Glance v2)")]

    def setup(self, cloud: Cloud, options: SetupOptions) -> object:
        _adopt_single_store(cloud)
        if options.embedded:
            # Nothing uploads before the embedded server starts: an image still
            # "saving" was being uploaded when an earlier run stopped.
            cloud.image_data.recover(older_than=0)
            # Nor runs a task: one left unfinished will never end.
            cloud.image_tasks.recover(older_than=0)
        return None

    def periodic_tasks(self, cloud: Cloud) -> list[PeriodicTask]:
        from nimbus.image import tasks

        return tasks.periodic_tasks(cloud.conf, cloud.image_data, cloud.image_tasks)


def _adopt_single_store(cloud: Cloud) -> None:
    """Give the default store the images of the single ``file`` store whose directory it took.

    ``nimbus up`` (and any cloud that turns ``[image] enabled_stores`` on
    with its default ``file`` store in ``[image_file_store] datadir``) keeps
    the data where the single store kept it; the images recorded under the
    single store's id are then the default store's.
    """
    service = cloud.image
    old = cloud.conf.image.store
    if not service.stores.multiple or old in service.stores or old != "file":
        return
    single_dir = os.path.abspath(os.path.expanduser(cloud.conf.image_file_store.datadir))
    if getattr(service.stores.default_store, "datadir", None) == single_dir:
        service.adopt_locations(old)
