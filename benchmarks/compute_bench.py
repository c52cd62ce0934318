"""Compute control-plane benchmark: servers created through the API until all are ACTIVE.

Run it as ``/work/venv/bin/python benchmarks/compute_bench.py`` (``--help`` for
the options).  It starts ``nimbus up`` on a fresh temporary state directory
with ``--fake-hosts`` fake compute hosts (the ``fake`` driver, no spawn
delay) and unlimited compute quotas, on the in-process bus or, with
``--transport rabbit``, on the RabbitMQ of this machine, then:

* creates ``--servers`` servers, one ``POST /compute/v2.1/servers`` each,
  from ``--concurrency`` client threads with keep-alive connections, and
  times from the first request until every server is ACTIVE (polled with
  ``GET /servers?status=ACTIVE``); the rate is servers per second;
* with ``--list-servers N``, creates servers until N exist and times
  ``GET /compute/v2.1/servers/detail?limit=1000`` (``--list-requests`` times),
  printing p50 and p99.

Targets (the issue's): at least 50 servers a second on the memory bus and
25 on RabbitMQ; the list under 150 ms with 10,000 servers.  The client runs
on the same cores as the server.  The server is stopped and the temporary
directory removed on the way out.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import _stats

from nimbus.testing import server as launcher

HOST = "127.0.0.1"
TARGETS = {"memory": 50.0, "rabbit": 25.0}
LIST_TARGET_MS = 150.0


class Client:
    """One keep-alive connection with a token."""

    def __init__(self, port: int, token: str = "") -> None:
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        headers = {"Accept": "application/json", "X-Auth-Token": self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                return resp.status, resp.headers, json.loads(raw) if raw else None
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def cloud(opts: argparse.Namespace, tmp: str) -> Iterator[tuple[launcher.Server, str]]:
    """Run the benchmark's ``nimbus up``; yield it and an admin token."""
    state = os.path.join(tmp, "state")
    sections: dict[str, dict[str, object]] = {
        "DEFAULT": {"state_path": state},
        "quota": {"instances": -1, "cores": -1, "ram": -1},
        "compute": {"fake_hosts": opts.fake_hosts, "report_interval": 5},
    }
    if opts.transport == "rabbit":
        sections["messaging"] = {
            "transport": "rabbit",
            "exchange": f"nimbus-bench-{uuid.uuid4().hex[:8]}",
        }
    config = launcher.write_config(os.path.join(tmp, "nimbus.conf"), sections)
    with launcher.nimbus_up(
        state, log_path=os.path.join(tmp, "nimbus-up.log"), config_file=config
    ) as server:
        with open(os.path.join(state, "admin-password"), encoding="utf-8") as f:
            password = f.read().strip()
        client = Client(server.port)
        status, headers, _ = client.call(
            "POST", "/identity/v3/auth/tokens", launcher.password_auth(password)
        )
        client.close()
        if status != 201:
            raise SystemExit(f"token issue answered {status}")
        yield server, headers["X-Subject-Token"]


def prepare(port: int, token: str) -> tuple[str, str]:
    """Create the flavor and the image the servers are made of; return their ids."""
    client = Client(port, token)
    try:
        flavor = {"flavor": {"name": "bench", "id": "bench", "ram": 512, "vcpus": 1, "disk": 1}}
        assert client.call("POST", "/compute/v2.1/flavors", flavor)[0] == 200
        _, _, image = client.call(
            "POST",
            "/image/v2/images",
            {"name": "bench", "disk_format": "raw", "container_format": "bare"},
        )
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        conn.request(
            "PUT",
            f"/image/v2/images/{image['id']}/file",
            body=b"\0" * 65536,
            headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"},
        )
        assert conn.getresponse().status == 204
        conn.close()
        return "bench", str(image["id"])
    finally:
        client.close()


