"""Micro-benchmark of Fernet tokens and revocation checks.

Run it as ``/work/venv/bin/python benchmarks/token_crypto.py``.  It prints
how many project-scoped tokens per second one core encodes and decodes, and
how many ``is_revoked`` checks per second it answers with 10,000 revocation
events in memory, plus what a re-read of the table costs.  Everything lives
in a temporary directory (keys and a SQLite database).
"""

from __future__ import annotations

import argparse
import datetime
import random
import tempfile
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet

from nimbus import exception
from nimbus.conf import new_config
from nimbus.db import migration
from nimbus.db.api import Database
from nimbus.identity import models
from nimbus.identity.token.formatter import TokenFormatter, TokenPayload, new_audit_id
from nimbus.identity.token.keys import KeyRepository
from nimbus.identity.token.revoke import RevocationList, TokenValues, matches

UTC = datetime.UTC


def _rate(fn: Callable[[], object], seconds: float) -> tuple[float, int]:
    """Call *fn* repeatedly for about *seconds*; return calls per second and calls."""
    calls = 0
    batch = 100
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start), calls


def _payload(now: datetime.datetime) -> TokenPayload:
    return TokenPayload(
        user_id=uuid.uuid4().hex,
        methods=("password",),
        issued_at=now,
        expires_at=now + datetime.timedelta(hours=1),
        audit_ids=(new_audit_id(),),
        project_id=uuid.uuid4().hex,
    )


class _OneKey:
    """Encrypts with one given key, as a node that rotated before this one."""

    def __init__(self, key: bytes) -> None:
        self._crypter = MultiFernet([Fernet(key)])

    def crypter(self) -> MultiFernet:
        return self._crypter


def bench_tokens(workdir: str, seconds: float) -> None:
    keys = KeyRepository(f"{workdir}/fernet-keys", 3)
    keys.initialize()
    keys.rotate()  # keys 2 (primary), 1 and 0 (staged), as in production
    formatter = TokenFormatter(keys)
    payload = _payload(datetime.datetime.now(UTC))
    token = formatter.encode(payload)
    # Decryption tries the keys primary first: the staged key is tried last.
    staged_token = TokenFormatter(_OneKey(keys.load()[0])).encode(payload)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    print(f"project-scoped token: {len(token)} characters")

    rate, _ = _rate(lambda: formatter.encode(payload), seconds)
    print(f"encode:                         {rate:12,.0f} /s")
    rate, _ = _rate(lambda: formatter.decode(token), seconds)
    print(f"decode (primary key):           {rate:12,.0f} /s")
    rate, _ = _rate(lambda: formatter.decode(staged_token), seconds)
    print(f"decode (staged key, 3rd try):   {rate:12,.0f} /s")

    def decode_tampered() -> None:
        try:
            formatter.decode(tampered)
        except exception.TokenNotFound:
            pass

    rate, _ = _rate(decode_tampered, seconds)
    print(f"decode (tampered, rejected):    {rate:12,.0f} /s")


def bench_revocations(workdir: str, seconds: float, events: int) -> None:
    conf = new_config()
    conf([], default_config_files=[])
    conf.set_override("state_path", f"{workdir}/state")
    database = Database(conf)
    migration.upgrade(database)
    rng = random.Random(1)
    now = datetime.datetime.now(UTC)
    naive_now = now.replace(tzinfo=None)
    users = [uuid.uuid4().hex for _ in range(2000)]
    projects = [uuid.uuid4().hex for _ in range(500)]
    rows = []
    for _ in range(events):
        kind = rng.random()
        if kind < 0.7:  # tokens deleted one by one
            attrs = {"audit_id": new_audit_id()}
        elif kind < 0.85:  # password changes, disabled users
            attrs = {"user_id": rng.choice(users)}
        elif kind < 0.95:  # removed assignments
            attrs = {"user_id": rng.choice(users), "project_id": rng.choice(projects)}
        else:  # disabled projects
            attrs = {"project_id": rng.choice(projects)}
        rows.append({**attrs, "issued_before": naive_now, "revoked_at": naive_now})
    database.write(lambda session: session.execute(sa.insert(models.RevocationEvent), rows))

    revocations = RevocationList(database, refresh_interval=1.0, token_lifetime=3600)
    start = time.perf_counter()
    revocations.refresh()
    print(f"first load of {events:,} events:  {(time.perf_counter() - start) * 1000:8.1f} ms")

    valid = TokenValues(
        user_id=uuid.uuid4().hex,
        project_id=rng.choice(projects),
        domain_id="default",
        role_ids=frozenset({"member", "reader"}),
        audit_id=new_audit_id(),
        audit_chain_id=new_audit_id(),
        issued_at=now - datetime.timedelta(minutes=5),
        expires_at=now + datetime.timedelta(minutes=55),
    )
    revoked_user = rows[[i for i, r in enumerate(rows) if "user_id" in r][0]]["user_id"]
    revoked = TokenValues(**{**valid.__dict__, "user_id": revoked_user})
    as_mapping = dict(valid.__dict__)
    assert not revocations.is_revoked(valid)
    assert revocations.is_revoked(revoked)

    rate, _ = _rate(lambda: revocations.is_revoked(valid), seconds)
    print(f"is_revoked (not revoked):       {rate:12,.0f} /s")
    rate, _ = _rate(lambda: revocations.is_revoked(revoked), seconds)
    print(f"is_revoked (revoked):           {rate:12,.0f} /s")
    rate, _ = _rate(lambda: revocations.is_revoked(as_mapping), seconds)
    print(f"is_revoked (dict values):       {rate:12,.0f} /s")
    all_events = revocations.events()
    rate, _ = _rate(lambda: any(matches(e, valid) for e in all_events), min(seconds, 0.5))
    print(f"linear scan, for comparison:    {rate:12,.0f} /s")

    checker = RevocationList(database, refresh_interval=0, token_lifetime=3600)
    checker.refresh()
    rate, _ = _rate(checker.refresh, min(seconds, 0.5))
    print(f"re-read, nothing changed:       {1000 / rate:12.3f} ms")
    start = time.perf_counter()
    RevocationList(database, refresh_interval=0).refresh()
    print(f"re-read, everything new:        {(time.perf_counter() - start) * 1000:12.1f} ms")
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--events", type=int, default=10_000, help="revocation events")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nimbus-bench-") as workdir:
        bench_tokens(workdir, args.seconds)
        bench_revocations(workdir, args.seconds, args.events)


if __name__ == "__main__":
    main()
