"""``nimbus up``: run the whole cloud on this machine, on one port, under gunicorn.

On first start it creates the state directory, the SQLite database, the
Fernet keys, the admin (with a generated password) and the catalog; it
writes ``<state-dir>/openrc`` for the ``openstack`` client.  Later starts
reuse all of it.  Ctrl-C or SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shlex
import socket
import sys
import sysconfig
from typing import Any

from gunicorn.app.base import BaseApplication
from oslo_config import cfg

from nimbus.cmd._command import Command, argument
from nimbus.cmd.main import config_argv
from nimbus.conf import load_config, state_path

LOG = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``up`` sub-command."""
    Command(
        "up",
        "run the embedded all-in-one cloud",
        "Run every nimbus service in one process on one port (default "
        "127.0.0.1:8770), with its state under --state-dir (default ~/.nimbus/state).",
        run,
        arguments=(
            argument("--host", help="address to listen on (default 127.0.0.1)"),
            argument("--port", type=int, help="port to listen on (default 8770)"),
            argument("--state-dir", help="where the database, keys and openrc live"),
            argument(
                "--admin-password",
                help="password for the admin user on first start (default: generated)",
            ),
            argument(
                "--log-requests",
                action="store_true",
                default=None,
                help="log one INFO line per request (default: [api] log_requests, off)",
            ),
            argument(
                "--fake-hosts",
                type=int,
                metavar="N",
                help="run N fake compute hosts, to try the scheduler (default: [compute]"
                " fake_hosts, 0: one host)",
            ),
        ),
    ).register(subparsers)


def _admin_password(conf: cfg.ConfigOpts, given: str | None) -> str:
    path = state_path(conf, "admin-password")
    if given:
        password = given
    elif os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    else:
        password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    return password


def openrc_lines(conf: cfg.ConfigOpts, password: str) -> list[str]:
    """Return the ``export OS_...`` lines for the admin."""
    from nimbus import descriptor

    values: dict[str, str] = {}
    for service in descriptor.descriptors():
        url = descriptor.service_url(conf, service.name)
        values.update(service.client_environment(conf, url, password))
    values.update(OS_REGION_NAME=conf.region_name, OS_INTERFACE="public")
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def path_lines() -> list[str]:
    """Return the openrc lines that put this installation's ``openstack`` on ``PATH``.

    The client installed beside nimbus (the ``client`` extra, in the same
    virtualenv) is in this interpreter's scripts directory, which is not on
    ``PATH`` unless the virtualenv is activated.  The directory goes first,
    once however often the openrc is sourced; none when it has no client.
    """
    scripts = sysconfig.get_path("scripts")
    if not os.access(os.path.join(scripts, "openstack"), os.X_OK):
        return []
    where = shlex.quote(scripts)
    return [
        "# the openstack client installed with nimbus",
        f'case ":$PATH:" in *:{where}:*) ;; *) export PATH={where}:"$PATH" ;; esac',
    ]


def port_problem(host: str, port: int) -> str | None:
    """Return why gunicorn could not listen on *host*:*port*, or ``None`` if it can.

    Binds (and closes) a socket the way gunicorn does, with ``SO_REUSEADDR``:
    a port another server listens on, or one this user may not take, fails.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as ex:
        return ex.strerror or str(ex)
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as ex:
            return ex.strerror or str(ex)
    return None


def setup_services(
    conf: cfg.ConfigOpts, admin_password: str | None, *, embedded: bool, region_id: str
) -> list[Any]:
    """Migrate the schema and run every installed service's set-up; return what each said."""
    from nimbus.db import migration
    from nimbus.descriptor import SetupOptions
    from nimbus.wsgi import build_services, catalog_entries

    cloud = build_services(conf)
    try:
        migration.upgrade(cloud.database)
        options = SetupOptions(
            admin_password=admin_password,
            catalog=catalog_entries(conf),
            region_id=region_id,
            embedded=embedded,
        )
        return cloud.each(lambda service: service.setup(cloud, options))
    finally:
        cloud.close()


def _private_state(conf: cfg.ConfigOpts) -> None:
    """Make the state directory and everything in it readable by its owner only.

    A state directory made before (say 0755 by hand) is tightened: it holds
    the admin password, the Fernet keys and the database's password hashes.
    The SQLite file is made 0600 before SQLite opens it, as SQLite gives its
    ``-wal`` and ``-shm`` files the database file's mode.
    """
    root = state_path(conf)
    os.makedirs(root, mode=0o700, exist_ok=True)
    for path, _dirs, files in os.walk(root):
        os.chmod(path, os.stat(path).st_mode & 0o700)
        for name in files:
            full = os.path.join(path, name)
            if not os.path.islink(full):
                os.chmod(full, os.stat(full).st_mode & 0o700)
    if conf.database.connection is None:
        os.close(os.open(state_path(conf, "nimbus.sqlite"), os.O_WRONLY | os.O_CREAT, 0o600))


