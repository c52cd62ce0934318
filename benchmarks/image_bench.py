"""Image service benchmark: data transfer, worker memory and list latency.

Run it as ``/work/venv/bin/python benchmarks/image_bench.py`` (``--size 2GiB``
for a bigger image, ``--help`` for the rest).  It starts ``nimbus up`` on a
fresh temporary state directory (SQLite; the ``file`` store writes to
``<state>/images``) and measures, one after the other:

* ``dd``: a write of ``--size`` bytes with ``conv=fsync`` to a file in the
  state directory (the store's file system), the upload's reference, and
  one with ``oflag=direct`` for information, and MD5 and SHA-512 on one
  core in this process (every upload computes both: they bound it);
* upload: ``PUT /image/v2/images/{id}/file`` of ``--size`` bytes sent from a
  file in the state directory as a client uploading a file would send it
  (1 MiB reads into one reused buffer, each sent whole; never the whole
  image in memory), ``--upload-rounds`` times into new images (the median
  is judged), each image record's ``status``, ``size``, ``checksum`` and
  ``os_hash_value`` checked against the client's own MD5 and SHA-512 of
  what it sent;
* download: ``GET /image/v2/images/{id}/file`` read into one reused buffer
  and thrown away, without hashing, for the transfer rate, in turns with dd
  reading the stored image file, the page cache emptied before each
  (``--read-rounds`` of each; the medians are compared, see
  :func:`compare_reads` for why); then (unless
  ``--no-verify-download``) once more with MD5 and SHA-512 computed on the
  bytes received, to check them (its rate is reported, not judged);
* the gunicorn worker's ``VmRSS``, sampled from ``/proc`` every
  ``--sample-interval`` seconds during one more upload and one more
  download, untimed (sampling slows the transfer it watches: see
  :func:`bench_transfers`), and its ``VmHWM``;
* list latency: ``--images`` images created through the API (parallel
  keep-alive connections), then ``GET /image/v2/images?limit=100`` repeated
  ``--list-requests`` times, following the ``next`` links page after page and
  starting over at the end.

Cold reads on a virtual machine are noisy when its kernel reports free
memory to the host (see :func:`page_reporting_order`; the header line says
whether it does): ``--hold-free-memory`` (root) stops that for the run and
puts the setting back afterwards.

The client runs on the same cores as the server, so it hashes the upload's
bytes before the clock starts (``--client-hash before``, the default: the
file is read twice, the first time untimed) rather than while sending them
(``inline``), which takes a core the server would otherwise have; the output
says which, with the CPU time client and server spent.  The server is
stopped and the temporary directory removed on the way out (``--keep`` keeps
the directory), on errors and Ctrl-C too.  Throughputs are in MB/s (10^6
bytes per second, as dd prints them); memory in MB (10^6 bytes).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import _stats

from nimbus.testing import server as launcher

HOST = launcher.HOST
MB = 1_000_000
MIB = 1 << 20
CHUNK = MIB
IMAGES_PATH = "/image/v2/images"
TOKENS_PATH = "/identity/v3/auth/tokens"

#: What the figures must reach.
TARGETS: dict[str, float] = {
    # Every upload computes MD5, which runs on one core: the upload cannot
    # beat that core's MD5 rate (SHA-512 runs beside it on the other).
    "upload_vs_md5": 0.7,
    "download_vs_dd_read": 0.8,
    "max_peak_rss_mb": 100.0,
    "max_list_p50_ms": 50.0,
}

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kib": 1 << 10,
    "kb": 10**3,
    "m": 1 << 20,
    "mib": 1 << 20,
    "mb": 10**6,
    "g": 1 << 30,
    "gib": 1 << 30,
    "gb": 10**9,
    "t": 1 << 40,
    "tib": 1 << 40,
    "tb": 10**12,
}


class BenchError(RuntimeError):
    """The benchmark cannot go on (the server refused a step, a check failed)."""


def parse_size(text: str) -> int:
    """Parse ``1GiB``, ``512MiB``, ``2G`` (binary), ``1GB`` (decimal) or bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1GiB, 512MiB, 2G)")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise argparse.ArgumentTypeError("the size must be at least one byte")
    return size


