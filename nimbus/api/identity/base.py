"""What every identity API resource shares: collaborators, links and listings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import falcon

from nimbus.api import validation
from nimbus.api.app import Links
from nimbus.api.policy import Enforcer
from nimbus.context import RequestContext
from nimbus.identity.common import Page
from nimbus.identity.service import IdentityService

__all__ = ["Resource"]


class Resource:
    """Base of the identity resources.

    :param service: the identity service.
    :param enforcer: the policy enforcer.
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

    def authorize(self, req: falcon.Request, action: str, target: dict[str, Any] | None = None):
        """Check policy for the caller (raises PolicyNotAuthorized)."""
        self.enforcer.authorize(self.ctx(req), action, target)

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
