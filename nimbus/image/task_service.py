"""Glance's tasks: asynchronous work of the image service and how it ended.

A task is created ``pending`` and handed to a worker thread of the API
process that made it; the worker moves it to ``processing``
(compare-and-swap, so it runs once) and ends it in ``success`` (with a
``result``) or ``failure`` (with a ``message``), never anything else.
An ended task carries ``expires_at`` (``[image] task_time_to_live`` hours
after it ended) and is removed after it.

The ``import`` type is Glance's legacy import: ``input`` names an
``http``/``https`` URL (``import_from``), its format
(``import_from_format``) and the properties of the image to make
(``image_properties``); the worker creates the image in the task owner's
project, streams the URL's data into it through the same upload path as
``PUT /v2/images/{id}/file`` (size cap, storage quota, checksums, format
inspection) and names the image in ``result.image_id``.  A failed import
deletes the image it made.

``api_image_import`` tasks are made by ``POST /v2/images/{id}/import``
(Glance's interoperable import, :meth:`TaskService.import_image`), never
through ``/v2/tasks``.  nimbus offers the ``glance-direct`` method: the
data staged by ``PUT /v2/images/{id}/stage`` is already in a store (the
default one, or the ``X-Image-Meta-Store`` header's; written, hashed and
inspected by the upload path), so the task reads it back, checks it
against the recorded size and multihash, copies it to each other store the
import asks for (``stores``, ``all_stores``) and activates the image; a
failed check drops the data and puts the image back to ``queued``.  With
several stores (``[image] enabled_stores``) it also offers ``copy-image``:
the data of an active image is copied to more stores.  A store that fails
is listed in ``os_glance_failed_import`` and the import goes on to the
next, unless ``all_stores_must_succeed`` (the default) asks otherwise: then
the import fails and removes what it wrote.  ``web-download`` and
``glance-download`` (a URL, another region's Glance) are not offered.

No stuck states: a process counts its own tasks (queued or running) as
alive and refreshes their heartbeat (``updated_at``) every ``[image]
upload_recovery_interval`` seconds; every process fails the tasks whose
heartbeat is older than ``[image] upload_stale_after``, whichever process
they belonged to (:meth:`TaskService.recover`, a periodic task).  The
embedded ``nimbus up`` fails every unfinished task at start-up, since no
process can be running one then.  An import or copy that the recovery
ends releases its image (``os_glance_import_task``), lists the stores it
had not done in ``os_glance_failed_import``, and a ``glance-direct`` one
drops the data it wrote; a store's partial writes go with the upload
recovery's ``purge_partial``.  One window stays: a process that dies after
a store finished writing a copy and before the copy was recorded leaves
that copy in the store, unrecorded.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import dataclasses
import datetime
import hashlib
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm
from sqlalchemy.engine import CursorResult

from nimbus import exception
from nimbus.common.logsafe import printable
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.image import models, schema
from nimbus.image.data import ImageData
from nimbus.image.query import glance_limit
from nimbus.image.service import Authorizer, ImageService, StagedData, utcnow
from nimbus.image.stores import Stores

__all__ = [
    "COPY_IMAGE",
    "IMPORT_METHODS",
    "STATUSES",
    "TYPES",
    "TaskQuery",
    "TaskService",
    "import_methods",
]

LOG = logging.getLogger(__name__)

Task = models.Task
#: The task types a caller may create (Glance's schema also lists
#: ``api_image_import`` and ``location_import``, which only Glance itself makes).
TYPES = ("import",)
STATUSES = ("pending", "processing", "success", "failure")
#: The interoperable import methods nimbus runs (``/v2/info/import``): with
#: several stores also :data:`COPY_IMAGE`.
IMPORT_METHODS = ("glance-direct",)
COPY_IMAGE = "copy-image"
_IMPORT_BODY_KEYS = frozenset({"method", "stores", "all_stores", "all_stores_must_succeed"})
UNFINISHED = ("pending", "processing")
SORT_KEYS = ("created_at", "updated_at", "id", "type", "status", "owner")
_IMPORT_KEYS = ("import_from", "import_from_format", "image_properties")
_UUID_LEN = 36


def import_methods(stores: Stores) -> tuple[str, ...]:
    """Return the import methods a cloud with *stores* offers (``copy-image`` with several)."""
    return (*IMPORT_METHODS, COPY_IMAGE) if len(stores) > 1 else IMPORT_METHODS


def _rows(session: orm.Session, stmt: Any) -> int:
    """Execute an UPDATE or DELETE; return how many rows it matched."""
    return int(cast("CursorResult[Any]", session.execute(stmt)).rowcount)


def _iso(value: datetime.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _is_uuid(value: str) -> bool:
    try:
        return len(value) == _UUID_LEN and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


class Executor(Protocol):
    """Runs a task's work somewhere else (a thread pool)."""

    def submit(self, fn: Callable[[], None], /) -> object:
        """Schedule ``fn()``."""


