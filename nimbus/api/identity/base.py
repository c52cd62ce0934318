"""What every identity API resource shares: the kit, Keystone's pages and links."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import falcon

from nimbus import exception
from nimbus.api import resource as kit
from nimbus.api import validation
from nimbus.api.app import Links
from nimbus.context import RequestContext
from nimbus.identity import ListQuery
from nimbus.identity.common import Page
from nimbus.identity.service import IdentityService
from nimbus.policy import Enforcer

__all__ = [
    "Collection",
    "Deferred",
    "Item",
    "Kind",
    "Resource",
    "create_with_extra",
    "list_query",
    "may_create",
    "page_of",
    "paged_crud",
]

Ref = dict[str, Any]


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


def page_of(query: kit.ListParams) -> Page:
    """Return the managers' page window for a parsed list request."""
    return Page(limit=query.limit, marker=query.marker)


def list_query(query: kit.ListParams) -> ListQuery:
    """Return the identity drivers' :class:`ListQuery` for a parsed list request."""
    return ListQuery(**query.filters, limit=query.limit, marker=query.marker)


def paged_crud(manager: Any, noun: str, plural: str, create: kit.CreateCall) -> kit.Crud:
    """Return the CRUD calls of a manager whose kind *plural* reads and whose
    ``update_<noun>`` and ``delete_<noun>`` write.

    A manager that lists with more than the kind's filters has its own
    ``list_<plural>`` (projects, by parent); it is used instead, and so is
    its own ``get_<noun>`` (projects, which may be domains).
    """
    kind = getattr(manager, plural)
    lister = getattr(manager, f"list_{plural}", None)

    def list_page(ctx: RequestContext, query: kit.ListParams) -> list[Ref]:
        if lister is not None:
            return lister(ctx, **query.filters, page=page_of(query))
        return kind.list(ctx, filters=query.filters, page=page_of(query))

    return kit.Crud(
        list=list_page,
        create=create,
        get=getattr(manager, f"get_{noun}", kind.get),
        update=getattr(manager, f"update_{noun}"),
        delete=getattr(manager, f"delete_{noun}"),
        may_create=may_create(manager, noun),
    )


def may_create(manager: Any, noun: str) -> Callable[[RequestContext], None]:
    """Return the check of *manager*'s ``identity:create_<noun>`` rule.

    Keystone checks policy before it validates a create body; the manager
    checks the rule again when it creates.
    """
    return lambda ctx: manager.authorize(ctx, f"identity:create_{noun}")


def create_with_extra(
    method: Callable[..., Ref],
    columns: tuple[str, ...],
    *,
    rename: Mapping[str, str] | None = None,
    blank: tuple[str, ...] = (),
    drop_nulls: bool = False,
) -> kit.CreateCall:
    """Return a create call passing *columns* as keywords and the rest as ``extra``.

    :param rename: body attribute -> keyword (``id`` -> ``domain_id``).
    :param blank: columns where a null means the empty string.
    :param drop_nulls: leave null attributes out of ``extra``.
    """
    renames = dict(rename or {})

    def create(ctx: RequestContext, values: Ref) -> Ref:
        known = {renames.get(k, k): values.pop(k) for k in columns if k in values}
        for name in blank:
            if name in known:
                known[name] = known[name] or ""
        extra = {k: v for k, v in values.items() if not (drop_nulls and v is None)}
        return method(ctx, extra=extra, **known)

    return create


#: The filters of user listings (``/v3/users``, a group's members).
USER_FILTERS: Mapping[str, Callable[[str], Any]] = {
    "domain_id": str,
    "name": str,
    "enabled": kit.bool_value,
}


class _Keystone(kit.Resource):
    """Keystone's page shape, capped at ``[identity] list_limit``, and self links."""

    def keystone(self, service: IdentityService, enforcer: Enforcer) -> None:
        self.identity = service
        self.enforcer = enforcer
        self.pages = kit.KeystonePages(max_limit=service.conf.identity.list_limit)

    def with_links(self, req: falcon.Request, ref: Ref, path: str | None = None) -> Ref:
        """Return *ref* with Keystone's ``links.self``."""
        return {**ref, "links": {"self": self.url(req, path or self.item_path(ref))}}

    def render(self, req: falcon.Request, ref: Any) -> Ref:
        return self.with_links(req, ref)


class Resource(_Keystone):
    """Base of the identity resources that are not plain CRUD.

    :param service: the identity service; its managers check policy.
    :param enforcer: the policy enforcer (kept for the route table; the
        identity service has its own).
    :param links: builds absolute URLs under the identity root.
    """

    def __init__(self, service: IdentityService, enforcer: Enforcer, links: Links) -> None:
        super().__init__(service, links)
        self.keystone(service, enforcer)
        self.service: IdentityService = service


def _drop_links(values: Ref) -> Ref:
    return {k: v for k, v in values.items() if k != "links"}


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of identity object, as its :class:`Collection` and :class:`Item` serve it.

    :param member_key: the body key of one item (``user``).
    :param collection_key: the body key of a list (``users``).
    :param collection: the collection's path, for self links.
    :param make_crud: builds the service calls from the identity service.
    :param create_schema: the JSON schema of a create body.
    :param update_schema: the JSON schema of an update body.
    :param filters: the list filters, with their parsers.
    :param clean: drops from a validated body what nimbus does not store.
    """

    member_key: str
    collection_key: str
    collection: str
    make_crud: Callable[[IdentityService], kit.Crud]
    create_schema: dict[str, Any]
    update_schema: dict[str, Any]
    filters: Mapping[str, Callable[[str], Any]] = dataclasses.field(default_factory=dict)
    clean: Callable[[Ref], Ref] = _drop_links


class _Crud(_Keystone, kit._CrudResource):
    def __init__(
        self, kind: Kind, service: IdentityService, enforcer: Enforcer, links: Links
    ) -> None:
        self.kind = kind
        self.member_key, self.collection_key = kind.member_key, kind.collection_key
        self.collection, self.filters = kind.collection, kind.filters
        super().__init__(kind.make_crud(service), links)
        self.keystone(service, enforcer)

    def schema(self) -> dict[str, Any]:
        """Return the JSON schema of this resource's body."""
        raise NotImplementedError

    def parse(self, req: falcon.Request, item_id: str | None = None) -> Ref:
        """Return the validated, cleaned body of the request."""
        return self.kind.clean(validation.body(req, self.member_key, self.schema()))


class Collection(_Crud, kit.Collection):
    """A Keystone collection: ``GET`` lists, ``POST`` creates (201)."""

    def schema(self) -> dict[str, Any]:
        return self.kind.create_schema

    def create_values(self, req: falcon.Request) -> Ref:
        return self.parse(req)


class Item(_Crud, kit.Item):
    """A Keystone item; the update body is validated after the policy check.

    An ``id`` in an update body (clients send the object back as they got
    it) may only repeat the id in the URL, where the kind's schema allows it.
    """

    def schema(self) -> dict[str, Any]:
        return self.kind.update_schema

    def parse(self, req: falcon.Request, item_id: str | None = None) -> Ref:
        changes = validation.body(req, self.member_key, self.schema())
        if item_id is not None and changes.pop("id", item_id) != item_id:
            raise exception.ValidationError(
                field=f"{self.member_key}/id", reason="cannot be changed"
            )
        return self.kind.clean(changes)

    def update_values(self, req: falcon.Request, item_id: str) -> Any:
        return Deferred(lambda: self.parse(req, item_id))
