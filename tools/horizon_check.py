"""Look at a nimbus cloud through Horizon in headless Chromium, as a user would.

Run it from a clone with the Python that has nimbus installed::

    python tools/horizon_check.py                  # its own `nimbus up` on a temporary state
    python tools/horizon_check.py --auth-url http://HOST:PORT/identity/v3 --password PW

It builds (once) a venv with Horizon and Playwright under ``--venv``
(default ``~/.cache/nimbus-horizon``), needs Debian's Chromium at
``/usr/bin/chromium`` (``apt-get install chromium``), seeds the cloud with an
uploaded image and a public metadata definitions namespace, serves Horizon
with Django's development server pointed at the cloud's identity URL
(file-backed sessions), logs in and opens the pages below.  A page fails when
it shows an error banner, when Horizon answers 5xx to any of its own
requests, or when an expected element is missing.  Screenshots land in
``--output``.  The exit status is 0 only if every page passed.

Pages: the project's Images panel, an image's details, the Create Image
dialog with its Metadata step (metadata definitions), a missing image's
details (a clean "not found", not a 500), Admin > Images, Admin > Metadata
Definitions and a namespace's details, and the identity panels.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

HORIZON = "horizon==27.0.0"
PLAYWRIGHT = "playwright==1.65.2"
CHROMIUM = "/usr/bin/chromium"
NAMESPACE = "OS::Nimbus::HorizonCheck"

SETTINGS = """\
from openstack_dashboard.settings import *  # noqa: F403

DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = {secret!r}
OPENSTACK_KEYSTONE_URL = {auth_url!r}
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"
SESSION_ENGINE = "django.contrib.sessions.backends.file"
SESSION_FILE_PATH = {sessions!r}
CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}}
COMPRESS_ENABLED = False
COMPRESS_OFFLINE = False
"""

# The browser's side: runs in the Horizon venv, which has Playwright.
BROWSER = """\
import json, sys, time
from playwright.sync_api import sync_playwright

spec = json.load(open(sys.argv[1]))
base = spec["base"]
results = []
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=spec["chromium"], args=spec["args"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = []
    page.on("response", lambda r: seen.append((r.status, r.request.method, r.url)))
    page.goto(base + "/auth/login/")
    page.fill("#id_username", spec["username"])
    page.fill("#id_password", spec["password"])
    page.click("#loginBtn")
    page.wait_for_load_state("networkidle")
    logged_in = "/auth/login" not in page.url
    results.append({"page": "login", "ok": logged_in, "problems": [] if logged_in else [page.url]})
    for step in spec["pages"] if logged_in else []:
        seen.clear()
        problems = []
        page.goto(base + step["path"])
        page.wait_for_load_state("networkidle")
        if step.get("click"):
            page.get_by_text(step["click"], exact=True).first.click()
            time.sleep(1)
            page.wait_for_load_state("networkidle")
        if step.get("then_click"):
            page.get_by_text(step["then_click"], exact=True).first.click()
            time.sleep(1)
            page.wait_for_load_state("networkidle")
        time.sleep(1)
        for banner in page.locator(".alert-danger:visible, .toast-error:visible").all():
            text = " ".join(banner.inner_text().split())
            if text and text not in step.get("allowed_banners", []):
                problems.append("banner: " + text)
        for status, method, url in seen:
            if status >= 500:
                problems.append(f"{status} {method} {url}")
        if step.get("api_status"):
            status, prefix = step["api_status"]
            got = [s for s, _, url in seen if prefix in url]
            if status not in got:
                problems.append(f"{prefix} answered {got}, not {status}")
        for text in step.get("expect", []):
            if page.get_by_text(text).count() == 0:
                problems.append(f"missing: {text!r}")
        page.screenshot(path=spec["output"] + "/" + step["name"] + ".png", full_page=True)
        results.append({"page": step["name"], "ok": not problems, "problems": problems})
    browser.close()
json.dump(results, open(sys.argv[2], "w"))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30):
                return
        except OSError as ex:
            if getattr(ex, "code", None) is not None:
                return  # it answers, if only with an error status
            if time.monotonic() > deadline:
                raise SystemExit(f"horizon_check: {url} did not answer: {ex}") from ex
            time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ensure_venv(path: str) -> str:
    """Return the Python of a venv with Horizon and Playwright, building it if needed."""
    python = os.path.join(path, "bin", "python")
    marker = os.path.join(path, ".nimbus-horizon")
    wanted = f"{HORIZON} {PLAYWRIGHT}\n"
    if os.path.exists(marker) and open(marker).read() == wanted:
        return python
    print(f"horizon_check: building {path} ({HORIZON}, {PLAYWRIGHT})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", HORIZON, PLAYWRIGHT], check=True)
    with open(marker, "w") as f:
        f.write(wanted)
    return python