class UrlOpener(Protocol):
    """Opens an import's source URL: ``opener(url, timeout=...)``."""

    def __call__(self, url: str, *, timeout: float) -> Any:
        """Return a response with ``readinto``, ``headers`` and ``close``."""


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to ``http`` and ``https`` URLs."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.URLError(f"Redirect to a disallowed URL: {printable(newurl)}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_url(url: str, *, timeout: float) -> Any:
    """Open an ``http``/``https`` URL, following only redirects to such URLs."""
    opener = urllib.request.build_opener(_SafeRedirects)
    return opener.open(url, timeout=timeout)


@dataclasses.dataclass(frozen=True)
class TaskQuery:
    """What a task list asked for.

    :param limit: the page size.
    :param marker: the id of the last task of the previous page.
    :param sort_key: one of :data:`SORT_KEYS`.
    :param sort_dir: ``asc`` or ``desc``.
    :param status: only tasks in this status.
    :param type: only tasks of this type.
    """

    limit: int
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    status: str | None = None
    type: str | None = None


def _view(row: models.Task, *, full: bool = True) -> dict[str, Any]:
    """Return a task as Glance shows it; a list shows it without input, result, message."""
    view: dict[str, Any] = {
        "id": row.id,
        "type": row.type,
        "status": row.status,
        "owner": row.owner,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "self": f"/v2/tasks/{row.id}",
        "schema": "/v2/schemas/task",
    }
    if full:
        view.update(input=row.input, result=row.result, message=row.message or "")
        for name in ("image_id", "request_id", "user_id"):
            if getattr(row, name):
                view[name] = getattr(row, name)
    if row.expires_at is not None:
        view["expires_at"] = _iso(row.expires_at)
    return view


