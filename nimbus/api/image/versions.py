"""Version discovery for the image API: the v2 minor versions whose features nimbus has.

Glance lists a minor version only while its feature is there: 2.8 with
multiple stores configured, 2.14, 2.16 and 2.18 with the image cache
(``glance/api/versions.py``).  Clients read the list that way:
glanceclient asks for 2.12 before ``GET /v2/images/{id}/tasks``, 2.14 for
the cache calls and 2.17 for the location calls (``utils.has_version``),
and tempest skips its task and location tests without 2.12 and 2.17.  So
nimbus lists what it serves: 2.0 (images, tags, tasks), 2.1 (members),
2.2 and 2.4 (what they changed concerns property protections and image
locations, neither of which nimbus has), 2.3 (deactivate), 2.5 (community
images), 2.6 (interoperable import: stage, import with ``glance-direct``,
``/v2/info/import``) and 2.7 (hidden images, multihash), the newest.  It
leaves out 2.8 to 2.13 (several stores, copy-image, deleting from a
store, quota usage: ``/v2/images/{id}/tasks`` of 2.12 is served, but the
versions before it are not) and 2.14 to 2.18 (cache, store details,
locations).
"""

from __future__ import annotations

from nimbus.api.versions import Version

_MINORS = (7, 6, 5, 4, 3, 2, 1, 0)

VERSIONS = [
    Version(f"v2.{minor}", "CURRENT" if minor == _MINORS[0] else "SUPPORTED", "/v2/")
    for minor in _MINORS
]