@contextlib.contextmanager
def own_cloud(password: str) -> Iterator[str]:
    """Run `nimbus up` on a temporary state; yield its identity URL."""
    nimbus = shutil.which("nimbus", path=os.path.dirname(sys.executable)) or "nimbus"
    with tempfile.TemporaryDirectory(prefix="nimbus-horizon-") as tmp:
        port = _free_port()
        log = open(os.path.join(tmp, "up.log"), "wb")
        proc = subprocess.Popen(
            [nimbus, "up", "--port", str(port), "--state-dir", os.path.join(tmp, "state")]
            + ["--admin-password", password],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_http(f"http://127.0.0.1:{port}/identity/v3", 120)
            yield f"http://127.0.0.1:{port}/identity/v3"
        finally:
            _stop(proc)
            log.close()


def _request(method: str, url: str, token: str | None, body: Any = None, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("X-Auth-Token", token)
    if data is not None and not isinstance(body, bytes):
        req.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        req.add_header(name.replace("_", "-"), value)
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
        return (resp.headers, json.loads(raw) if raw else None)


def seed(auth_url: str, username: str, password: str, project: str) -> dict[str, str]:
    """Upload an image and create a public namespace; return their ids."""
    headers, body = _request(
        "POST",
        auth_url + "/auth/tokens",
        None,
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": username,
                            "domain": {"id": "default"},
                            "password": password,
                        }
                    },
                },
                "scope": {"project": {"name": project, "domain": {"id": "default"}}},
            }
        },
    )
    token = headers["X-Subject-Token"]
    image_url = next(
        e["url"]
        for s in body["token"]["catalog"]
        if s["type"] == "image"
        for e in s["endpoints"]
        if e["interface"] == "public"
    ).rstrip("/")
    _, image = _request(
        "POST",
        image_url + "/v2/images",
        token,
        {"name": "horizon-check", "disk_format": "raw", "container_format": "bare"},
    )
    _request(
        "PUT",
        f"{image_url}/v2/images/{image['id']}/file",
        token,
        os.urandom(1 << 20),
        Content_Type="application/octet-stream",
    )
    with contextlib.suppress(urllib.error.HTTPError):  # left by an earlier run: keep it
        _request(
            "POST",
            image_url + "/v2/metadefs/namespaces",
            token,
            {
                "namespace": NAMESPACE,
                "display_name": "Horizon check",
                "description": "Made by tools/horizon_check.py",
                "visibility": "public",
                "resource_type_associations": [{"name": "OS::Glance::Image"}],
                "properties": {
                    "hw_check": {"title": "Check", "type": "string", "enum": ["a", "b"]}
                },
            },
        )
    return {"image_id": image["id"]}