def active_count(client: Client) -> int:
    """Return how many servers are ACTIVE; fail on any in ERROR."""
    _, _, errors = client.call("GET", "/compute/v2.1/servers?status=ERROR&limit=1")
    if errors["servers"]:
        raise SystemExit(f"a server went to ERROR: {errors['servers'][0]['id']}")
    count, marker = 0, None
    while True:
        path = "/compute/v2.1/servers?status=ACTIVE&limit=1000"
        if marker:
            path += f"&marker={marker}"
        _, _, page = client.call("GET", path)
        count += len(page["servers"])
        if len(page["servers"]) < 1000:
            return count
        marker = page["servers"][-1]["id"]


def create(port: int, token: str, flavor: str, image: str, count: int, threads: int) -> float:
    """Create *count* servers from *threads* clients; return seconds until all are ACTIVE."""
    local = threading.local()

    def one(number: int) -> None:
        if not hasattr(local, "client"):
            local.client = Client(port, token)
        body = {"server": {"name": f"b{number}", "flavorRef": flavor, "imageRef": image}}
        status, _, answer = local.client.call("POST", "/compute/v2.1/servers", body)
        if status != 202:
            raise SystemExit(f"server create answered {status}: {answer}")

    before = active_count(Client(port, token))
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    watcher = Client(port, token)
    try:
        while active_count(watcher) < before + count:
            time.sleep(0.05)
    finally:
        watcher.close()
    return time.perf_counter() - started


def list_latency(port: int, token: str, requests: int) -> dict[str, float]:
    """Time ``GET /servers/detail?limit=1000``; return p50 and p99 in ms."""
    client = Client(port, token)
    times = []
    try:
        for _ in range(requests):
            started = time.perf_counter()
            status, _, page = client.call("GET", "/compute/v2.1/servers/detail?limit=1000")
            times.append((time.perf_counter() - started) * 1000)
            assert status == 200 and page["servers"]
    finally:
        client.close()
    ordered = sorted(times)
    return {"p50_ms": _stats.percentile(ordered, 0.5), "p99_ms": _stats.percentile(ordered, 0.99)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=1000, help="servers to create (1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (8)")
    parser.add_argument("--fake-hosts", type=int, default=10, help="fake compute hosts (10)")
    parser.add_argument("--transport", choices=("memory", "rabbit"), default="memory")
    parser.add_argument(
        "--list-servers", type=int, default=0, help="servers to list among (e.g. 10000); 0: skip"
    )
    parser.add_argument("--list-requests", type=int, default=20, help="list requests timed (20)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if min(args.servers, args.concurrency, args.fake_hosts, args.list_requests) < 1:
        parser.error("--servers, --concurrency, --fake-hosts and --list-requests must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print one line per figure."""
    opts = parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="nimbus-compute-bench-")
    results: dict[str, Any] = {"options": vars(opts), "cores": os.cpu_count()}
    try:
        with cloud(opts, tmp) as (server, token):
            flavor, image = prepare(server.port, token)
            seconds = create(server.port, token, flavor, image, opts.servers, opts.concurrency)
            rate = opts.servers / seconds
            target = TARGETS[opts.transport]
            results["create"] = {"servers": opts.servers, "seconds": seconds, "per_s": rate}
            print(
                f"create {opts.servers} servers on {opts.fake_hosts} fake hosts"
                f" ({opts.transport} bus): {seconds:.1f} s until all ACTIVE, {rate:.1f}/s"
                f"  target >= {target:g}/s  {'PASS' if rate >= target else 'FAIL'}",
                flush=True,
            )
            if opts.list_servers:
                more = opts.list_servers - opts.servers
                if more > 0:
                    create(server.port, token, flavor, image, more, opts.concurrency)
                found = list_latency(server.port, token, opts.list_requests)
                results["list"] = {"servers": opts.list_servers, **found}
                verdict = "PASS" if found["p50_ms"] < LIST_TARGET_MS else "FAIL"
                print(
                    f"GET /servers/detail?limit=1000 among {opts.list_servers} servers:"
                    f" p50 {found['p50_ms']:.1f} ms, p99 {found['p99_ms']:.1f} ms"
                    f"  target < {LIST_TARGET_MS:g} ms  {verdict}"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(_stats.jsonable(results), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
