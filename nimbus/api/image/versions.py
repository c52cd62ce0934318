"""Version discovery for the image API: the v2 minor versions whose features nimbus has.

Glance lists a minor version only while its feature is there: 2.8 to 2.13
with several stores configured (``enabled_backends``), 2.14, 2.16 and 2.18
with the image cache (``glance/api/versions.py``).  Clients read the list
that way: glanceclient asks for 2.12 before ``GET /v2/images/{id}/tasks``,
2.14 for the cache calls and 2.17 for the location calls
(``utils.has_version``), and tempest skips its task and location tests
without 2.12 and 2.17.

nimbus lists what it serves.  With one store: 2.0 (images, tags,
tasks), 2.1 (members), 2.2 and 2.4 (what they changed concerns property
protections and image locations, neither of which nimbus has), 2.3
(deactivate), 2.5 (community images), 2.6 (interoperable import: stage,
import with ``glance-direct``, ``/v2/info/import``) and 2.7 (hidden
images, multihash), the newest.  With several stores (``[image]
enabled_stores``) also 2.8 to 2.12, in Glance's order (those first, then
2.7 to 2.0): several stores, ``copy-image``, ``all_stores``,
``DELETE /v2/stores/{store}/{image}`` and ``GET /v2/images/{id}/tasks``,
with 2.12 the newest.  Glance with several stores also lists 2.13 (quota
usage), 2.15 (store details) and 2.17 (locations, ``CURRENT``); nimbus
serves none of those, and a client that read them in the list would call
routes that answer 404.
"""

from __future__ import annotations

from nimbus.api.versions import Version

__all__ = ["VERSIONS", "versions"]

_MINORS = (7, 6, 5, 4, 3, 2, 1, 0)
# Glance's order with enabled_backends, less what nimbus does not serve.
_MULTISTORE_MINORS = (12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
_MULTISTORE_CURRENT = 12


def _listed(minors: tuple[int, ...], current: int) -> list[Version]:
    return [
        Version(f"v2.{minor}", "CURRENT" if minor == current else "SUPPORTED", "/v2/")
        for minor in minors
    ]


#: The versions of a single-store cloud.
VERSIONS = _listed(_MINORS, _MINORS[0])


def versions(*, multiple_stores: bool) -> list[Version]:
    """Return the versions to list: Glance's multi-store list with several stores."""
    if multiple_stores:
        return _listed(_MULTISTORE_MINORS, _MULTISTORE_CURRENT)
    return VERSIONS
