"""API microversions, as Nova and Cinder negotiate them.

A request names the version it wants in ``OpenStack-API-Version: <service>
<version>`` (or Nova's older ``X-OpenStack-Nova-API-Version: <version>``);
``latest`` is the newest served, no header is the oldest.  A version
outside ``[minimum, maximum]`` is refused with 406, a malformed one with
400.  Every answer of the API says which version it was made in, in both
headers, and ``Vary`` names them, so that caches keep versions apart.

Resources read the negotiated version with :func:`requested` and compare
with :class:`APIVersion` values (``requested(req) >= APIVersion(2, 47)``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import falcon

from nimbus import exception

__all__ = ["APIVersion", "Negotiation", "requested"]

_FORMAT = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@functools.total_ordering
@dataclasses.dataclass(frozen=True)
class APIVersion:
    """A ``major.minor`` API version, ordered."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        """Return the version *text* names (``2.47``).

        :raises InvalidAPIVersion: it is not ``MajorNum.MinorNum``.
        """
        match = _FORMAT.match(text.strip())
        if match is None:
            raise exception.InvalidAPIVersion(version=text.strip()[:32])
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, APIVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def requested(req: falcon.Request) -> APIVersion:
    """Return the version negotiated for *req* (set by :class:`Negotiation`)."""
    version: APIVersion = req.context.microversion
    return version


class Negotiation:
    """Per-service middleware: negotiate the version of each request to the API.

    :param service: the name in ``OpenStack-API-Version`` (``compute``).
    :param minimum: the oldest version served (what a request without a
        header gets).
    :param maximum: the newest.
    :param legacy_header: the service's older header, if it has one
        (``X-OpenStack-Nova-API-Version``).
    """

    def __init__(
        self,
        service: str,
        minimum: APIVersion,
        maximum: APIVersion,
        *,
        legacy_header: str | None = None,
    ) -> None:
        self.service = service
        self.minimum = minimum
        self.maximum = maximum
        self.legacy_header = legacy_header

    def _asked(self, req: falcon.Request) -> str | None:
        header = req.get_header("OpenStack-API-Version")
        if header:
            # "compute 2.47", possibly among other services' ("volume 3.1, compute 2.3").
            for part in header.split(","):
                words = part.split()
                if len(words) == 2 and words[0].lower() == self.service:
                    return words[1]
        if self.legacy_header:
            return req.get_header(self.legacy_header) or None
        return None

    def version_of(self, req: falcon.Request) -> APIVersion:
        """Return the version *req* asks for, checked against the range.

        :raises InvalidAPIVersion: the header is malformed.
        :raises VersionNotAcceptable: the version is not served.
        """
        asked = self._asked(req)
        if asked is None:
            return self.minimum
        if asked.strip().lower() == "latest":
            return self.maximum
        version = APIVersion.parse(asked)
        if not self.minimum <= version <= self.maximum:
            raise exception.VersionNotAcceptable(
                version=str(version), minimum=str(self.minimum), maximum=str(self.maximum)
            )
        return version

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The version the answer is made in, errors included: the oldest
        # until the request's own is known to be good.
        req.context.microversion = self.minimum
        req.context.microversion = self.version_of(req)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        version = str(req.context.get("microversion", self.minimum))
        resp.set_header("OpenStack-API-Version", f"{self.service} {version}")
        if self.legacy_header:
            resp.set_header(self.legacy_header, version)
        names = ["OpenStack-API-Version"] + ([self.legacy_header] if self.legacy_header else [])
        resp.append_header("Vary", ", ".join(names))