def human_size(size: int) -> str:
    """Return *size* in the largest binary unit that keeps it at one or more."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} B"


# -- HTTP -------------------------------------------------------------------------


class Client:
    """One keep-alive connection to the cloud, with the token every request carries."""

    def __init__(self, port: int, token: str | None = None, *, timeout: float = 600.0) -> None:
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Return the headers of a request: the token, *extra*."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["X-Auth-Token"] = self.token
        return {**headers, **(extra or {})}

    def call(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, http.client.HTTPMessage, Any]:
        """Send a JSON request; return the status, headers and decoded body."""
        data = None if body is None else json.dumps(body).encode()
        headers = self.headers({"Content-Type": "application/json"} if data else None)
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            # The next request opens a new connection.
            self.conn.close()
            raise
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw[:300]
        return resp.status, resp.headers, decoded

    def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        """Send a JSON request; return the decoded body, or raise if not *status*."""
        got, _, decoded = self.call(method, path, body)
        if got != status:
            raise BenchError(f"{method} {path} answered {got} (expected {status}): {decoded}")
        return decoded


def admin_token(port: int, password: str) -> str:
    """Issue a token for the admin, scoped to the ``admin`` project."""
    body = launcher.password_auth(password)
    client = Client(port, timeout=60)
    try:
        status, headers, decoded = client.call("POST", TOKENS_PATH, body)
    finally:
        client.close()
    token = headers.get("X-Subject-Token")
    if status != 201 or not token:
        raise BenchError(f"token issue answered {status}: {decoded}")
    return token


# -- dd ---------------------------------------------------------------------------

_DD_LINE = re.compile(r"^(\d+) bytes .* copied, ([0-9.e+-]+) s, ([0-9.,]+ \S+)\s*$", re.MULTILINE)


def run_dd(*args: str) -> dict[str, Any]:
    """Run ``dd`` with *args*; return the bytes, seconds and MB/s it reported."""
    result = subprocess.run(
        ["dd", *args], capture_output=True, text=True, timeout=3600, check=False
    )
    match = _DD_LINE.search(result.stderr)
    if result.returncode != 0 or match is None:
        raise BenchError(f"dd {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    count, seconds = int(match.group(1)), float(match.group(2))
    return {
        "bytes": count,
        "seconds": seconds,
        "mb_s": count / seconds / MB if seconds > 0 else math.inf,
        "dd_says": match.group(3),
    }


def drop_caches() -> bool:
    """Empty the page cache (root only), so reads come from the disk; tell if it worked.

    Reads are compared cold: dd reading a file it just wrote is served from
    memory at memory speed, which no transfer over a socket can match.
    """
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


_REPORTING_ORDER = "/sys/module/page_reporting/parameters/page_reporting_order"


def page_reporting_order() -> int | None:
    """Return the smallest order of free memory block the guest reports to its host.

    A virtual machine with free page reporting (a virtio-balloon feature)
    hands blocks of free memory of at least this order back to the host,
    which takes the memory away; the next page-cache pages placed there are
    slow to touch while the host gives it back.  That is much of the noise in
    cold-read figures here.  ``None``: no such kernel module parameter.
    """
    try:
        with open(_REPORTING_ORDER, encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def free_memory_held(state: dict[str, Any]) -> Iterator[None]:
    """Raise the reporting order past the largest block the kernel has, then put it back.

    *state* holds the ``order`` :func:`page_reporting_order` read; this sets
    ``held``, or ``error`` when the order cannot be changed (not root, a
    kernel that refuses the value), and the benchmark then runs as it is.
    """
    before = state["order"]
    if before is None:
        yield
        return
    with open("/proc/buddyinfo", encoding="ascii") as f:
        # "Node 0, zone Normal" and then one count per order.
        orders = max(len(line.split()) - 4 for line in f if line.strip())
    try:
        with open(_REPORTING_ORDER, "w", encoding="ascii") as f:
            f.write(f"{orders}\n")
    except OSError as ex:
        state["error"] = str(ex)
        yield
        return
    state.update(held=True, order_during=orders)
    try:
        yield
    finally:
        with open(_REPORTING_ORDER, "w", encoding="ascii") as f:
            f.write(f"{before}\n")


def measure_dd_write(directory: str, size: int) -> dict[str, Any]:
    """Write *size* bytes (rounded up to MiB) to *directory* with dd, buffered and direct.

    The buffered write (``conv=fsync``) is the reference; the ``oflag=direct``
    one, the disk's own speed past the page cache, is for information.
    """
    path = os.path.join(directory, "dd.bin")
    args = ("if=/dev/zero", f"of={path}", "bs=1M", f"count={max(1, math.ceil(size / MIB))}")
    try:
        write = run_dd(*args, "conv=fsync")
        os.unlink(path)
        try:
            direct: dict[str, Any] | None = run_dd(*args, "conv=fsync", "oflag=direct")
        except BenchError:
            direct = None  # tmpfs and some others refuse O_DIRECT
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return {"write": write, "write_direct": direct}


def compare_reads(
    path: str, download_once: Callable[[], dict[str, Any]], *, rounds: int, cold: bool
) -> dict[str, Any]:
    """Time dd reading the stored image file *path* and the API's download of it, in turns.

    With *cold*, the page cache is emptied before every read (when this
    process may), so both read from the disk.  On a virtual machine that
    reports free memory to its host, how fast the kernel gets memory for the
    cache depends on what was freed just before: memory freed moments ago is
    quick to reuse, memory reported in the meantime has gone back to the
    host and is slow to touch again (seen here: a cold dd read at 1.8 GB/s
    right after emptying the cache of a 1 GiB file, 0.45 GB/s after 15 s of
    waiting).  So the file is read once, untimed, first, and every timed
    read, dd's and the download, follows the emptying of the same amount of
    just-used cache.  The medians are compared.
    """
    args = (f"if={path}", "of=/dev/null", "bs=1M")
    cold = cold and drop_caches()
    run_dd(*args)  # untimed: see above
    dd_reads: list[dict[str, Any]] = []
    downloads: list[dict[str, Any]] = []
    for _ in range(rounds):
        if cold:
            drop_caches()
        dd_reads.append(run_dd(*args))
        if cold:
            drop_caches()
        downloads.append(download_once())
    try:
        # For information only: the same read past the page cache.
        direct: dict[str, Any] | None = run_dd(*args, "iflag=direct")
    except BenchError:
        direct = None
    read = dict(_median_by_rate(dd_reads), cold=cold, rounds=[r["mb_s"] for r in dd_reads])
    download = dict(_median_by_rate(downloads), rounds=[d["mb_s"] for d in downloads])
    return {"read": read, "read_direct": direct, "download": download}


def _median_by_rate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the run whose ``mb_s`` is the median (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda run: run["mb_s"])
    return ordered[(len(ordered) - 1) // 2]


def hash_rates(amount: int = 256 * MIB) -> dict[str, float]:
    """Return MB/s of MD5 and SHA-512, each alone on one core and both at once.

    Every upload computes both (Glance's ``checksum`` and ``os_hash_value``),
    so these bound the upload's rate.  ``md5`` and ``sha512`` are each
    hash alone over *amount* bytes in 1 MiB pieces; ``together`` is the rate
    at which two threads, one per hash, get through the same bytes at once,
    as an upload's hash threads do: what the machine really gives the two
    side by side (a virtual machine's cores need not run as two).
    """
    piece = random.Random(0).randbytes(MIB)
    pieces = max(1, amount // MIB)

    def hash_all(name: str) -> None:
        digest = hashlib.new(name)
        for _ in range(pieces):
            digest.update(piece)

    rates = {}
    for name in ("md5", "sha512"):
        start = time.perf_counter()
        hash_all(name)
        rates[name] = pieces * MIB / (time.perf_counter() - start) / MB
    threads = [threading.Thread(target=hash_all, args=(name,)) for name in ("md5", "sha512")]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rates["together"] = pieces * MIB / (time.perf_counter() - start) / MB
    return rates


# -- the image data ---------------------------------------------------------------


def body_chunks(size: int, *, seed: int = 0) -> Iterator[bytes]:
    """Yield *size* bytes of the benchmark's image in chunks of 1 MiB.

    The data is pseudo-random, and each chunk starts with its number, so no
    two chunks are equal; the same *size* and *seed* always give the same bytes.
    """
    block = memoryview(random.Random(seed).randbytes(CHUNK))
    sent = 0
    number = 0
    while sent < size:
        length = min(CHUNK, size - sent)
        chunk = number.to_bytes(8, "big") + block[8:length] if length > 8 else bytes(length)
        sent += length
        number += 1
        yield chunk


class Hashes:
    """The MD5 and SHA-512 of a stream, as the image API computes them."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        """Add *data* to both hashes."""
        self.md5.update(data)
        self.sha512.update(data)
        self.size += len(data)

    def hashed(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Yield *chunks*, hashing each one first."""
        for chunk in chunks:
            self.update(chunk)
            yield chunk

    def as_dict(self) -> dict[str, Any]:
        """Return the size and hex digests."""
        return {"size": self.size, "md5": self.md5.hexdigest(), "sha512": self.sha512.hexdigest()}


@contextlib.contextmanager
def measured(server: launcher.Server, interval: float | None) -> Iterator[dict[str, Any]]:
    """Time the block, count client and server CPU, and sample the workers' memory.

    With *interval* ``None`` memory is not sampled (``peak_rss_mb`` is
    ``None``): reading ``/proc/<worker>/status`` every 50 ms slows a
    transfer down (see :func:`bench_transfers`), so timed transfers run
    without the sampler and memory is measured on transfers of their own.
    The dict yielded is filled in when the block ends.
    """
    figures: dict[str, Any] = {}
    workers = server.worker_pids()
    server_cpu = sum(_stats.cpu_seconds(workers))
    client_cpu = time.process_time()
    with (
        launcher.MemorySampler(server, interval=interval)
        if interval is not None
        else contextlib.nullcontext()
    ) as sampler:
        started = time.perf_counter()
        yield figures
        elapsed = time.perf_counter() - started
    figures.update(
        seconds=elapsed,
        client_cpu_s=time.process_time() - client_cpu,
        server_cpu_s=sum(_stats.cpu_seconds(workers)) - server_cpu,
        peak_rss_mb=sampler.peak_rss / MB if sampler else None,
        hwm_mb=sampler.hwm / MB if sampler else None,
        rss_samples=len(sampler.samples) if sampler else 0,
    )


def write_image(path: str, size: int) -> dict[str, Any]:
    """Write the benchmark's image of *size* bytes to *path*; return its size and hashes."""
    hashes = Hashes()
    with open(path, "wb") as f:
        for chunk in body_chunks(size):
            hashes.update(chunk)
            f.write(chunk)
    return hashes.as_dict()


def file_chunks(path: str, hashes: Hashes | None = None) -> Iterator[memoryview]:
    """Yield the file at *path* in reads of 1 MiB into one reused buffer (hashed, with *hashes*).

    As a client that uploads a file sends it: large reads, each sent before
    the next (``http.client`` sends every chunk with ``sendall`` before it
    asks for the next one), no new bytes per chunk.
    """
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while count := f.readinto(buffer):
            if hashes is not None:
                hashes.update(view[:count])
            yield view[:count]


def upload(
    server: launcher.Server,
    token: str,
    image_id: str,
    source: str,
    *,
    client_hash: str,
    interval: float | None,
    send: str = "read",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send the image file *source* to the server; return the figures and the client's hashes.

    With *client_hash* ``before``, the hashes are those computed when the
    file was written (:func:`write_image`); ``inline`` hashes what is sent.
    """
    size = os.path.getsize(source)
    hashes = Hashes()
    if send == "sendfile" and client_hash != "before":
        raise BenchError("--client-send sendfile hashes before (--client-hash before)")
    if client_hash == "before":
        # Untimed: the hashes, and the file in the page cache as a user's would be.
        for _ in file_chunks(source, hashes):
            pass
        body: Iterator[memoryview] = file_chunks(source)
    else:
        body = file_chunks(source, hashes)
    client = Client(server.port, token)
    path = f"{IMAGES_PATH}/{image_id}/file"
    headers = client.headers(
        {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    )
    try:
        with measured(server, interval) as figures:
            try:
                if send == "sendfile":
                    # The head through http.client, the file by the kernel
                    # from the page cache to the socket, as Go's net/http
                    # (gophercloud, Terraform) sends an *os.File body.
                    client.conn.putrequest("PUT", path, skip_accept_encoding=True)
                    for name, value in headers.items():
                        client.conn.putheader(name, value)
                    client.conn.endheaders()
                    assert client.conn.sock is not None
                    with open(source, "rb") as f:
                        client.conn.sock.sendfile(f)
                else:
                    # An iterable body with a Content-Length is sent as it comes, not chunked.
                    client.conn.request("PUT", path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError) as ex:
                # The server may have refused the upload and closed: show its answer.
                sent_error: OSError | None = ex
            else:
                sent_error = None
            try:
                resp = client.conn.getresponse()
                answer = resp.read()
            except (OSError, http.client.HTTPException) as ex:
                raise BenchError(f"PUT {path}: {sent_error or ex}") from ex
    finally:
        client.close()
    if resp.status != 204:
        raise BenchError(f"PUT {path} answered {resp.status}: {answer[:300]!r}")
    if hashes.size != size:
        raise BenchError(f"the client sent {hashes.size} bytes instead of {size}")
    figures["mb_s"] = size / figures["seconds"] / MB
    figures["client_hash"] = client_hash
    figures["client_send"] = send
    return figures, hashes.as_dict()


def download(
    server: launcher.Server,
    token: str,
    image_id: str,
    expected: dict[str, Any],
    *,
    verify: bool,
    interval: float | None,
) -> dict[str, Any]:
    """Read the image's data back once, into a reused buffer; return the figures.

    :param verify: hash what arrives and compare it with *expected*;
        otherwise only the byte count and the ``Content-MD5`` header are checked.
    """
    client = Client(server.port, token)
    path = f"{IMAGES_PATH}/{image_id}/file"
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)  # slices of it hash without copying
    hashes = Hashes() if verify else None
    received = 0
    try:
        with measured(server, interval) as figures:
            client.conn.request("GET", path, headers=client.headers())
            resp = client.conn.getresponse()
            if resp.status != 200:
                raise BenchError(f"GET {path} answered {resp.status}: {resp.read()[:300]!r}")
            while True:
                count = resp.readinto(buffer)
                if not count:
                    break
                if hashes is not None:
                    hashes.update(view[:count])
                received += count
    finally:
        client.close()
    length = resp.getheader("Content-Length")
    content_md5 = resp.getheader("Content-MD5")
    problems = []
    if received != expected["size"]:
        problems.append(f"received {received} bytes instead of {expected['size']}")
    if length != str(expected["size"]):
        problems.append(f"Content-Length {length} instead of {expected['size']}")
    if content_md5 != expected["md5"]:
        problems.append(f"Content-MD5 {content_md5} instead of {expected['md5']}")
    if hashes is not None:
        got = hashes.as_dict()
        for name in ("md5", "sha512"):
            if got[name] != expected[name]:
                problems.append(f"{name} of the data received is {got[name]}")
    if problems:
        raise BenchError(f"GET {path}: " + "; ".join(problems))
    figures["mb_s"] = received / figures["seconds"] / MB
    figures["client_hash"] = verify
    return figures


def check_image(record: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise if the image record does not describe the data uploaded."""
    wanted = {
        "status": "active",
        "size": expected["size"],
        "checksum": expected["md5"],
        "os_hash_algo": "sha512",
        "os_hash_value": expected["sha512"],
    }
    wrong = {k: record.get(k) for k, v in wanted.items() if record.get(k) != v}
    if wrong:
        raise BenchError(f"image {record.get('id')} does not match the upload: {wrong}")


# -- list latency -------------------------------------------------------------------


def create_images(port: int, token: str, count: int, concurrency: int) -> dict[str, Any]:
    """Create *count* images with a few properties and tags; return how long it took."""
    local = threading.local()
    clients: list[Client] = []
    lock = threading.Lock()

    def create(number: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(port, token, timeout=120)
            with lock:
                clients.append(client)
        group = f"group-{number % 10}"
        body = {
            "name": f"bench-{number:06d}",
            "disk_format": "raw",
            "container_format": "bare",
            "tags": ["bench", group],
            "bench_number": str(number),
            "bench_group": group,
        }
        client.expect(201, "POST", IMAGES_PATH, body)

    started = time.perf_counter()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
    try:
        for future in [pool.submit(create, n) for n in range(count)]:
            future.result()
    finally:
        # After a failure, do not send the thousands of requests still queued.
        pool.shutdown(wait=True, cancel_futures=True)
        for client in clients:
            client.close()
    elapsed = time.perf_counter() - started
    return {"images": count, "seconds": elapsed, "per_s": count / elapsed if elapsed else 0.0}


def measure_list(port: int, token: str, requests: int, page_size: int) -> dict[str, Any]:
    """List images *requests* times, page after page; return latency percentiles.

    The first request of each walk asks for the first page; the others
    follow the ``next`` link (relative to the image root, ``/image``).
    """
    first = f"{IMAGES_PATH}?{urllib.parse.urlencode({'limit': page_size})}"
    client = Client(port, token, timeout=120)
    latencies: list[float] = []
    first_pages: list[float] = []
    later_pages: list[float] = []
    walks: list[int] = []
    seen: set[str] = set()
    path = first
    try:
        # Warm up the connection and the server's caches.
        for _ in range(3):
            client.expect(200, "GET", first)
        for _ in range(requests):
            started = time.perf_counter()
            status, _, body = client.call("GET", path)
            latency = time.perf_counter() - started
            if status != 200:
                raise BenchError(f"GET {path} answered {status}: {body}")
            latencies.append(latency)
            (first_pages if path == first else later_pages).append(latency)
            ids = [image["id"] for image in body["images"]]
            if len(ids) > page_size or seen.intersection(ids):
                raise BenchError(f"GET {path} gave {len(ids)} images, some seen before in the walk")
            seen.update(ids)
            if body.get("next"):
                path = "/image" + body["next"]
            else:
                walks.append(len(seen))
                seen = set()
                path = first
    finally:
        client.close()

    def stats(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "n": len(ordered),
            "p50_ms": _stats.percentile(ordered, 0.50) * 1000,
            "p90_ms": _stats.percentile(ordered, 0.90) * 1000,
            "p99_ms": _stats.percentile(ordered, 0.99) * 1000,
            "max_ms": ordered[-1] * 1000 if ordered else math.nan,
        }

    return {
        "page_size": page_size,
        **stats(latencies),
        "first_page": stats(first_pages),
        "next_pages": stats(later_pages),
        "complete_walks": walks,
    }


# -- the report ---------------------------------------------------------------------


def evaluate(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return each target with the figure it is judged on and whether it is met."""
    verdicts: dict[str, dict[str, Any]] = {}
    dd = results.get("dd")
    transfers = results.get("transfers")
    hashes = results.get("hash_mb_s")
    if hashes and transfers:
        floor = TARGETS["upload_vs_md5"] * hashes["md5"]
        value = transfers["upload"]["mb_s"]
        verdicts["upload"] = {
            "value": value,
            "target": f">= {TARGETS['upload_vs_md5']:.0%} of one-core MD5 ({floor:.1f} MB/s)",
            "share_of_md5": value / hashes["md5"],
            "hash_ceiling_mb_s": hash_ceiling(hashes),
            "share_of_hash_ceiling": value / hash_ceiling(hashes),
            "hashes_together_mb_s": hashes["together"],
            "share_of_hashes_together": value / hashes["together"],
            "met": value >= floor,
        }
    if dd and transfers:
        floor = TARGETS["download_vs_dd_read"] * dd["read"]["mb_s"]
        value = transfers["download"]["mb_s"]
        verdicts["download"] = {
            "value": value,
            "target": f">= {TARGETS['download_vs_dd_read']:.0%} of dd ({floor:.1f} MB/s)",
            "share_of_dd": value / dd["read"]["mb_s"],
            "met": value >= floor,
        }
        peak = max(transfers[k]["peak_rss_mb"] for k in ("upload_sampled", "download_sampled"))
        verdicts["peak_rss"] = {
            "value": peak,
            "target": f"< {TARGETS['max_peak_rss_mb']:g} MB",
            "met": peak < TARGETS["max_peak_rss_mb"],
        }
    listing = results.get("list")
    if listing:
        verdicts["list_p50"] = {
            "value": listing["p50_ms"],
            "target": f"< {TARGETS['max_list_p50_ms']:g} ms",
            "met": listing["p50_ms"] < TARGETS["max_list_p50_ms"],
        }
    return verdicts


def _rates(median: dict[str, Any]) -> str:
    """Return the median run's rate, with every round's in brackets."""
    every = ", ".join(f"{rate:.0f}" for rate in median["rounds"])
    return f"{median['mb_s']:.1f} MB/s [{every}]"


def print_table(results: dict[str, Any], verdicts: dict[str, dict[str, Any]]) -> None:
    """Print one line per figure, with its target and verdict where it has one."""
    rows: list[tuple[str, str, str, str]] = []

    def verdict(name: str) -> tuple[str, str]:
        found = verdicts.get(name)
        if not found:
            return "", ""
        return found["target"], "PASS" if found["met"] else "FAIL"

    dd = results.get("dd")
    if dd:
        rows.append(("dd write, conv=fsync", f"{dd['write']['mb_s']:.1f} MB/s", "", ""))
        if dd["write_direct"]:
            rows.append(
                ("dd write, O_DIRECT (info)", f"{dd['write_direct']['mb_s']:.1f} MB/s", "", "")
            )
        if "read" in dd:
            label = "dd read, cold cache" if dd["read"]["cold"] else "dd read, page cache"
            rows.append((f"{label} (median)", _rates(dd["read"]), "", ""))
        if dd.get("read_direct"):
            rows.append(
                ("dd read, O_DIRECT (info)", f"{dd['read_direct']['mb_s']:.1f} MB/s", "", "")
            )
    hashes = results.get("hash_mb_s")
    if hashes:
        rows.append(
            (
                "MD5 / SHA-512 on one core (info)",
                f"{hashes['md5']:.1f} / {hashes['sha512']:.1f} MB/s",
                "",
                "",
            )
        )
        rows.append(("MD5 and SHA-512 at once (info)", f"{hashes['together']:.1f} MB/s", "", ""))
    transfers = results.get("transfers")
    if transfers:
        up, down, hashed = transfers["upload"], transfers["download"], transfers["download_hashed"]
        how = "hashed while sent" if up["client_hash"] == "inline" else "hashed beforehand"
        if up.get("client_send") == "sendfile":
            how += ", sendfile"
        rows.append(
            (f"upload ({human_size(results['size'])}, {how}) (median)", _rates(up))
            + verdict("upload")
        )
        rows.append(("download, no client hashing (median)", _rates(down)) + verdict("download"))
        if hashed["mb_s"] is not None:
            rows.append(("download + MD5/SHA-512 (info)", f"{hashed['mb_s']:.1f} MB/s", "", ""))
        rows.append(
            (
                "upload, memory sampled (info)",
                f"{transfers['upload_sampled']['mb_s']:.1f} MB/s",
                "",
                "",
            )
        )
        rows.append(("worker RSS before", f"{transfers['baseline_rss_mb']:.1f} MB", "", ""))
        for key, label in (("upload_sampled", "upload"), ("download_sampled", "download")):
            rows.append(
                (f"worker peak RSS, {label}", f"{transfers[key]['peak_rss_mb']:.1f} MB", "", "")
            )
        rows.append(
            ("worker peak RSS, all transfers", f"{verdicts['peak_rss']['value']:.1f} MB")
            + verdict("peak_rss")
        )
        rows.append(("worker VmHWM after transfers", f"{transfers['hwm_mb']:.1f} MB", "", ""))
    listing = results.get("list")
    if listing:
        created = results["create"]
        rows.append(
            (
                f"create {created['images']} images",
                f"{created['per_s']:.0f}/s ({created['seconds']:.1f} s)",
                "",
                "",
            )
        )
        rows.append(
            (f"list limit={listing['page_size']} p50", f"{listing['p50_ms']:.2f} ms")
            + verdict("list_p50")
        )
        rows.append(("list p90", f"{listing['p90_ms']:.2f} ms", "", ""))
        rows.append(("list p99", f"{listing['p99_ms']:.2f} ms", "", ""))
        rows.append(
            (
                "list p50 first page / next pages",
                " / ".join(
                    "-" if math.isnan(part["p50_ms"]) else f"{part['p50_ms']:.2f}"
                    for part in (listing["first_page"], listing["next_pages"])
                )
                + " ms",
                "",
                "",
            )
        )
    if "hwm_mb_at_end" in results:
        rows.append(
            ("worker VmHWM at the end (info)", f"{results['hwm_mb_at_end']:.1f} MB", "", "")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    header = ("measurement", "value", "target", "result")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(line.format(*header))
    print("-" * (sum(widths) + 2 * len(widths) + 6))
    for row in rows:
        print(line.format(*row).rstrip())
    if transfers and hashes:
        gib = results["size"] / (1 << 30)
        up = transfers["upload"]
        # What MD5 and SHA-512 alone cost, per GiB, at the rates measured above.
        hash_s = sum((1 << 30) / (hashes[name] * 1e6) for name in ("md5", "sha512"))
        print(
            f"upload: {verdicts['upload']['share_of_md5']:.0%} of the one-core MD5 rate; "
            f"server worker {up['server_cpu_s'] / gib:.2f} CPU-s per GiB, of which the two "
            f"hashes need {hash_s:.2f} ({hash_s / (up['server_cpu_s'] / gib):.0%})"
        )
        print(
            f"upload: {verdicts['upload']['share_of_hash_ceiling']:.0%} of the most the two "
            f"hashes let any upload reach on {os.cpu_count() or 1} cores, "
            f"{verdicts['upload']['hash_ceiling_mb_s']:.1f} MB/s (each hash is one core's "
            "work at its rate above, and both need the cores' time together)"
        )
        print(
            f"upload: {verdicts['upload']['share_of_hashes_together']:.0%} of the rate at which "
            f"two threads computed MD5 and SHA-512 at once here, {hashes['together']:.1f} MB/s"
        )
    if transfers:
        for key, label in (
            ("upload", "upload (median)"),
            ("upload_sampled", "upload, memory sampled"),
            ("download", "download (median)"),
            ("download_sampled", "download, memory sampled"),
        ):
            figures = transfers[key]
            print(
                f"CPU during {label}: client {figures['client_cpu_s']:.2f} s, "
                f"server worker {figures['server_cpu_s']:.2f} s, "
                f"over {figures['seconds']:.2f} s ({figures['rss_samples']} RSS samples)"
            )


def hash_ceiling(hashes: dict[str, float], cores: int | None = None) -> float:
    """Return the fastest an upload can go, in MB/s, given the one-core hash rates.

    Every byte goes through MD5 and SHA-512, each of which runs on one core
    at a time: the upload can go no faster than the slower of the two, nor
    faster than the cores can do both together (on one core, their sum).
    Receiving and writing cost more on top; nothing can cost less.
    """
    cores = cores or os.cpu_count() or 1
    per_mb = [1 / hashes["md5"], 1 / hashes["sha512"]]
    return 1 / max(*per_mb, sum(per_mb) / cores)


# -- the benchmark -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
    """The benchmark's settings, from the command line."""

    size: int
    images: int
    skip_list: bool
    keep: bool
    list_requests: int
    page_size: int
    concurrency: int
    client_hash: str
    verify_download: bool
    sample_interval: float
    directory: str | None
    json_path: str | None
    cold_reads: bool = True
    read_rounds: int = 5
    upload_rounds: int = 3
    hold_free_memory: bool = False
    without_compute: bool = True
    client_send: str = "read"


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=parse_size, default=1 << 30, help="image size (default 1GiB; e.g. 2GiB)"
    )
    parser.add_argument("--images", type=int, default=10_000, help="images to list (10000)")
    parser.add_argument("--skip-list", action="store_true", help="skip the list latency part")
    parser.add_argument(
        "--keep", action="store_true", help="keep the state directory (and its images)"
    )
    parser.add_argument("--list-requests", type=int, default=200, help="list requests timed")
    parser.add_argument("--page-size", type=int, default=100, help="the list's limit")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="connections creating the images at once"
    )
    parser.add_argument(
        "--client-hash",
        choices=("before", "inline"),
        default="before",
        help="hash the upload before the clock starts (default) or while sending it (inline)",
    )
    parser.add_argument(
        "--client-send",
        choices=("read", "sendfile"),
        default="read",
        help="send the upload's file in 1 MiB reads (default) or with sendfile(2), which"
        " spares the client a copy of every byte",
    )
    parser.add_argument(
        "--no-verify-download",
        dest="verify_download",
        action="store_false",
        help="skip the second, hashed download",
    )
    parser.add_argument(
        "--sample-interval", type=float, default=0.05, help="seconds between RSS samples"
    )
    parser.add_argument("--dir", help="where to make the temporary state directory")
    parser.add_argument("--json", help="also write the JSON summary to this file")
    parser.add_argument(
        "--warm-reads",
        action="store_true",
        help="do not empty the page cache before dd's reads and the downloads",
    )
    parser.add_argument(
        "--read-rounds",
        type=int,
        default=5,
        help="dd reads and downloads timed, in turns; their medians are compared (5)",
    )
    parser.add_argument(
        "--with-compute",
        dest="without_compute",
        action="store_false",
        help="run nimbus up with the compute service's processes in its worker (the default"
        " leaves them out: [compute] embedded_backend = false)",
    )
    parser.add_argument(
        "--upload-rounds",
        type=int,
        default=3,
        help="uploads timed, each into a new image; their median is judged (3)",
    )
    parser.add_argument(
        "--hold-free-memory",
        action="store_true",
        help="keep this (virtual) machine from handing free memory back to its host while"
        " the benchmark runs (free page reporting; root only): steadier read figures",
    )
    args = parser.parse_args(argv)
    counts = (args.images, args.list_requests, args.page_size, args.concurrency)
    if min(*counts, args.read_rounds, args.upload_rounds) < 1:
        parser.error(
            "--images, --list-requests, --page-size, --concurrency, --read-rounds and"
            " --upload-rounds must be positive"
        )
    return Options(
        size=args.size,
        images=args.images,
        skip_list=args.skip_list,
        keep=args.keep,
        list_requests=args.list_requests,
        page_size=args.page_size,
        concurrency=args.concurrency,
        client_hash=args.client_hash,
        client_send=args.client_send,
        verify_download=args.verify_download,
        sample_interval=max(0.005, args.sample_interval),
        directory=args.dir,
        json_path=args.json,
        cold_reads=not args.warm_reads,
        read_rounds=args.read_rounds,
        upload_rounds=args.upload_rounds,
        without_compute=args.without_compute,
        hold_free_memory=args.hold_free_memory,
    )


def _step(text: str) -> None:
    print(f"... {text}", flush=True)


def _new_image(server: launcher.Server, token: str) -> str:
    client = Client(server.port, token)
    try:
        image = client.expect(
            201,
            "POST",
            IMAGES_PATH,
            {"name": "bench", "disk_format": "raw", "container_format": "bare"},
        )
    finally:
        client.close()
    return str(image["id"])


def _upload_checked(
    opts: Options,
    server: launcher.Server,
    token: str,
    source: str,
    written: dict[str, Any],
    interval: float | None,
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Upload *source* to a new image and check the record; return figures, id and record."""
    image_id = _new_image(server, token)
    up, expected = upload(
        server,
        token,
        image_id,
        source,
        client_hash=opts.client_hash,
        interval=interval,
        send=opts.client_send,
    )
    if expected != written:
        raise BenchError(f"the client sent {expected}, not the image written ({written})")
    client = Client(server.port, token)
    try:
        record = client.expect(200, "GET", f"{IMAGES_PATH}/{image_id}")
    finally:
        client.close()
    check_image(record, expected)
    return up, image_id, record


def _delete_image(server: launcher.Server, token: str, image_id: str) -> None:
    client = Client(server.port, token)
    try:
        client.expect(204, "DELETE", f"{IMAGES_PATH}/{image_id}")
    finally:
        client.close()


def bench_transfers(
    opts: Options, server: launcher.Server, token: str, state: str, dd: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Upload, check and download the image; return the figures and the kept image's id.

    The timed transfers run without the memory sampler, and the worker's
    memory is measured on one more upload and one more download with it:
    reading ``/proc/<worker>/status`` every 50 ms made the same upload
    slower and the worker busier (seen on the 2-core machine, 2026-12-08,
    two runs each: 449 and 445 MB/s with 3.9 worker CPU-seconds per GiB
    sampled every 50 ms, 497 and 471 every 0.5 s, 559 and 502 without
    samples at 3.3-3.6).  The upload is timed ``--upload-rounds`` times,
    each into a new image, and the median counts, as for the reads.  dd's
    reads of the stored file, timed in turns with the downloads, are added
    to *dd*.
    """
    source = os.path.join(state, "upload.bin")
    _step(f"write the image ({human_size(opts.size)}) to {source}")
    written = write_image(source, opts.size)
    baseline = server.worker_memory()
    uploads: list[dict[str, Any]] = []
    try:
        for number in range(opts.upload_rounds):
            _step(f"upload {number + 1} of {opts.upload_rounds}, {human_size(opts.size)}")
            up, uploaded, record = _upload_checked(opts, server, token, source, written, None)
            uploads.append(up)
            if number == 0:
                image_id, kept = uploaded, record  # kept for the downloads
            else:
                _delete_image(server, token, uploaded)
        _step("upload with the worker's memory sampled")
        up_sampled, uploaded, _ = _upload_checked(
            opts, server, token, source, written, opts.sample_interval
        )
        _delete_image(server, token, uploaded)
    finally:
        os.unlink(source)
    images_dir = os.path.join(state, "images")
    stored = os.path.join(images_dir, image_id)
    if not os.path.isfile(stored):
        raise BenchError(f"the file store's file {stored} is missing: is the store 'file'?")
    if os.stat(images_dir).st_dev != os.stat(state).st_dev:
        print(f"warning: {images_dir} is on another file system than dd's file", file=sys.stderr)
    _step(f"dd read and download of the image, {opts.read_rounds} times each, in turns")
    reads = compare_reads(
        stored,
        lambda: download(server, token, image_id, written, verify=False, interval=None),
        rounds=opts.read_rounds,
        cold=opts.cold_reads,
    )
    dd.update(read=reads["read"], read_direct=reads["read_direct"])
    down = reads["download"]
    hashed: dict[str, Any] = {"mb_s": None, "peak_rss_mb": None}
    # The hashed download (or, without it, one more plain one) samples memory.
    _step("download, hashed" if opts.verify_download else "download with memory sampled")
    down_sampled = download(
        server,
        token,
        image_id,
        written,
        verify=opts.verify_download,
        interval=opts.sample_interval,
    )
    if opts.verify_download:
        hashed = down_sampled
    final = server.worker_memory()
    figures = {
        "workers": sorted(final),
        "baseline_rss_mb": max((m.rss for m in baseline.values()), default=0) / MB,
        "hwm_mb": max((m.hwm for m in final.values()), default=0) / MB,
        "upload": dict(_median_by_rate(uploads), rounds=[u["mb_s"] for u in uploads]),
        "upload_sampled": up_sampled,
        "download": down,
        "download_sampled": down_sampled,
        "download_hashed": hashed,
        "image": {k: kept.get(k) for k in ("id", "status", "size", "checksum", "os_hash_algo")},
    }
    return figures, image_id


def run(opts: Options, results: dict[str, Any]) -> None:
    """Run every part of the benchmark, filling in *results* as it goes."""
    with contextlib.ExitStack() as stack:
        tmp = tempfile.mkdtemp(prefix="nimbus-image-bench-", dir=opts.directory)
        if opts.keep:
            stack.callback(print, f"kept {tmp} (nimbus up --state-dir {tmp}/state)")
        else:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        state = os.path.join(tmp, "state")
        # The upload's source file, the stored image (or dd's file), and room.
        needed = 3 * opts.size + 512 * MIB
        free = shutil.disk_usage(tmp).free
        if free < needed:
            raise BenchError(f"{tmp} has {human_size(free)} free, {human_size(needed)} needed")
        config = launcher.write_config(
            os.path.join(tmp, "nimbus.conf"),
            {
                "DEFAULT": {"state_path": state},
                # The image service's figures: without the compute service's
                # scheduler, conductor and agent in the worker (they would
                # hold nimbus up to one worker and add their own memory).
                "compute": {"embedded_backend": not opts.without_compute},
            },
        )
        _step(f"nimbus up on {state}")
        server = stack.enter_context(
            launcher.nimbus_up(
                state, log_path=os.path.join(tmp, "nimbus-up.log"), config_file=config
            )
        )
        results["server"] = {"master": server.pid, "workers": server.worker_pids()}
        discovery = server.get_status("/image/")
        if discovery >= 400:
            raise BenchError(f"GET /image/ answered {discovery}: is the image API served?")
        with open(os.path.join(state, "admin-password"), encoding="utf-8") as f:
            token = admin_token(server.port, f.read().strip())

        _step(f"dd: write {human_size(opts.size)} in {state}")
        results["dd"] = measure_dd_write(state, opts.size)
        results["hash_mb_s"] = hash_rates()

        results["transfers"], image_id = bench_transfers(opts, server, token, state, results["dd"])
        if not opts.keep:
            client = Client(server.port, token)
            try:
                client.expect(204, "DELETE", f"{IMAGES_PATH}/{image_id}")
            finally:
                client.close()

        if not opts.skip_list:
            _step(f"create {opts.images} images ({opts.concurrency} connections)")
            results["create"] = create_images(server.port, token, opts.images, opts.concurrency)
            _step(f"list: {opts.list_requests} requests, limit={opts.page_size}")
            results["list"] = measure_list(server.port, token, opts.list_requests, opts.page_size)
            results["hwm_mb_at_end"] = (
                max((m.hwm for m in server.worker_memory().values()), default=0) / MB
            )


def machine_busy(seconds: float = 1.0) -> float:
    """Return the share of the machine's CPU time that was busy over *seconds*."""
    before = _stats.machine_cpu_seconds()
    time.sleep(seconds)
    after = _stats.machine_cpu_seconds()
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def _terminate(signum: int, _frame: Any) -> None:
    # Turn SIGTERM into an exception so that every clean-up block runs.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status (1 when a step or a check failed)."""
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    print(
        f"nimbus image benchmark: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"image of {human_size(opts.size)}, "
        + ("no list part" if opts.skip_list else f"{opts.images} images listed")
    )
    results: dict[str, Any] = {
        "started": time.time(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "size": opts.size,
        "options": dataclasses.asdict(opts),
        "targets": TARGETS,
    }
    busy = results["machine_busy_before"] = machine_busy()
    print(
        f"machine {busy:.0%} busy before the benchmark started"
        + (" (other processes: expect lower, noisier figures)" if busy > 0.1 else "")
    )
    reporting = results["page_reporting"] = {"order": page_reporting_order(), "held": False}
    status = 0
    try:
        with free_memory_held(reporting) if opts.hold_free_memory else contextlib.nullcontext():
            if reporting["order"] is not None:
                print(
                    f"free page reporting to the host: blocks of order {reporting['order']} and up"
                    + (", held off during the run" if reporting["held"] else "")
                )
            if "error" in reporting:
                print(f"warning: free memory not held: {reporting['error']}")
            run(opts, results)
    except (BenchError, launcher.ServerError, OSError, http.client.HTTPException) as ex:
        results["error"] = f"{type(ex).__name__}: {ex}"
        print(f"\nerror: {results['error']}", file=sys.stderr)
        status = 1
    verdicts = evaluate(results)
    results["verdicts"] = verdicts
    print()
    if verdicts or results.get("dd"):
        print_table(results, verdicts)
        print()
    document = json.dumps(_stats.jsonable(results), indent=2, allow_nan=False)
    print(document)
    if opts.json_path:
        with open(opts.json_path, "w", encoding="utf-8") as f:
            f.write(document + "\n")
        print(f"\nresults written to {opts.json_path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