@dataclasses.dataclass(eq=False)
class TaskService:
    """Tasks: create, list, show, run in the background, recover and expire.

    :param conf: the nimbus config (``[image]``).
    :param db: nimbus's database (schema already upgraded).
    :param enforcer: checks policy rules (``image:tasks_api_access``, ``image:*_task*``).
    :param images: the image service (what an ``import`` task creates).
    :param data: the image data path (what an ``import`` task uploads through).
    :param executor: runs task work; by default ``[image] task_workers`` threads.
    :param open_url: opens an import's source URL.
    """

    conf: cfg.ConfigOpts
    db: Database
    enforcer: Authorizer
    images: ImageService
    data: ImageData
    _: dataclasses.KW_ONLY
    executor: Executor | None = None
    open_url: UrlOpener = open_url
    _alive: set[str] = dataclasses.field(default_factory=set, init=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        if self.executor is None:
            self.executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.conf.image.task_workers, thread_name_prefix="image-task"
            )

    # -- policy and visibility -------------------------------------------------

    def authorize(self, ctx: RequestContext, action: str, owner: str | None = None) -> None:
        """Check the tasks API's blanket rule, then ``image:<action>``."""
        target = {"project_id": owner if owner is not None else (ctx.project_id or "")}
        self.enforcer.authorize(ctx, "image:tasks_api_access", target)
        self.enforcer.authorize(ctx, f"image:{action}", target)

    @staticmethod
    def _visible(ctx: RequestContext) -> Any:
        """Cloud admins see every task, anyone else its own project's (as Glance)."""
        if ctx.is_admin:
            return sa.true()
        return Task.owner == (ctx.project_id or "")

    def _load(self, session: orm.Session, ctx: RequestContext, task_id: str) -> models.Task:
        row = session.execute(
            sa.select(Task).where(Task.id == task_id, self._visible(ctx))
        ).scalar_one_or_none()
        if row is None:
            raise exception.NotFound(message=f"Task with the given id {task_id} was not found")
        return row

    # -- the API ---------------------------------------------------------------

    def get(self, ctx: RequestContext, task_id: str) -> dict[str, Any]:
        """Return a task the caller can see.

        :raises NotFound: no such task, or another project's.
        """
        self.authorize(ctx, "get_task")
        with self.db.reader() as session:
            return _view(self._load(session, ctx, task_id))

    def query(self, params: Mapping[str, Any]) -> TaskQuery:
        """Return the list query of a request's parameters (Glance's names and checks).

        Parameters other than the filters and the paging ones are ignored,
        as Glance ignores filters on attributes tasks do not have.

        :raises BadRequest: an invalid limit, marker, sort key or direction,
            status or type.
        """

        def one(name: str) -> str | None:
            value = params.get(name)
            if isinstance(value, list):
                value = value[-1]
            return value if value not in (None, "") else None

        conf = self.conf.image
        limit = glance_limit(one("limit"), conf.limit_param_default)
        marker = one("marker")
        if marker is not None and not _is_uuid(marker):
            raise exception.BadRequest(reason="Invalid marker format")
        sort_key = one("sort_key") or "created_at"
        if sort_key not in SORT_KEYS:
            raise exception.BadRequest(reason=f"Invalid sort key: {printable(sort_key)[:80]}")
        sort_dir = one("sort_dir") or "desc"
        if sort_dir not in ("asc", "desc"):
            raise exception.BadRequest(reason=f"Invalid sort direction: {printable(sort_dir)[:80]}")
        status = one("status")
        if status is not None and status not in STATUSES:
            raise exception.BadRequest(reason=f"Invalid status value: {printable(status)[:80]}")
        kind = one("type")
        if kind is not None and kind not in TYPES:
            raise exception.BadRequest(reason=f"Invalid type value: {printable(kind)[:80]}")
        return TaskQuery(
            limit=min(limit, conf.api_limit_max),
            marker=marker,
            sort_key=sort_key,
            sort_dir=sort_dir,
            status=status,
            type=kind,
        )

    def list(self, ctx: RequestContext, query: TaskQuery) -> tuple[list[dict[str, Any]], bool]:
        """Return one page of the tasks the caller can see, and whether more follow.

        :raises BadRequest: the marker names no task the caller can see.
        """
        self.authorize(ctx, "get_tasks")
        column = getattr(Task, query.sort_key)
        descending = query.sort_dir == "desc"
        stmt = sa.select(Task).where(self._visible(ctx))
        if query.status is not None:
            stmt = stmt.where(Task.status == query.status)
        if query.type is not None:
            stmt = stmt.where(Task.type == query.type)
        with self.db.reader() as session:
            if query.marker is not None:
                marker = session.execute(
                    sa.select(Task).where(Task.id == query.marker, self._visible(ctx))
                ).scalar_one_or_none()
                if marker is None:
                    raise exception.BadRequest(
                        reason=f"Task with the given id {query.marker} was not found"
                    )
                value = getattr(marker, query.sort_key)
                after = (column < value) if descending else (column > value)
                tie = (Task.id < marker.id) if descending else (Task.id > marker.id)
                stmt = stmt.where(sa.or_(after, sa.and_(column == value, tie)))
            order = (column.desc(), Task.id.desc()) if descending else (column.asc(), Task.id)
            rows = list(session.scalars(stmt.order_by(*order).limit(query.limit + 1)))
        more = len(rows) > query.limit
        return [_view(row, full=False) for row in rows[: query.limit]], more

    def create(self, ctx: RequestContext, body: Any) -> dict[str, Any]:
        """Create a task from a request body and start it.

        :raises Forbidden: policy refuses (by default: not a cloud admin), or
            the token has no project.
        :raises BadRequest: no body, no ``type`` or ``input``, an unknown type,
            or an ``import`` input Glance would refuse.
        """
        self.authorize(ctx, "add_task")
        kind, task_input = self._check_body(body)
        if ctx.project_id is None:
            raise exception.Forbidden(
                message="Tasks belong to projects: use a project-scoped token to create one."
            )
        row = self._new(ctx, kind, task_input)

        def write(session: orm.Session) -> dict[str, Any]:
            session.add(row)
            session.flush()
            return _view(row)

        task = self.db.write(write)
        self._start(ctx, row.id)
        return task

    @staticmethod
    def _new(
        ctx: RequestContext, kind: str, task_input: dict[str, Any], image_id: str | None = None
    ) -> models.Task:
        now = utcnow()
        return Task(
            id=str(uuid.uuid4()),
            type=kind,
            status="pending",
            owner=ctx.project_id or "",
            input=task_input,
            result=None,
            message="",
            image_id=image_id,
            request_id=ctx.request_id,
            user_id=ctx.user_id,
            created_at=now,
            updated_at=now,
        )

    # -- interoperable import ----------------------------------------------------

    def import_image(
        self,
        ctx: RequestContext,
        image_id: str,
        body: Any,
        *,
        store_header: str | None = None,
    ) -> dict[str, Any] | None:
        """Start importing an image's data (``POST /v2/images/{id}/import``).

        :param store_header: the request's ``X-Image-Meta-Store``, if any.
        :returns: the ``api_image_import`` task, pending; ``None`` when a
            ``copy-image`` to every store finds nothing to copy.
        :raises BadRequest: the body names no method, or one nimbus does not
            offer; ``stores`` is malformed or given with ``all_stores``.
        :raises NotFound: no such image visible to the caller.
        :raises PolicyNotAuthorized: the caller may not modify (copy) the image.
        :raises Conflict: the image is not staged (active, for a copy), another
            import holds it, or a store is unknown.
        """
        method = self._check_import_body(body)
        stores = self._import_stores(body, store_header)
        task_input = {"image_id": image_id, "import_req": body, "backend": stores}
        row = self._new(ctx, "api_image_import", task_input, image_id)
        self.db.write(lambda session: session.add(row))
        stmt = sa.delete(Task).where(Task.id == row.id)
        try:
            targets = self.images.begin_import(
                ctx, image_id, method, row.id, stores, all_stores=body.get("all_stores") is True
            )
        except BaseException:
            # A refused import leaves no task behind.
            self.db.write(lambda session: session.execute(stmt))
            raise
        if not targets:
            # Nothing to copy: no task either (Glance answers 202 all the same).
            self.db.write(lambda session: session.execute(stmt))
            return None
        if targets != stores:
            task_input = {**task_input, "backend": targets}
            self._move(row.id, ("pending",), {"input": task_input})
            row.input = task_input
        self._start(ctx, row.id)
        return _view(row)

    def _import_stores(self, body: dict[str, Any], header: str | None) -> builtins.list[str]:
        """Return the stores an import request asks for, checked (Glance's rules)."""
        stores = self.images.stores
        if not stores.multiple:
            # As Glance without enabled_backends: the one store, whatever was asked.
            return [stores.default]
        if body.get("all_stores") is True:
            if "stores" in body or header is not None:
                raise exception.BadRequest(
                    reason="All_stores parameter can't be used with x-image-meta-store header"
                    " or stores parameter"
                )
            return list(stores)
        if "stores" in body:
            if header is not None:
                raise exception.BadRequest(
                    reason="Stores parameter and x-image-meta-store header can't be both specified"
                )
            asked = body["stores"]
            if (
                not isinstance(asked, list)
                or not asked
                or not all(isinstance(item, str) for item in asked)
            ):
                raise exception.BadRequest(reason="'stores' must be a list of store ids")
        else:
            asked = [header if header is not None else stores.default]
        for store_id in asked:
            if store_id not in stores:
                raise exception.Conflict(
                    message=f"Store for identifier {printable(store_id)[:80]} not found"
                )
        # Each store once, in the order asked.
        return list(dict.fromkeys(asked))

    def list_for_image(self, ctx: RequestContext, image_id: str) -> builtins.list[dict[str, Any]]:
        """Return the tasks of an image the caller can see, newest first (Glance 2.12).

        :raises NotFound: no such image visible to the caller.
        """
        self.images.get(ctx, image_id)
        stmt = (
            sa.select(Task)
            .where(Task.image_id == image_id, self._visible(ctx))
            .order_by(Task.created_at.desc(), Task.id)
        )
        with self.db.reader() as session:
            return [_view(row) for row in session.scalars(stmt)]

    def _check_import_body(self, body: Any) -> str:
        if not isinstance(body, dict):
            raise exception.BadRequest(reason="Body expected in request.")
        unknown = sorted(set(body) - _IMPORT_BODY_KEYS)
        if unknown:
            raise exception.BadRequest(
                reason=f"Additional properties are not allowed ('{printable(unknown[0])[:80]}')"
            )
        method = body.get("method")
        if not isinstance(method, dict) or not isinstance(method.get("name"), str):
            raise exception.BadRequest(reason="Import request requires a 'method' with a 'name'")
        name = method["name"]
        methods = import_methods(self.images.stores)
        if name not in methods:
            raise exception.BadRequest(
                reason=f"Import method {printable(name)[:80]} is not supported; available: "
                + ", ".join(methods)
            )
        for flag in ("all_stores", "all_stores_must_succeed"):
            if flag in body and not isinstance(body[flag], bool):
                raise exception.BadRequest(reason=f"'{flag}' must be a boolean")
        if body.get("all_stores_must_succeed") is False and not self.images.stores.multiple:
            # As Glance without several stores.
            raise exception.BadRequest(
                reason="All_stores_must_succeed can only be set with several stores"
            )
        return name

    def _glance_direct(self, task_id: str, task_input: dict[str, Any]) -> str:
        """Check an image's staged data, write it to the stores asked for, activate the image."""
        image_id = str(task_input["image_id"])
        stored = self.images.staged_data(image_id)
        self._check_staged(image_id, stored)
        targets = [str(s) for s in task_input.get("backend") or [self.images.stores.default]]
        must = self._must_succeed(task_input)
        done = self._write_to_stores(image_id, task_id, stored, targets, must=must)
        if not done:
            raise exception.Conflict(
                message=f"The data of image {image_id} could not be written to any of the"
                f" stores {', '.join(targets)}."
            )
        if stored.store not in done:
            # Staged in a store the import was not asked for.
            self.images.drop_location(image_id, stored.store)
        if self.images.end_import(image_id, task_id, succeeded=True) is None:
            raise exception.Conflict(
                message=f"Image {image_id} was deleted or its import given up meanwhile."
            )
        return image_id

    def _copy_image(self, task_id: str, task_input: dict[str, Any]) -> str:
        """Copy an active image's data to the stores asked for (``copy-image``)."""
        image_id = str(task_input["image_id"])
        stored = self.images.stored_data(image_id)
        targets = [str(s) for s in task_input.get("backend") or []]
        self._write_to_stores(
            image_id, task_id, stored, targets, must=self._must_succeed(task_input)
        )
        if self.images.end_import(image_id, task_id, succeeded=True) is None:
            raise exception.Conflict(
                message=f"Image {image_id} was deleted or its copy given up meanwhile."
            )
        return image_id

    @staticmethod
    def _must_succeed(task_input: dict[str, Any]) -> bool:
        request = task_input.get("import_req") or {}
        return request.get("all_stores_must_succeed", True) is not False

    def _check_staged(self, image_id: str, stored: StagedData) -> None:
        """Read the staged data back; raise Conflict unless it is what was staged."""
        algorithm = stored.hash_algo or self.conf.image.hashing_algorithm
        digest = hashlib.new(algorithm)
        size = 0
        reader = self.images.store_of(stored.store).get(stored.location)
        try:
            while chunk := reader.read(self.conf.image.chunk_size):
                digest.update(chunk)
                size += len(chunk)
        finally:
            reader.close()
        if size != stored.size or digest.hexdigest() != stored.hash_value:
            raise exception.Conflict(
                message=f"The staged data of image {image_id} changed since it was staged"
                f" ({size} bytes read, {stored.size} staged); stage it again."
            )

    def _write_to_stores(
        self,
        image_id: str,
        task_id: str,
        source: StagedData,
        targets: builtins.list[str],
        *,
        must: bool,
    ) -> builtins.list[str]:
        """Write the data at *source* to each of *targets*; return the stores that have it.

        A store that fails goes to ``os_glance_failed_import`` and the next
        is tried; with *must*, the first failure removes what this call
        wrote and raises.
        """
        done: builtins.list[str] = []
        written: builtins.list[str] = []
        for store_id in targets:
            try:
                if store_id == source.store:
                    if not self.images.add_location(image_id, task_id, store_id, source.location):
                        raise exception.Conflict(
                            message=f"Image {image_id} was deleted or its import given up."
                        )
                else:
                    self._copy_to(image_id, task_id, source, store_id)
                    written.append(store_id)
            except Exception as ex:  # noqa: BLE001 - recorded per store, or re-raised
                LOG.warning(
                    "Import task %s could not write image %s to store %s: %s",
                    task_id,
                    image_id,
                    store_id,
                    printable(ex),
                )
                if must:
                    for store in written:
                        self.images.drop_location(image_id, store)
                    raise
                self.images.import_failed_in(image_id, task_id, store_id)
                continue
            done.append(store_id)
        return done

    def _copy_to(self, image_id: str, task_id: str, source: StagedData, store_id: str) -> None:
        """Copy the data at *source* into *store_id* and record the new location.

        The copy is checked against the recorded size and multihash; a copy
        that does not match, or that the import no longer holds the image
        for, is removed from the store.
        """
        target = self.images.stores.get(store_id)
        if target is None:
            raise exception.Conflict(message=f"Store for identifier {store_id} not found")
        algorithm = source.hash_algo or self.conf.image.hashing_algorithm
        digest = hashlib.new(algorithm)
        chunk_size = self.conf.image.chunk_size
        reader = self.images.store_of(source.store).get(source.location)

        def chunks() -> Any:
            while chunk := reader.read(chunk_size):
                digest.update(chunk)
                yield chunk

        try:
            stored = target.add(image_id, chunks())
        finally:
            reader.close()
        if stored.size != source.size or (
            source.hash_value is not None and digest.hexdigest() != source.hash_value
        ):
            self.images.delete_data(stored.location, store_id)
            raise exception.Conflict(
                message=f"The copy of image {image_id} to store {store_id} does not match its"
                f" data ({stored.size} bytes of {source.size})."
            )
        if not self.images.add_location(image_id, task_id, store_id, stored.location):
            self.images.delete_data(stored.location, store_id)
            raise exception.Conflict(
                message=f"Image {image_id} was deleted or its import given up meanwhile."
            )

    def _check_body(self, body: Any) -> tuple[str, dict[str, Any]]:
        if body is None:
            raise exception.BadRequest(reason="Body expected in request.")
        if not isinstance(body, dict):
            raise exception.BadRequest(reason="The request body must be a JSON object.")
        for name in ("type", "input"):
            if name not in body:
                raise exception.BadRequest(reason=f"Task '{name}' is required")
        unknown = sorted(set(body) - {"type", "input"})
        if unknown:
            raise exception.BadRequest(
                reason=f"Attribute '{printable(unknown[0])[:80]}' is read-only or unknown."
            )
        kind, task_input = body["type"], body["input"]
        if kind not in TYPES:
            raise exception.BadRequest(
                reason=f"Invalid type value: {printable(kind)[:80]}; supported: " + ", ".join(TYPES)
            )
        if not isinstance(task_input, dict):
            raise exception.BadRequest(reason="Task 'input' must be a JSON object.")
        for name in _IMPORT_KEYS:
            if name not in task_input:
                raise exception.BadRequest(reason=f"Input does not contain '{name}' field")
        self._check_source(task_input["import_from"])
        if not isinstance(task_input["import_from_format"], str):
            raise exception.BadRequest(reason="'import_from_format' must be a string.")
        properties = task_input["image_properties"]
        if not isinstance(properties, dict):
            raise exception.BadRequest(reason="'image_properties' must be a JSON object.")
        try:
            schema.create_values(self.conf, properties)
        except (exception.Invalid, exception.Forbidden) as ex:
            raise exception.BadRequest(reason=f"Invalid image_properties: {ex}") from ex
        return kind, task_input

    @staticmethod
    def _check_source(url: Any) -> None:
        """Refuse an import source that is not an ``http``/``https`` URL (as Glance)."""
        if not isinstance(url, str) or not url:
            raise exception.BadRequest(reason=f"Invalid location: {printable(url)[:200]}")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("file", "filesystem"):
            raise exception.BadRequest(
                reason="File based imports are not allowed. Please use a non-local source"
                " of image data."
            )
        if parts.scheme not in ("http", "https"):
            raise exception.BadRequest(
                reason="The given uri is not valid. Please specify a valid uri from the"
                " following list of supported uri ['http', 'https']"
            )
        if not parts.hostname:
            raise exception.BadRequest(
                reason=f"URI for legacy import task does not pass filtering: {printable(url)[:200]}"
            )

    # -- running -----------------------------------------------------------------

    def _start(self, ctx: RequestContext, task_id: str) -> None:
        with self._lock:
            self._alive.add(task_id)
        assert self.executor is not None
        try:
            self.executor.submit(lambda: self.run(ctx, task_id))
        except RuntimeError as ex:
            # The pool is shut down: the process is stopping.
            self._end(task_id, "failure", message=f"The task could not be started: {ex}")

    def run(self, ctx: RequestContext, task_id: str) -> None:
        """Run a pending task to its end (the worker thread's entry point)."""
        try:
            if not self._move(task_id, ("pending",), {"status": "processing"}):
                return
            with self.db.reader() as session:
                row = session.get(Task, task_id)
                task_input = dict(row.input or {}) if row is not None else {}
            with self.db.reader() as session:
                found = session.get(Task, task_id)
                kind = found.type if found is not None else ""
            if kind == "api_image_import":
                self._run_import(task_id, task_input)
                return
            image_id: str | None = None
            try:
                image_id = self._import(ctx, task_id, task_input)
            except Exception as ex:  # noqa: BLE001 - every failure ends the task, with why
                LOG.warning("Task %s failed: %s", task_id, printable(ex))
                if image_id is None:
                    with self.db.reader() as session:
                        found = session.get(Task, task_id)
                        image_id = found.image_id if found is not None else None
                if image_id is not None:
                    self._discard_image(ctx, image_id)
                self._end(task_id, "failure", message=_message(ex))
                return
            if not self._end(task_id, "success", result={"image_id": image_id}):
                # The recovery failed the task meanwhile: its outcome stands.
                self._discard_image(ctx, image_id)
        finally:
            with self._lock:
                self._alive.discard(task_id)

    def _run_import(self, task_id: str, task_input: dict[str, Any]) -> None:
        """Run an ``api_image_import`` task; a failure puts its image back to ``queued``."""
        image_id = str(task_input.get("image_id"))
        request = task_input.get("import_req") or {}
        method = (request.get("method") or {}).get("name")
        try:
            if method == COPY_IMAGE:
                self._copy_image(task_id, task_input)
            else:
                self._glance_direct(task_id, task_input)
        except Exception as ex:  # noqa: BLE001 - every failure ends the task, with why
            LOG.warning("Import task %s of image %s failed: %s", task_id, image_id, printable(ex))
            self._end(task_id, "failure", message=_message(ex))
            self.images.end_import(image_id, task_id, succeeded=False)
            return
        self._end(task_id, "success", result={"image_id": image_id})

    def _import(self, ctx: RequestContext, task_id: str, task_input: dict[str, Any]) -> str:
        """Create the image of an ``import`` task and fill it from the source URL."""
        values = schema.create_values(self.conf, dict(task_input["image_properties"]))
        values.pop("id", None)
        image = self.images.create(ctx, values)
        self._move(task_id, UNFINISHED, {"image_id": image["id"]})
        response = self.open_url(
            task_input["import_from"], timeout=self.conf.image.task_url_timeout
        )
        try:
            length = response.headers.get("Content-Length")
            content_length = int(length) if length and length.isdigit() else None
            self.data.upload(ctx, image["id"], response.readinto, content_length=content_length)
        finally:
            response.close()
        return str(image["id"])

    def _discard_image(self, ctx: RequestContext, image_id: str) -> None:
        try:
            self.images.delete(ctx, image_id)
        except exception.NotFound:
            pass
        except Exception:  # noqa: BLE001 - the task's outcome matters more
            LOG.warning("Could not delete image %s of a failed task", image_id, exc_info=True)

    def _move(self, task_id: str, expected: tuple[str, ...], values: dict[str, Any]) -> bool:
        """Change a task only while its status is one of *expected*; tell whether it did."""
        stmt = (
            sa.update(Task)
            .where(Task.id == task_id, Task.status.in_(expected))
            .values({"updated_at": utcnow(), **values})
            .execution_options(synchronize_session=False)
        )
        return self.db.write(lambda s: _rows(s, stmt) == 1)

    def _end(
        self,
        task_id: str,
        status: str,
        *,
        message: str = "",
        result: dict[str, Any] | None = None,
    ) -> bool:
        now = utcnow()
        expires = now + datetime.timedelta(hours=self.conf.image.task_time_to_live)
        values = {"status": status, "message": message, "result": result, "expires_at": expires}
        return self._move(task_id, UNFINISHED, {**values, "updated_at": now})

    # -- recovery ----------------------------------------------------------------

    def recover(self, *, older_than: float) -> int:
        """Refresh this process's live tasks, then fail the tasks nobody refreshed.

        :param older_than: seconds since a task's last heartbeat after which
            it counts as dead; 0 fails every unfinished task (only safe when
            no process can be running one, as before ``nimbus up`` serves).
        :returns: how many tasks were failed.
        """
        now = utcnow()
        with self._lock:
            alive = sorted(self._alive)
        cutoff = now - datetime.timedelta(seconds=older_than)
        expires = now + datetime.timedelta(hours=self.conf.image.task_time_to_live)

        def write(session: orm.Session) -> builtins.list[tuple[str, str, str | None]]:
            if alive and older_than > 0:
                session.execute(
                    sa.update(Task)
                    .where(Task.id.in_(alive), Task.status.in_(UNFINISHED))
                    .values(updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            stale = sa.and_(Task.status.in_(UNFINISHED), Task.updated_at <= cutoff)
            dead = [
                (task_id, kind, image_id)
                for task_id, kind, image_id in session.execute(
                    sa.select(Task.id, Task.type, Task.image_id).where(stale).with_for_update()
                )
            ]
            if dead:
                session.execute(
                    sa.update(Task)
                    .where(Task.id.in_([task_id for task_id, _, _ in dead]), stale)
                    .values(
                        status="failure",
                        message="The process running the task stopped before it ended.",
                        expires_at=expires,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
            return dead

        dead = self.db.write(write)
        if dead:
            LOG.warning("Failed %d task(s) whose process stopped", len(dead))
        # A dead legacy import leaves no half-made image behind (as one that failed).
        admin = RequestContext.admin()
        for _, kind, image_id in dead:
            if kind == "import" and image_id is not None:
                self._discard_image(admin, image_id)
        count = len(dead)
        # An image still importing for a task that ended (the recovery
        # failed it, or its process died between the two writes).
        for image_id, task_id in self.images.imports_of_ended_tasks():
            with self.db.reader() as session:
                task = session.get(Task, task_id)
                succeeded = task is not None and task.status == "success"
            self.images.end_import(image_id, task_id, succeeded=succeeded)
        return count

    def expire(self) -> int:
        """Remove the tasks past their ``expires_at``; return how many went."""
        stmt = sa.delete(Task).where(Task.expires_at.is_not(None), Task.expires_at < utcnow())
        return self.db.write(lambda s: _rows(s, stmt))

    def recover_and_expire(self, *, older_than: float) -> int:
        """Run :meth:`recover`, then :meth:`expire` (one periodic task)."""
        return self.recover(older_than=older_than) + self.expire()


def _message(ex: BaseException) -> str:
    """Return why a task failed, as its user should read it."""
    if isinstance(ex, urllib.error.HTTPError):
        return f"The source answered HTTP {ex.code}: {printable(ex.reason)}"
    if isinstance(ex, urllib.error.URLError):
        return f"The source could not be read: {printable(ex.reason)}"
    if isinstance(ex, exception.NimbusException):
        return printable(ex)
    if isinstance(ex, OSError):
        return f"The source could not be read: {printable(ex)}"
    return f"The task failed: {printable(ex)}"