def pages(image_id: str) -> list[dict[str, Any]]:
    """What the browser opens, and what each page must show."""
    missing = uuid.uuid4()
    return [
        {"name": "project-images", "path": "/project/images/", "expect": ["horizon-check"]},
        {"name": "image-details", "path": f"/project/images/{image_id}/", "expect": [image_id]},
        {
            "name": "create-image-metadata",
            "path": "/project/images/",
            "click": "Create Image",
            "then_click": "Metadata",
            "expect": ["Horizon check"],
            # The dialog's own hints for the fields a user has not filled in yet.
            "allowed_banners": [
                "An image name less than 256 characters is required.",
                "An image description less than 256 characters is required.",
                "A local file should be selected.",
            ],
        },
        {
            # Glance's 404 reaches Horizon as a 404 (not a 500) and Horizon
            # says so in its own words.
            "name": "missing-image-details",
            "path": f"/project/images/{missing}/",
            "api_status": [404, f"/api/glance/images/{missing}/"],
            "allowed_banners": ["Error: Unable to retrieve the image."],
        },
        {"name": "admin-images", "path": "/admin/images/", "expect": ["horizon-check"]},
        {
            "name": "admin-metadata-defs",
            "path": "/admin/metadata_defs/",
            "expect": ["Horizon check"],
        },
        {
            "name": "namespace-details",
            "path": f"/admin/metadata_defs/{NAMESPACE}/detail",
            "expect": [NAMESPACE],
        },
        {"name": "identity-projects", "path": "/identity/", "expect": ["admin"]},
        {"name": "identity-users", "path": "/identity/users/", "expect": ["admin"]},
        {"name": "identity-groups", "path": "/identity/groups/"},
        {"name": "identity-roles", "path": "/identity/roles/", "expect": ["reader"]},
    ]


def check(args: argparse.Namespace, auth_url: str) -> int:
    """Seed the cloud, serve Horizon at it and look at every page."""
    if not os.access(CHROMIUM, os.X_OK):
        print(f"horizon_check: {CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    python = ensure_venv(args.venv)
    seeded = seed(auth_url, args.username, args.password, args.project)
    os.makedirs(args.output, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nimbus-horizon-site-") as site:
        sessions = os.path.join(site, "sessions")
        os.mkdir(sessions)
        with open(os.path.join(site, "nimbus_horizon_settings.py"), "w") as f:
            f.write(SETTINGS.format(secret=uuid.uuid4().hex, auth_url=auth_url, sessions=sessions))
        port = _free_port()
        env = {
            **os.environ,
            "PYTHONPATH": site,
            "DJANGO_SETTINGS_MODULE": "nimbus_horizon_settings",
        }
        log = open(os.path.join(args.output, "horizon.log"), "wb")
        django = os.path.join(os.path.dirname(python), "django-admin")
        server = subprocess.Popen(
            [django, "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_http(f"http://127.0.0.1:{port}/auth/login/", 120)
            spec = {
                "base": f"http://127.0.0.1:{port}",
                "chromium": CHROMIUM,
                # Without the background-networking flags Chromium keeps
                # trying hosts this machine's closed network refuses.
                "args": [
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
                "username": args.username,
                "password": args.password,
                "output": os.path.abspath(args.output),
                "pages": pages(seeded["image_id"]),
            }
            spec_path = os.path.join(site, "spec.json")
            result_path = os.path.join(site, "results.json")
            script = os.path.join(site, "browse.py")
            with open(spec_path, "w") as f:
                json.dump(spec, f)
            with open(script, "w") as f:
                f.write(BROWSER)
            subprocess.run([python, script, spec_path, result_path], check=True, timeout=600)
            with open(result_path) as f:
                results = json.load(f)
        finally:
            _stop(server)
            log.close()
    failed = 0
    for row in results:
        print(f"{'ok  ' if row['ok'] else 'FAIL'} {row['page']}")
        for problem in row["problems"]:
            print(textwrap.indent(problem, "       "))
        failed += not row["ok"]
    print(f"horizon: {len(results) - failed} pages passed, {failed} failed ({args.output})")
    return 1 if failed or len(results) < 2 else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth-url", help="the cloud's identity URL (default: run `nimbus up`)")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", help="the user's password (required with --auth-url)")
    parser.add_argument("--project", default="admin")
    parser.add_argument(
        "--venv", default=os.path.expanduser("~/.cache/nimbus-horizon"), help="Horizon's venv"
    )
    parser.add_argument("--output", default="horizon-check", help="screenshots and Horizon's log")
    args = parser.parse_args(argv)
    if args.auth_url:
        if not args.password:
            parser.error("--password is required with --auth-url")
        return check(args, args.auth_url.rstrip("/"))
    args.password = args.password or uuid.uuid4().hex
    with own_cloud(args.password) as auth_url:
        return check(args, auth_url)


if __name__ == "__main__":
    sys.exit(main())
