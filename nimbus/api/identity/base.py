"""What every identity API resource shares: collaborators, links and listings."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import falcon

from nimbus.api import validation
from nimbus.api.app import Links
from nimbus.context import RequestContext
from nimbus.identity.common import Page
from nimbus.identity.service import IdentityService
from nimbus.policy import Enforcer

__all__ = ["Deferred", "Resource"]


class Deferred(Mapping[str, Any]):
    """A request body validated when the service first reads it.

    Keystone checks policy before it validates a body: a caller who may not
    change a user learns that (403), not what a valid body would be (400).
    Policy is the service's, so the body goes to it unparsed and is parsed,
    and refused if invalid, on first use, after the check.

    :param parse: validates and returns the body.
    """

    def __init__(self, parse: Callable[[], dict[str, Any]]) -> None:
        self._parse = parse
        self._values: dict[str, Any] | None = None

    def _parsed(self) -> dict[str, Any]:
        if self._values is None:
            self._values = self._parse()
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self._parsed()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())


class Resource:
    """Base of the identity resources.

    :param service: the identity service; its managers check policy.
    :param enforcer: the policy enforcer (kept for the route table; the
        identity service has its own).
    :param links: builds absolute URLs under the identity root.
    """

    #: The collection path (``/v3/users``), for self links.
    collection = ""

    def __init__(self, service: IdentityService, enforcer: Enforcer, links: Links) -> None:
        self.service = service
        self.enforcer = enforcer
        self.links = links

    @staticmethod
    def ctx(req: falcon.Request) -> RequestContext:
        """Return the caller's request context."""
        return req.context.nimbus

    def with_links(self, req: falcon.Request, ref: dict[str, Any], path: str | None = None):
        """Return *ref* with Keystone's ``links.self``."""
        return {
            **ref,
            "links": {"self": self.links.url(req, path or f"{self.collection}/{ref['id']}")},
        }

    def page(self, req: falcon.Request) -> Page:
        """Return the page window asked for in the query string."""
        return validation.page(req, self.service.conf.identity.list_limit)

    def listing(
        self, req: falcon.Request, key: str, refs: Sequence[dict[str, Any]], page: Page | None
    ) -> dict[str, Any]:
        """Return a collection body with links, and a ``next`` link for a full page."""
        self_url = self.links.url(
            req, req.path[len(self.links.mount) :] if self.links.mount else req.path
        )
        query = dict(req.params)
        next_url = None
        if page is not None and page.limit is not None and len(refs) >= page.limit and refs:
            query["marker"] = refs[-1]["id"]
            query["limit"] = str(page.limit)
            next_url = f"{self_url}?{urlencode(query, doseq=True)}"
        full_self = (
            f"{self_url}?{urlencode(dict(req.params), doseq=True)}" if req.params else self_url
        )
        return {
            key: [self.with_links(req, ref) for ref in refs],
            "links": {"self": full_self, "previous": None, "next": next_url},
        }
