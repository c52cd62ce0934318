"""The resource kit every nimbus API is written with.

:class:`Resource` gives a responder what it needs besides its one service
call: the caller's context, absolute links, the list parameters of the
query string and the page body in its API's shape (:class:`PageFormat`).
:class:`Collection` and :class:`Item` cover plain CRUD: a subclass names
its body keys and schemas, and is given a :class:`Crud` (the service
methods to call) when the route table builds it; a resource with special
behaviour overrides one method (``create_values``, ``render``, ...), never
a whole responder.

Responders parse, call one service method and set the response.  Policy is
the service's business, errors are mapped centrally (:mod:`nimbus.api.errors`),
and bodies are validated in ``@falcon.before`` hooks (:mod:`nimbus.api.hooks`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlencode

import falcon

from nimbus import exception
from nimbus.api.app import Links
from nimbus.context import RequestContext

__all__ = [
    "Collection",
    "CreateCall",
    "Crud",
    "GlancePages",
    "Item",
    "KeystonePages",
    "Link",
    "LinkCalls",
    "ListParams",
    "NovaPages",
    "PageFormat",
    "Resource",
    "bool_value",
    "select_fields",
]

Ref = dict[str, Any]
#: What a :class:`Link` calls to make, check and end its relation.
LinkCalls = tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]


def bool_value(raw: str) -> bool:
    """Parse a boolean query value as OpenStack does: ``0/false/no/off`` are false."""
    return raw.strip().lower() not in ("0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class ListParams:
    """What a list request asked for.

    :param limit: the page size (already capped), or ``None`` for no paging.
    :param marker: the id of the last item of the previous page.
    :param sort: ``(key, direction)`` pairs, most significant first.
    :param filters: the recognised filters, with their parsed values.
    :param fields: the attributes to return (``fields=``), or ``None`` for all.
    """

    limit: int | None = None
    marker: str | None = None
    sort: tuple[tuple[str, str], ...] = ()
    filters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fields: tuple[str, ...] | None = None


def select_fields(refs: Sequence[Ref], fields: Sequence[str] | None) -> list[Ref]:
    """Return *refs* with only the attributes in *fields* (all of them when ``None``)."""
    if not fields:
        return list(refs)
    wanted = set(fields)
    return [{k: v for k, v in ref.items() if k in wanted} for ref in refs]


class PageFormat:
    """One API's paging rules and page body shape.

    :param max_limit: the largest page; a bigger ``limit`` is capped to it.
    :param default_limit: the page size when no ``limit`` is given
        (``None``: the whole list, unless *max_limit* caps it).
    """

    #: Page links are paths from the API root (Glance), not absolute URLs.
    relative: ClassVar[bool] = False

    def __init__(self, *, max_limit: int | None = None, default_limit: int | None = None) -> None:
        self.max_limit = max_limit
        self.default_limit = default_limit

    def limit(self, req: falcon.Request) -> int | None:
        """Return the page size asked for, capped.

        :raises ValidationError: ``limit`` is not a positive integer.
        """
        raw = req.get_param("limit", default=None)
        limit = self.default_limit if self.default_limit is not None else self.max_limit
        if raw is not None:
            try:
                limit = int(raw)
            except ValueError:
                raise exception.ValidationError(
                    field="limit", reason="must be an integer"
                ) from None
            if limit < 1:
                raise exception.ValidationError(field="limit", reason="must be at least 1")
            if self.max_limit is not None:
                limit = min(limit, self.max_limit)
        return limit

    def sort(self, req: falcon.Request) -> tuple[tuple[str, str], ...]:
        """Return the sort keys asked for (``sort_key`` / ``sort_dir`` pairs)."""
        keys = req.get_param_as_list("sort_key") or []
        dirs = req.get_param_as_list("sort_dir") or []
        result = []
        for index, key in enumerate(keys):
            direction = (dirs[index] if index < len(dirs) else "desc").lower()
            if direction not in ("asc", "desc"):
                raise exception.ValidationError(field="sort_dir", reason="must be asc or desc")
            result.append((key, direction))
        return tuple(result)

    def next_url(self, self_url: str, req: falcon.Request, refs: Sequence[Ref], limit: int) -> str:
        """Return the link to the page after *refs*."""
        query = dict(req.params)
        query["marker"] = refs[-1]["id"]
        query["limit"] = str(limit)
        return f"{self_url}?{urlencode(query, doseq=True)}"

    def body(
        self,
        key: str,
        refs: list[Ref],
        *,
        self_url: str,
        next_url: str | None,
        req: falcon.Request,
    ) -> dict[str, Any]:
        """Return the page body (the default: the bare list under *key*)."""
        return {key: refs}


class KeystonePages(PageFormat):
    """Keystone: ``{"<key>": [...], "links": {"self", "previous", "next"}}``."""

    def body(
        self, key: str, refs: list[Ref], *, self_url: str, next_url: str | None, req: falcon.Request
    ) -> dict[str, Any]:
        full_self = (
            f"{self_url}?{urlencode(dict(req.params), doseq=True)}" if req.params else self_url
        )
        return {key: refs, "links": {"self": full_self, "previous": None, "next": next_url}}


class NovaPages(PageFormat):
    """Nova, Cinder and Neutron: ``{"<key>": [...], "<key>_links": [{"rel": "next"}]}``."""

    def body(
        self, key: str, refs: list[Ref], *, self_url: str, next_url: str | None, req: falcon.Request
    ) -> dict[str, Any]:
        result: dict[str, Any] = {key: refs}
        if next_url is not None:
            result[f"{key}_links"] = [{"rel": "next", "href": next_url}]
        return result


class GlancePages(PageFormat):
    """Glance: ``{"<key>": [...], "first", "schema", "next"}`` with relative links."""

    relative = True

    def next_url(self, self_url: str, req: falcon.Request, refs: Sequence[Ref], limit: int) -> str:
        query = {k: v for k, v in req.params.items() if k != "marker"}
        query["marker"] = refs[-1]["id"]
        query["limit"] = str(limit)
        return f"{self_url}?{urlencode(query, doseq=True)}"

    def body(
        self, key: str, refs: list[Ref], *, self_url: str, next_url: str | None, req: falcon.Request
    ) -> dict[str, Any]:
        params = {k: v for k, v in req.params.items() if k != "marker"}
        first = self_url + (f"?{urlencode(params, doseq=True)}" if params else "")
        result: dict[str, Any] = {key: refs, "first": first, "schema": f"/v2/schemas/{key}"}
        if next_url is not None:
            result["next"] = next_url
        return result


class Resource:
    """Base of every API resource.

    :param service: what the resource calls (a service or one of its managers).
    :param links: builds absolute URLs under the API's root.
    """

    #: The collection path (``/v3/users``), for self links.
    collection: str = ""
    #: The API's paging rules; subclasses of one API share one.
    pages: PageFormat = PageFormat()

    def __init__(self, service: Any, links: Links) -> None:
        self.service = service
        self.links = links

    @staticmethod
    def ctx(req: falcon.Request) -> RequestContext:
        """Return the caller's request context."""
        ctx: RequestContext = req.context.nimbus
        return ctx

    @staticmethod
    def body(req: falcon.Request) -> Any:
        """Return the request's validated body (set by the ``validate`` hook)."""
        return req.context.get("body", req.context.get("json"))

    def url(self, req: falcon.Request, path: str) -> str:
        """Return the absolute URL of *path* (relative to the API root)."""
        return self.links.url(req, path)

    def item_path(self, ref: Ref) -> str:
        """Return the path of one item of the collection (for its self link)."""
        return f"{self.collection}/{ref['id']}"

    def render(self, req: falcon.Request, ref: Any) -> Ref:
        """Return *ref* as the API shows it (the default: unchanged)."""
        return ref

    def list_params(
        self,
        req: falcon.Request,
        filters: Mapping[str, Callable[[str], Any]] | Sequence[str] = (),
        *,
        paged: bool = True,
    ) -> ListParams:
        """Parse the query string of a list request.

        :param filters: the recognised filters: names (values kept as
            strings) or a mapping of name to a parser of the raw value.
        :param paged: whether ``limit`` and ``marker`` apply.
        """
        parsers = filters if isinstance(filters, Mapping) else {name: str for name in filters}
        values = {}
        for name, parse in parsers.items():
            raw = req.get_param(name, default=None)
            if raw is not None:
                values[name] = parse(raw)
        fields = req.get_param_as_list("fields")
        return ListParams(
            limit=self.pages.limit(req) if paged else None,
            marker=(req.get_param("marker", default=None) or None) if paged else None,
            sort=self.pages.sort(req),
            filters=values,
            fields=tuple(fields) if fields else None,
        )

    def listing(
        self,
        req: falcon.Request,
        key: str,
        refs: Sequence[Any],
        params: ListParams | None = None,
        *,
        more: bool | None = None,
    ) -> dict[str, Any]:
        """Return a page body in the API's shape, with a next link after a full page.

        :param more: whether another page follows; by default, whether the
            page is full.
        """
        path = req.path[len(self.links.mount) :] if self.links.mount else req.path
        self_url = path if self.pages.relative else self.links.url(req, path)
        limit = params.limit if params is not None else None
        if more is None:
            more = limit is not None and len(refs) >= limit
        # Rendered first: the next link needs the ids of what the API shows.
        rendered = [self.render(req, ref) for ref in refs]
        next_url = None
        if more and rendered and limit is not None:
            next_url = self.pages.next_url(self_url, req, rendered, limit)
        rendered = select_fields(rendered, params.fields if params is not None else None)
        return self.pages.body(key, rendered, self_url=self_url, next_url=next_url, req=req)


