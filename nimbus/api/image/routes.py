"""The image API's route table (Glance v2), one line per route."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api.app import Links
from nimbus.api.image import (
    image_data,
    images,
    imports,
    members,
    metadefs,
    schemas,
    tasks,
    versions,
)
from nimbus.api.versions import Versions
from nimbus.image import ImageData, ImageService, TaskService
from nimbus.image.metadefs import MetadefService

_I = "/v2/images/{image_id}"
_NS = "/v2/metadefs/namespaces/{namespace}"
_METADEF_SCHEMAS = (
    "namespace",
    "namespaces",
    "object",
    "objects",
    "property",
    "properties",
    "tag",
    "tags",
    "resource_type",
    "resource_types",
)


def routes(
    service: ImageService, data: ImageData, task_service: TaskService, links: Links
) -> list[tuple[str, Any]]:
    """Return (template, resource) pairs relative to the image root."""
    deps = (service, links)
    md = (MetadefService(service.db, service.enforcer), links)
    offered = versions.versions(multiple_stores=service.stores.multiple)
    return [
        ("/", Versions(links, offered)),
        # Glance answers its root 300 and /versions 200; glanceclient reads
        # /versions and refuses a 300 ("Requested version ... is not available").
        ("/versions", Versions(links, offered, status=falcon.HTTP_200)),
        ("/v2/images", images.ImageCollection(*deps)),
        (_I, images.ImageItem(*deps)),
        (_I + "/file", image_data.ImageFile(service, data, links)),
        (_I + "/stage", imports.ImageStage(service, data, links)),
        (_I + "/import", imports.ImportImage(service, task_service, links)),
        (_I + "/tasks", imports.ImageTasks(service, task_service, links)),
        ("/v2/info/import", imports.ImportInfo(service.stores)),
        ("/v2/info/stores", imports.StoresInfo(service.conf, service.stores)),
        ("/v2/stores/{store_id}/{image_id}", imports.StoreImage(*deps)),
        (_I + "/tags/{tag}", images.ImageTag(*deps)),
        (_I + "/actions/deactivate", images.Deactivate(*deps)),
        (_I + "/actions/reactivate", images.Reactivate(*deps)),
        (_I + "/members", members.MemberCollection(*deps)),
        (_I + "/members/{member_id}", members.MemberItem(*deps)),
        ("/v2/schemas/image", schemas.Schema(service.conf, "image")),
        ("/v2/schemas/images", schemas.Schema(service.conf, "images")),
        ("/v2/schemas/member", schemas.Schema(service.conf, "member")),
        ("/v2/schemas/members", schemas.Schema(service.conf, "members")),
        ("/v2/tasks", tasks.TaskCollection(task_service, links)),
        ("/v2/tasks/{task_id}", tasks.TaskItem(task_service, links)),
        ("/v2/schemas/task", schemas.Schema(service.conf, "task")),
        ("/v2/schemas/tasks", schemas.Schema(service.conf, "tasks")),
        *_metadef_routes(md, service),
    ]


def _metadef_routes(
    md: tuple[MetadefService, Links], service: ImageService
) -> list[tuple[str, Any]]:
    """Return the metadata definition routes (``/v2/metadefs``, their schemas)."""
    return [
        ("/v2/metadefs/namespaces", metadefs.NamespaceCollection(*md, service.conf)),
        (_NS, metadefs.NamespaceItem(*md)),
        *((_NS + path, res) for path, res in metadefs.object_routes(*md)),
        (_NS + "/resource_types", metadefs.ResourceTypeAssociationCollection(*md)),
        (_NS + "/resource_types/{name}", metadefs.ResourceTypeAssociationItem(*md)),
        ("/v2/metadefs/resource_types", metadefs.ResourceTypeCollection(*md)),
        *((f"/v2/schemas/metadefs/{n}", metadefs.MetadefSchema(n)) for n in _METADEF_SCHEMAS),
    ]


def is_public(method: str, path: str) -> bool:
    """Tell whether a route needs no token: version discovery only."""
    return path in ("/", "/versions")
