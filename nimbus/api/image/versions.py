"""Version discovery for the image API: every v2 minor version, the newest current."""

from __future__ import annotations

from nimbus.api.versions import Version

_NEWEST = 16

VERSIONS = [
    Version(f"v2.{minor}", "CURRENT" if minor == _NEWEST else "SUPPORTED", "/v2/")
    for minor in range(_NEWEST, -1, -1)
]