#: A service's create call: the caller's context and the values to create.
CreateCall = Callable[[RequestContext, Ref], Ref]


class Link(Resource):
    """A relation between two things at one URL, with no body of its own.

    PUT makes it, HEAD and GET check it, DELETE ends it; each answers 204
    (Keystone's group memberships and role grants).  A subclass names the
    three service methods in :meth:`calls` and, in :meth:`arguments`, what
    they are given after the context.
    """

    def calls(self) -> LinkCalls:
        """Return the service methods that make, check and end the relation."""
        raise NotImplementedError

    def arguments(self, params: Mapping[str, str]) -> tuple[Any, ...]:
        """Return the service methods' arguments after the context (the URL's fields)."""
        return tuple(params.values())

    def _answer(self, req: falcon.Request, resp: falcon.Response, which: int, params: Ref) -> None:
        self.calls()[which](self.ctx(req), *self.arguments(params))
        resp.status = falcon.HTTP_204

    def on_put(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self._answer(req, resp, 0, params)

    def on_head(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self._answer(req, resp, 1, params)

    on_get = on_head

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self._answer(req, resp, 2, params)


@dataclasses.dataclass(frozen=True)
class Crud:
    """The service methods a :class:`Collection` / :class:`Item` pair calls.

    Each takes the caller's context first: the service authorizes.  Any may
    be ``None`` when the resource does not offer that operation (Falcon
    then answers 405).
    """

    list: Callable[[RequestContext, ListParams], Sequence[Ref]] | None = None
    create: CreateCall | None = None
    get: Callable[[RequestContext, str], Ref] | None = None
    #: Takes what the Item's ``update_values`` returns (a body, a patch ...).
    update: Callable[[RequestContext, str, Any], Ref] | None = None
    delete: Callable[[RequestContext, str], None] | None = None
    #: Checks that the caller may create, before the body is read: an API
    #: that, like Keystone, answers a forbidden create with 403 whatever
    #: the body sets it (the service's own policy check, called early).
    may_create: Callable[[RequestContext], None] | None = None


def _call(method: Callable[..., Any] | None, *args: Any) -> Any:
    # Responders of missing operations are hidden (see _CrudResource), so
    # this only runs with a method.
    assert method is not None
    return method(*args)


class _CrudResource(Resource):
    #: The body key of one item (``user``), and of a list (``users``).
    member_key: str = ""
    collection_key: str = ""

    #: Which responder each operation of the Crud backs.
    responders: ClassVar[Mapping[str, str]] = {}
    #: One item's body is the bare item, not ``{member_key: item}`` (Glance).
    bare: ClassVar[bool] = False

    def __init__(self, crud: Crud, links: Links) -> None:
        super().__init__(crud, links)
        self.crud = crud
        for operation, responder in self.responders.items():
            if getattr(crud, operation) is None:
                # Falcon maps methods with getattr: a None hides the
                # responder, and the method gets 405 with the right Allow.
                setattr(self, responder, None)

    def one(self, req: falcon.Request, ref: Ref) -> dict[str, Any]:
        """Return the body of one item."""
        rendered = self.render(req, ref)
        return rendered if self.bare else {self.member_key: rendered}


class Collection(_CrudResource):
    """``GET`` lists, ``POST`` creates.

    Subclasses set ``member_key``, ``collection_key``, ``collection`` and
    ``filters``; validation of the create body is a hook on ``on_post``.
    """

    responders: ClassVar[Mapping[str, str]] = {"list": "on_get", "create": "on_post"}
    #: Query parameters passed to the service's list, with their parsers.
    filters: Mapping[str, Callable[[str], Any]] = {}
    #: Answer a create with a ``Location`` header naming the new item.
    location: ClassVar[bool] = False

    def create_values(self, req: falcon.Request) -> Ref:
        """Return what to create from the request (the validated body by default)."""
        body = self.body(req)
        values: Ref = body[self.member_key]
        return values

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        query = self.list_params(req, self.filters)
        refs = _call(self.crud.list, self.ctx(req), query)
        resp.media = self.listing(req, self.collection_key, refs, query)

    def on_post(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        ctx = self.ctx(req)
        if self.crud.may_create is not None:
            self.crud.may_create(ctx)
        ref = _call(self.crud.create, ctx, self.create_values(req))
        resp.status = falcon.HTTP_201
        if self.location:
            resp.location = self.url(req, self.item_path(ref))
        resp.media = self.one(req, ref)


class Item(_CrudResource):
    """``GET`` shows, ``PATCH`` updates, ``DELETE`` deletes one item.

    The item's id is the last field of the route (``/v3/users/{user_id}``).
    """

    responders: ClassVar[Mapping[str, str]] = {
        "get": "on_get",
        "update": "on_patch",
        "delete": "on_delete",
    }

    @staticmethod
    def item_id(params: Mapping[str, str]) -> str:
        """Return the item's id among the route's fields."""
        return list(params.values())[-1]

    def update_values(self, req: falcon.Request, item_id: str) -> Any:
        """Return the changes asked for (the validated body by default)."""
        body = self.body(req)
        values: Ref = body[self.member_key]
        return values

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        ref = _call(self.crud.get, self.ctx(req), self.item_id(params))
        resp.media = self.one(req, ref)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        item_id = self.item_id(params)
        changes = self.update_values(req, item_id)
        resp.media = self.one(req, _call(self.crud.update, self.ctx(req), item_id, changes))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        _call(self.crud.delete, self.ctx(req), self.item_id(params))
        resp.status = falcon.HTTP_204
