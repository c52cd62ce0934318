"""Version discovery, written once for every API.

Each API describes its versions as :class:`Version` values and routes
:class:`Versions` at its root (``300 Multiple Choices``, the list) and
:class:`VersionDocument` at each version's root (``200``, one version).
The two list shapes OpenStack uses are both here: Keystone wraps the list
(``{"versions": {"values": [...]}}``), the others do not
(``{"versions": [...]}``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import falcon

from nimbus.api.app import Links

__all__ = ["Version", "VersionDocument", "Versions"]


@dataclasses.dataclass(frozen=True)
class Version:
    """One API version as discovery shows it.

    :param id: the version id (``v3.14``, ``v2.16``).
    :param status: ``stable``, ``CURRENT``, ``SUPPORTED`` ...
    :param path: its root, relative to the API root (``/v3/``).
    :param extra: more keys of the version object (``updated``,
        ``media-types``, ``min_version`` ...).
    """

    id: str
    status: str
    path: str
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def render(self, base: str) -> dict[str, Any]:
        """Return the version object, its self link under *base*."""
        return {
            "id": self.id,
            "status": self.status,
            **self.extra,
            "links": [{"rel": "self", "href": base + self.path}],
        }


class Versions:
    """``GET`` an API root: the versions it speaks (300 Multiple Choices).

    :param wrapped: Keystone's shape, the list under ``values``.
    :param status: the answer's status: Glance's ``/versions`` says 200,
        which glanceclient requires.
    """

    def __init__(
        self,
        links: Links,
        versions: Sequence[Version],
        *,
        wrapped: bool = False,
        status: str = falcon.HTTP_300,
    ) -> None:
        self.links = links
        self.versions = tuple(versions)
        self.wrapped = wrapped
        self.status = status

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        listed = [version.render(self.links.base(req)) for version in self.versions]
        resp.status = self.status
        resp.media = {"versions": {"values": listed} if self.wrapped else listed}


class VersionDocument:
    """``GET`` a version's root: that version alone."""

    def __init__(self, links: Links, version: Version) -> None:
        self.links = links
        self.version = version

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"version": self.version.render(self.links.base(req))}