def prepare(conf: cfg.ConfigOpts, admin_password: str | None = None) -> str:
    """Create or upgrade everything the embedded cloud needs; return the openrc path."""
    _private_state(conf)
    password = _admin_password(conf, admin_password)
    setup_services(conf, password, embedded=True, region_id=conf.region_name)
    openrc = state_path(conf, "openrc")
    fd = os.open(openrc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# nimbus admin credentials; source this file to use the openstack client\n")
        f.write("\n".join([*openrc_lines(conf, password), *path_lines()]) + "\n")
    return openrc


class _Server(BaseApplication):
    """gunicorn, configured from nimbus options instead of gunicorn's command line."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        from nimbus.common.changes import Changes

        self.conf = conf
        # Made in the master, before gunicorn forks: every worker, a
        # restarted one too, shares these stamps.  What one worker revokes,
        # disables or changes in the caches is therefore refused or seen by
        # the others at their next request, as with a single process.
        self.changes = Changes()
        super().__init__()

    def load_config(self) -> None:
        api = self.conf.api
        host = api.bind_host if ":" not in api.bind_host else f"[{api.bind_host}]"
        settings = {
            "bind": [f"{host}:{api.bind_port}"],
            "workers": api.workers,
            # gthread that reads request heads in its event loop; it reads
            # [api] header_timeout and body_timeout from self.conf.
            "worker_class": "nimbus.server.Worker",
            "threads": api.threads,
            "graceful_timeout": 10,
            "timeout": 120,
            "proc_name": "nimbus-up",
            # gunicorn's control socket is one per user by default; two clouds
            # on one machine would fight over it.
            "control_socket_disable": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from nimbus.wsgi import build_app, build_services

        cloud = build_services(self.conf, changes=self.changes)
        # Each worker runs the periodic tasks; prepare() made the start-up runs.
        # They are safe side by side (idempotent deletes, compare-and-swap).
        self.runner = cloud.start_periodic(startup=False)
        app = build_app(cloud)
        # The processes behind the APIs (compute's scheduler, conductor and
        # agents) run here, on the in-process bus: run() keeps one worker.
        self.backends = [b for b in cloud.each(lambda d: d.embedded_backend(cloud)) if b]
        for backend in self.backends:
            backend.start()
        return app


#: The logger of the per-request line (nimbus.api.middleware.RequestIdMiddleware).
REQUEST_LOGGER = "nimbus.api.middleware"


def configure_request_log(conf: cfg.ConfigOpts) -> None:
    """Log a line per request only if ``[api] log_requests`` says so.

    Left at INFO, every request writes a line to the terminal, which costs a
    worker more than validating a token.  Warnings and errors of the
    middleware's logger still come through.
    """
    level = logging.NOTSET if conf.api.log_requests else logging.WARNING
    logging.getLogger(REQUEST_LOGGER).setLevel(level)


def single_worker_reason(conf: cfg.ConfigOpts) -> str | None:
    """Return why ``nimbus up`` must run one worker, or ``None`` when several may serve.

    The compute service's scheduler, conductor and agents run beside the
    APIs: on the in-process message bus, which does not cross processes, the
    API of a second worker could not reach them; on any bus, a second worker
    would run a second agent for each host, with guests of its own.
    """
    from nimbus import descriptor

    with_backend = [d.name for d in descriptor.descriptors() if d.has_embedded_backend(conf)]
    if not with_backend:
        return None
    bus = "in-process" if conf.messaging.transport == "memory" else conf.messaging.transport
    return (
        f"the {', '.join(with_backend)} service's processes (one agent per host) run in it,"
        f" on the {bus} message bus"
    )


def run(args: argparse.Namespace) -> int:
    """Prepare the state directory, print the credentials, and serve until stopped."""
    conf = load_config(config_argv(args))
    if args.state_dir:
        conf.set_override("state_path", os.path.abspath(args.state_dir))
    if args.host:
        conf.set_override("bind_host", args.host, group="api")
    if args.port:
        conf.set_override("bind_port", args.port, group="api")
    if getattr(args, "log_requests", None):
        conf.set_override("log_requests", True, group="api")
    if getattr(args, "fake_hosts", None) is not None:
        if args.fake_hosts < 0:
            print("nimbus up: --fake-hosts must be 0 or more", file=sys.stderr)
            return 2
        conf.set_override("fake_hosts", args.fake_hosts, group="compute")
    from nimbus.conf.image import set_embedded_store_defaults

    set_embedded_store_defaults(conf)
    single = single_worker_reason(conf)
    if single and conf.api.workers > 1:
        # As [api] workers says: logged below, once logging is set up.
        conf.set_override("workers", 1, group="api")
    # Before anything is made: a busy port found by gunicorn comes after the set-up.
    problem = port_problem(conf.api.bind_host, conf.api.bind_port)
    if problem is not None:
        where = f"{conf.api.bind_host}:{conf.api.bind_port}"
        print(
            f"nimbus up: cannot listen on {where} ({problem}); choose another port with --port",
            file=sys.stderr,
        )
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if single:
        LOG.info("One gunicorn worker: %s", single)
    configure_request_log(conf)
    # Whatever the cloud writes from here on (keys, images, logs) is its owner's only.
    os.umask(0o077)
    openrc = prepare(conf, args.admin_password)
    from nimbus import descriptor

    print(f"nimbus is starting at {descriptor.public_url(conf)}")
    print(f"  the admin's credentials: {openrc} (readable by you only)")
    print(f"  use them with:           source {shlex.quote(openrc)}; openstack token issue")
    print(f"  the admin's password:    cat {shlex.quote(state_path(conf, 'admin-password'))}")
    print(flush=True)
    _Server(conf).run()
    return 0
