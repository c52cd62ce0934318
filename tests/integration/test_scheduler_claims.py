"""Concurrent claims from several schedulers never over-commit (MariaDB and PostgreSQL).

Two processes, each with two :class:`Scheduler` objects (own engines) on
threads, claim hundreds of instances on hosts that fit exactly 80 of them.
Their caches are left stale on purpose (``refresh_interval`` of an hour):
only the conditional UPDATE keeps them honest.  Afterwards exactly the
room there was is taken (with a last fill by a scheduler with a fresh
cache, for room a release left), every node's usage equals the sum of its
allocations, and every claim reported is in the allocations.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import exc

from nimbus import exception
from nimbus.compute.scheduler import HostInventory, RequestSpec, Scheduler, models
from nimbus.compute.scheduler import migrations as scheduler_migrations
from nimbus.db import Database
from nimbus.testing import services

pytestmark = [pytest.mark.services, pytest.mark.slow]

HOSTS = 10
PER_HOST = 8  # 8 vCPUs at ratio 1.0 and 8 GiB + 512 MB reserved: eight 1 vCPU / 1 GiB instances.
ATTEMPTS = 150  # per process: 300 claims for 80 places

WORKER = textwrap.dedent(
    """
    import json, sys, threading
    from nimbus import exception
    from nimbus.compute.scheduler import RequestSpec, Scheduler
    from nimbus.conf import new_config
    from nimbus.db import Database

    url, prefix, attempts = sys.argv[1], sys.argv[2], int(sys.argv[3])
    results = {}
    lock = threading.Lock()

    def work(name, count):
        conf = new_config()
        conf([], default_config_files=[])
        conf.set_override("refresh_interval", 3600.0, group="scheduler")
        conf.set_override("cpu_allocation_ratio", 1.0, group="scheduler")
        scheduler = Scheduler(conf, Database(conf, url=url))
        spec = RequestSpec(vcpus=1, memory_mb=1024, root_gb=1)
        for i in range(count):
            uuid = f"{prefix}-{name}-{i}"
            try:
                (selection,) = scheduler.select_destinations(spec, [uuid])
                host = selection.host
            except exception.NoValidHost:
                host = None
            with lock:
                results[uuid] = host
        # Give half back and take it again: releases race with claims too.
        mine = [u for u, h in list(results.items()) if h and u.startswith(f"{prefix}-{name}-")]
        for uuid in mine[::2]:
            scheduler.release(uuid)
            try:
                (selection,) = scheduler.select_destinations(spec, [uuid])
                host = selection.host
            except exception.NoValidHost:
                host = None
            with lock:
                results[uuid] = host

    threads = [threading.Thread(target=work, args=(n, attempts // 2)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results))
    """
)


@contextlib.contextmanager
def scratch(server_url: str) -> Iterator[str]:
    """Create an empty database on the server; yield its URL, then drop it."""
    url = sa.make_url(server_url)
    name = f"nimbus_sched_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        except exc.DBAPIError as ex:
            message = f"cannot create a scratch database on {url!r}: {ex.orig}"
            if services.services_required():
                pytest.fail(message)
            pytest.skip(message)
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    finally:
        admin.dispose()


@pytest.fixture(params=["mariadb", "postgresql"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "mariadb":
        base = services.require_service("MariaDB", services.MARIADB_URL, 3306)
    else:
        base = services.require_service("PostgreSQL", services.POSTGRESQL_URL, 5432)
    with scratch(base) as url:
        yield url


def test_concurrent_claims_never_over_commit(server_url: str, conf: cfg.ConfigOpts) -> None:
    database = Database(conf, url=server_url)
    try:
        scheduler_migrations.upgrade(database)
        inventory = HostInventory(conf, database)
        for i in range(HOSTS):
            host = f"host-{i}"
            inventory.service_heartbeat(host, "nimbus-compute", f"compute.{host}")
            inventory.update_node(
                host,
                host,
                vcpus=PER_HOST,
                memory_mb=PER_HOST * 1024 + 512,
                local_gb=1000,
                hypervisor_type="qemu",
                hypervisor_version=8002000,
                cpu_info={},
                supported_instances=[["x86_64", "qemu", "hvm"]],
            )
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, server_url, f"p{n}", str(ATTEMPTS)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(2)
        ]
        reported: dict[str, str | None] = {}
        for worker in workers:
            out, err = worker.communicate(timeout=600)
            assert worker.returncode == 0, err
            reported.update(json.loads(out))
        assert len(reported) == ATTEMPTS * 2
        # A release's room may stay free when its instance's new claim landed
        # elsewhere; a scheduler with a fresh cache must find exactly that room.
        conf.set_override("cpu_allocation_ratio", 1.0, group="scheduler")
        fresh = Scheduler(conf, database)
        spec = RequestSpec(vcpus=1, memory_mb=1024, root_gb=1)
        for n in range(HOSTS * PER_HOST + 1):
            try:
                (selection,) = fresh.select_destinations(spec, [f"fill-{n}"])
            except exception.NoValidHost:
                break
            reported[f"fill-{n}"] = selection.host
        with database.engine.connect() as conn:
            held = dict(
                conn.execute(
                    sa.select(models.Allocation.instance_uuid, models.Allocation.host)
                ).all()
            )
            nodes = conn.execute(
                sa.select(
                    models.ComputeNode.id,
                    models.ComputeNode.vcpus_used,
                    models.ComputeNode.memory_mb_used,
                    models.ComputeNode.running_vms,
                )
            ).all()
            per_node = dict(
                conn.execute(
                    sa.select(
                        models.Allocation.node_id, sa.func.count(models.Allocation.instance_uuid)
                    ).group_by(models.Allocation.node_id)
                ).all()
            )
        claimed = {u: h for u, h in reported.items() if h is not None}
        # Every reported claim is in the table, on the host reported, and nothing else is.
        assert held == claimed
        # The room is taken exactly: no node over, every place used.
        assert len(held) == HOSTS * PER_HOST
        for node_id, vcpus_used, memory_used, running in nodes:
            assert vcpus_used == running == per_node[node_id] == PER_HOST
            assert memory_used == PER_HOST * 1024
    finally:
        database.dispose()
