"""The generic repository on SQLite, with a throwaway model.

:class:`RepositoryContract` holds the tests; ``tests/integration`` runs the
same class against MariaDB and PostgreSQL.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception
from nimbus.db import Database
from nimbus.db.repository import Kind, Page, Repository, row_dict


class _Base(orm.DeclarativeBase):
    type_annotation_map = {dict[str, Any]: sa.JSON}


class Shelf(_Base):
    __tablename__ = "repo_test_shelves"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)


class Widget(_Base):
    __tablename__ = "repo_test_widgets"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(64), unique=True)
    status: orm.Mapped[str] = orm.mapped_column(sa.String(16), default="new")
    shelf_id: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(64), sa.ForeignKey("repo_test_shelves.id")
    )
    extra: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)


class WidgetNotFound(exception.NotFound):
    msg_fmt = "No widget %(id)s here."


class Policy:
    """A policy stub: records every check and denies the rules in ``denied``."""

    def __init__(self) -> None:
        self.checks: list[tuple[str, dict[str, Any] | None]] = []
        self.denied: set[str] = set()

    def __call__(self, ctx: Any, action: str, target: dict[str, Any] | None) -> None:
        self.checks.append((action, target))
        if action in self.denied:
            raise exception.PolicyNotAuthorized(action=action)


def _widget_dict(row: Widget) -> dict[str, Any]:
    return row_dict(row, ("id", "name"), state=row.status)


def make_tables(db: Database) -> None:
    """Create the throwaway tables (dropping leftovers of a dead run first)."""
    _Base.metadata.drop_all(db.engine)
    _Base.metadata.create_all(db.engine)


def drop_tables(db: Database) -> None:
    """Drop the throwaway tables."""
    _Base.metadata.drop_all(db.engine)


class RepositoryContract:
    """Tests of :class:`Repository`; subclasses give a ``database`` fixture."""

    @pytest.fixture
    def widgets(self, database: Database) -> Repository[Widget]:
        return Repository(
            database,
            Widget,
            kind="widget",
            not_found=lambda item_id: WidgetNotFound(id=item_id),
            conflict_reason=lambda values: f"name {values.get('name')} is taken",
        )

    @pytest.fixture
    def shelves(self, database: Database) -> Repository[Shelf]:
        return Repository(database, Shelf, kind="shelf", extra_column=None)

    def test_create_then_get(self, widgets: Repository[Widget]) -> None:
        widgets.create({"id": "w1", "name": "one", "extra": {"colour": "red"}})
        row = widgets.get("w1")
        assert (row.name, row.status, row.extra) == ("one", "new", {"colour": "red"})

    def test_get_unknown_raises_the_kinds_error(self, widgets: Repository[Widget]) -> None:
        with pytest.raises(WidgetNotFound, match="No widget nope here."):
            widgets.get("nope")

    def test_default_not_found_names_kind_and_id(self, shelves: Repository[Shelf]) -> None:
        with pytest.raises(exception.NotFound, match="Could not find shelf: s9."):
            shelves.get("s9")

    def test_duplicate_is_conflict_with_reason(self, widgets: Repository[Widget]) -> None:
        widgets.create({"id": "w1", "name": "one"})
        with pytest.raises(exception.Conflict, match="widget - name one is taken"):
            widgets.create({"id": "w2", "name": "one"})
        with pytest.raises(exception.Conflict, match="widget - own reason"):
            widgets.create({"id": "w1", "name": "other"}, reason="own reason")

    def test_unknown_foreign_key_is_validation_error(self, widgets: Repository[Widget]) -> None:
        with pytest.raises(exception.ValidationError, match="does not exist"):
            widgets.create({"id": "w1", "name": "one", "shelf_id": "missing"})

    def test_list_filters_and_orders_by_id(self, widgets: Repository[Widget]) -> None:
        for item_id, name, status in [("b", "n2", "new"), ("a", "n1", "new"), ("c", "n3", "old")]:
            widgets.create({"id": item_id, "name": name, "status": status})
        assert [w.id for w in widgets.list()] == ["a", "b", "c"]
        assert [w.id for w in widgets.list(filters={"status": "new"})] == ["a", "b"]
        assert [w.id for w in widgets.list(filters={"status": None})] == ["a", "b", "c"]
        assert [w.id for w in widgets.list(where=[Widget.name != "n1"])] == ["b", "c"]
        assert [w.id for w in widgets.list(ids={"c", "a"})] == ["a", "c"]
        assert widgets.list(ids=set()) == []
        assert [w.id for w in widgets.list(order=[Widget.name.desc()])] == ["c", "b", "a"]
        assert widgets.count(filters={"status": "new"}) == 2
        found = widgets.find(name="n3")
        assert found is not None and found.id == "c"
        assert widgets.find(name="n9") is None

    def test_pages_follow_the_marker(self, widgets: Repository[Widget]) -> None:
        for index in range(5):
            widgets.create({"id": f"w{index}", "name": f"n{index}"})
        assert [w.id for w in widgets.list(page=Page(limit=2))] == ["w0", "w1"]
        assert [w.id for w in widgets.list(page=Page(limit=2, marker="w1"))] == ["w2", "w3"]
        assert [w.id for w in widgets.list(page=Page(marker="w3"))] == ["w4"]
        # An unknown marker is where its id would sort, not an error.
        assert [w.id for w in widgets.list(page=Page(limit=2, marker="w10"))] == ["w2", "w3"]

    def test_update_sets_columns_and_keeps_the_rest_in_extra(
        self, widgets: Repository[Widget]
    ) -> None:
        widgets.create({"id": "w1", "name": "one", "extra": {"a": 1}})
        row = widgets.update("w1", {"name": "uno", "b": 2}, columns=("name",))
        assert (row.name, row.extra) == ("uno", {"a": 1, "b": 2})
        assert widgets.get("w1").extra == {"a": 1, "b": 2}

    def test_update_conflict_and_not_found(self, widgets: Repository[Widget]) -> None:
        widgets.create({"id": "w1", "name": "one"})
        widgets.create({"id": "w2", "name": "two"})
        with pytest.raises(exception.Conflict, match="name one is taken"):
            widgets.update("w2", {"name": "one"}, columns=("name",))
        assert widgets.get("w2").name == "two"
        with pytest.raises(WidgetNotFound):
            widgets.update("w9", {"name": "x"}, columns=("name",))

    def test_update_refuses_unknown_keys_without_extra(self, shelves: Repository[Shelf]) -> None:
        shelves.create({"id": "s1"})
        with pytest.raises(exception.ValidationError, match="colour"):
            shelves.update("s1", {"colour": "red"}, columns=())

    def test_delete(self, widgets: Repository[Widget]) -> None:
        widgets.create({"id": "w1", "name": "one"})
        widgets.delete("w1")
        with pytest.raises(WidgetNotFound):
            widgets.get("w1")
        with pytest.raises(WidgetNotFound):
            widgets.delete("w1")

    def test_delete_where_counts(self, widgets: Repository[Widget]) -> None:
        for index in range(3):
            widgets.create({"id": f"w{index}", "name": f"n{index}", "status": "old"})
        assert widgets.delete_where(Widget.id != "w0") == 2
        assert [w.id for w in widgets.list()] == ["w0"]

    def test_update_where_only_from_the_expected_state(self, widgets: Repository[Widget]) -> None:
        widgets.create({"id": "w1", "name": "one", "status": "queued"})
        assert widgets.update_where(
            "w1", expected={"status": ("queued", "saving")}, values={"status": "active"}
        )
        assert widgets.get("w1").status == "active"
        assert not widgets.update_where(
            "w1", expected={"status": ("queued",)}, values={"status": "killed"}
        )
        assert widgets.get("w1").status == "active"
        assert not widgets.update_where(
            "w9", expected={"status": ("queued",)}, values={"status": "x"}
        )

    def test_update_where_has_one_winner(
        self, widgets: Repository[Widget], database: Database
    ) -> None:
        widgets.create({"id": "w1", "name": "one", "status": "queued"})
        threads = 6
        barrier = threading.Barrier(threads)

        def race(index: int) -> bool:
            barrier.wait(timeout=30)
            return widgets.update_where(
                "w1", expected={"status": ("queued",)}, values={"status": f"won-{index}"}
            )

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(race, range(threads)))
        assert results.count(True) == 1
        assert widgets.get("w1").status == f"won-{results.index(True)}"

    def test_steps_compose_in_one_transaction(
        self, widgets: Repository[Widget], shelves: Repository[Shelf], database: Database
    ) -> None:
        def _steps(session: orm.Session) -> None:
            shelves.create({"id": "s1"}, session=session)
            widgets.create({"id": "w1", "name": "one", "shelf_id": "s1"}, session=session)
            widgets.update("w1", {"status": "placed"}, columns=("status",), session=session)
            assert widgets.get("w1", session=session).status == "placed"
            assert [w.id for w in widgets.list(session=session)] == ["w1"]
            assert widgets.update_where(
                "w1", expected={"status": ("placed",)}, values={"status": "done"}, session=session
            )
            widgets.create({"id": "w2", "name": "one"}, session=session)  # collides: all undone

        with pytest.raises(exception.Conflict, match="name one is taken"):
            database.write(_steps)
        assert widgets.list() == []
        assert shelves.list() == []

        def _commit(session: orm.Session) -> None:
            shelves.create({"id": "s1"}, session=session)
            widgets.create({"id": "w1", "name": "one", "shelf_id": "s1"}, session=session)
            widgets.delete("w1", session=session)

        database.write(_commit)
        assert [s.id for s in shelves.list()] == ["s1"]
        assert widgets.list() == []

    # -- Kind: the policy-checked layer over a repository ----------------------

    @pytest.fixture
    def policy(self) -> Policy:
        return Policy()

    @pytest.fixture
    def changes(self) -> list[str]:
        return []

    @pytest.fixture
    def kind(self, widgets: Repository[Widget], policy: Policy, changes: list[str]) -> Kind[Widget]:
        return Kind(
            widgets,
            authorize=policy,
            render=_widget_dict,
            service="shop",
            target_key="target.widget.id",
            columns=("name", "status"),
            on_change=lambda: changes.append("changed"),
        )

    def test_kind_checks_each_verbs_rule_with_the_id_as_target(
        self, kind: Kind[Widget], policy: Policy
    ) -> None:
        kind.create("ctx", {"id": "w1", "name": "one"})
        kind.get("ctx", "w1")
        kind.list("ctx")
        kind.update("ctx", "w1", {"name": "uno"})
        kind.delete("ctx", "w1")
        assert policy.checks == [
            ("shop:create_widget", None),
            ("shop:get_widget", {"target.widget.id": "w1"}),
            ("shop:list_widgets", None),
            ("shop:update_widget", {"target.widget.id": "w1"}),
            ("shop:delete_widget", {"target.widget.id": "w1"}),
        ]

    def test_kind_policy_denied_is_forbidden_and_changes_nothing(
        self, kind: Kind[Widget], policy: Policy, widgets: Repository[Widget], changes: list[str]
    ) -> None:
        kind.create("ctx", {"id": "w1", "name": "one"})
        policy.denied = {"shop:create_widget", "shop:update_widget", "shop:delete_widget"}
        policy.denied |= {"shop:get_widget", "shop:list_widgets"}
        with pytest.raises(exception.Forbidden, match="shop:create_widget"):
            kind.create("ctx", {"id": "w2", "name": "two"})
        with pytest.raises(exception.PolicyNotAuthorized, match="shop:update_widget"):
            kind.update("ctx", "w1", {"name": "uno"})
        with pytest.raises(exception.PolicyNotAuthorized, match="shop:delete_widget"):
            kind.delete("ctx", "w1")
        with pytest.raises(exception.PolicyNotAuthorized, match="shop:get_widget"):
            kind.get("ctx", "w1")
        with pytest.raises(exception.PolicyNotAuthorized, match="shop:list_widgets"):
            kind.list("ctx")
        assert [(w.id, w.name) for w in widgets.list()] == [("w1", "one")]
        assert changes == ["changed"]

    def test_kind_renders_and_maps_not_found(self, kind: Kind[Widget]) -> None:
        created = kind.create("ctx", {"id": "w1", "name": "one", "extra": {"colour": "red"}})
        assert created == {"colour": "red", "id": "w1", "name": "one", "state": "new"}
        assert kind.get("ctx", "w1") == created
        assert kind.get_by(name="one") == created
        with pytest.raises(WidgetNotFound, match="No widget nope here."):
            kind.get("ctx", "nope")
        with pytest.raises(exception.NotFound, match="Could not find widget: n9."):
            kind.get_by(name="n9")
        with pytest.raises(WidgetNotFound):
            kind.update("ctx", "nope", {"name": "x"})
        with pytest.raises(WidgetNotFound):
            kind.delete("ctx", "nope")

    def test_kind_conflict_on_duplicate_calls_no_hook(
        self, kind: Kind[Widget], changes: list[str]
    ) -> None:
        kind.create("ctx", {"id": "w1", "name": "one"})
        kind.create("ctx", {"id": "w2", "name": "two"})
        assert changes == ["changed", "changed"]
        with pytest.raises(exception.Conflict, match="name one is taken"):
            kind.create("ctx", {"id": "w3", "name": "one"})
        with pytest.raises(exception.Conflict, match="name one is taken"):
            kind.update("ctx", "w2", {"name": "one"})
        with pytest.raises(exception.Conflict, match="widget - mine"):
            kind.create("ctx", {"id": "w1", "name": "three"}, reason="mine")
        assert changes == ["changed", "changed"]
        assert kind.get("ctx", "w2")["name"] == "two"

    def test_kind_update_sets_columns_keeps_extra_and_sees_the_row_before(
        self, kind: Kind[Widget], changes: list[str]
    ) -> None:
        kind.create("ctx", {"id": "w1", "name": "one", "extra": {"a": 1}})
        seen: list[str] = []
        updated = kind.update(
            "ctx",
            "w1",
            {"name": "uno", "status": "old", "b": 2},
            check=lambda session, row: seen.append(row.name),
        )
        assert updated == {"a": 1, "b": 2, "id": "w1", "name": "uno", "state": "old"}
        assert seen == ["one"]
        assert changes == ["changed", "changed"]

    def test_kind_checks_run_in_the_write_and_may_refuse(
        self, kind: Kind[Widget], shelves: Repository[Shelf], widgets: Repository[Widget]
    ) -> None:
        def _no_shelf(session: orm.Session) -> None:
            if shelves.find(id="s1", session=session) is None:
                raise exception.ValidationError(field="shelf_id", reason="no shelf s1")

        with pytest.raises(exception.ValidationError, match="no shelf s1"):
            kind.create("ctx", {"id": "w1", "name": "one", "shelf_id": "s1"}, check=_no_shelf)
        assert widgets.list() == []
        shelves.create({"id": "s1"})
        kind.create("ctx", {"id": "w1", "name": "one", "shelf_id": "s1"}, check=_no_shelf)

        def _refuse(session: orm.Session, row: Widget) -> None:
            raise exception.Conflict(kind="widget", reason=f"{row.id} is on a shelf")

        with pytest.raises(exception.Conflict, match="w1 is on a shelf"):
            kind.delete("ctx", "w1", check=_refuse)
        assert widgets.get("w1").shelf_id == "s1"

        def _empty_shelf(session: orm.Session, row: Widget) -> None:
            widgets.update("w1", {"shelf_id": None}, session=session)
            shelves.delete("s1", session=session)

        kind.delete("ctx", "w1", check=_empty_shelf)
        assert widgets.list() == [] and shelves.list() == []

    def test_kind_list_filters_and_pages(self, kind: Kind[Widget]) -> None:
        for index in range(5):
            status = "old" if index % 2 else "new"
            kind.create("ctx", {"id": f"w{index}", "name": f"n{index}", "status": status})
        assert [w["id"] for w in kind.list("ctx", filters={"status": "new"})] == [
            "w0",
            "w2",
            "w4",
        ]
        page = Page(limit=2, marker="w1")
        assert [w["id"] for w in kind.list("ctx", page=page)] == ["w2", "w3"]
        assert [w["id"] for w in kind.list("ctx", ids={"w4", "w1"})] == ["w1", "w4"]
        assert [w["id"] for w in kind.list("ctx", where=[Widget.name > "n2"])] == ["w3", "w4"]

    def test_kind_without_target_key_checks_no_target(
        self, widgets: Repository[Widget], policy: Policy
    ) -> None:
        kind = Kind(widgets, authorize=policy, render=_widget_dict, service="shop", plural="wares")
        kind.create("ctx", {"id": "w1", "name": "one"})
        kind.get("ctx", "w1")
        kind.list("ctx")
        assert policy.checks == [
            ("shop:create_widget", None),
            ("shop:get_widget", None),
            ("shop:list_wares", None),
        ]


class TestRepositoryOnSqlite(RepositoryContract):
    @pytest.fixture
    def database(self, conf: cfg.ConfigOpts) -> Iterator[Database]:
        db = Database(conf)
        make_tables(db)
        try:
            yield db
        finally:
            drop_tables(db)
            db.dispose()


def test_row_dict_puts_columns_and_values_over_extra_keys() -> None:
    row = Widget(id="w1", name="one", status="new", extra={"name": "shadow", "colour": "red"})
    assert row_dict(row, ("id", "name"), state="x") == {
        "colour": "red",
        "name": "one",
        "id": "w1",
        "state": "x",
    }
    assert row_dict(Shelf(id="s1"), ("id",), extra_column=None) == {"id": "s1"}
