"""The image service's descriptor: Glance v2 under ``/image``."""

from __future__ import annotations

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
