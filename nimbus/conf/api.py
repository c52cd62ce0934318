"""Options of the ``[api]`` group: the WSGI layer."""

from __future__ import annotations

from oslo_config import cfg

from nimbus.conf._groups import option_hooks

GROUP = cfg.OptGroup("api", title="API options", help="The HTTP API servers.")

OPTS = [
    cfg.HostAddressOpt(
        "bind_host",
        default="127.0.0.1",
        help="""Address that ``nimbus up`` listens on.

Related options:
* bind_port
* public_endpoint
""",
    ),
    cfg.PortOpt(
        "bind_port",
        default=8770,
        help="TCP port that ``nimbus up`` serves every API on.",
    ),
    cfg.URIOpt(
        "public_endpoint",
        schemes=["http", "https"],
        help="""Base URL that clients reach this cloud at.

The catalog advertises each service under this URL (``<url>/identity/v3``,
...).  When unset, ``http://<bind_host>:<bind_port>`` is used.
""",
    ),
    cfg.DictOpt(
        "service_endpoints",
        default={},
        help="""Public URL of each service served apart, by service name.

For a split deployment (``nimbus.wsgi:identity()`` on one port,
``nimbus.wsgi:image()`` on another): ``identity:http://cloud:5000,
image:http://cloud:9292``.  The catalog written by ``nimbus bootstrap``,
the version documents and links, the openrc and 401 challenges name a
service by its URL here (its API root, without ``/v3`` or ``/v2``); a
service not listed lives at ``<public_endpoint>/<name>``.

Related options:
* public_endpoint
""",
    ),
    cfg.URIOpt(
        "auth_uri",
        schemes=["http", "https"],
        help="""Identity endpoint that 401 answers send clients to.

It is named in the ``WWW-Authenticate: Keystone uri="..."`` challenge.  When
unset, an app serving the identity API names its own, and an app serving
other APIs alone names the public identity endpoint of the catalog.

Related options:
* public_endpoint
""",
    ),
    cfg.IntOpt(
        "max_request_body_size",
        default=114688,
        min=1024,
        help="""Largest request body accepted, in bytes.

Bigger bodies are refused with 413 before they are read.  Image uploads
have their own limits.
""",
    ),
    cfg.IntOpt(
        "workers",
        default=2,
        min=1,
        help="""Number of gunicorn worker processes for ``nimbus up``.

One worker serves every request under one Python interpreter lock, so its
event loop and threads wait for each other and a single core is the most it
uses; two keep two cores busy, which is most of what a development machine
gives a cloud beside its clients.  More help on more cores, at the memory of
one more copy of the services each (and each worker validates a token from
the database once before caching it).

The workers share the SQLite database (WAL, writes in ``BEGIN IMMEDIATE``
transactions), the Fernet keys and, through change stamps in shared memory,
what they cache: a token revoked, a user, project or domain disabled, a role
granted or removed, or a catalog changed through one worker is refused or
seen by the others at their next request.  Each worker runs the periodic
tasks, which are safe to run side by side.

While ``nimbus up`` also runs the compute service's scheduler, conductor
and agents (``[compute] embedded_backend``, on by default), it runs one
worker whatever this says: they serve the in-process message bus, which
does not cross processes, and one host has one agent.

Related options:
* threads
* [compute] embedded_backend
""",
    ),
    cfg.IntOpt(
        "threads",
        default=8,
        min=1,
        help="""Threads per gunicorn worker.

Each thread serves one request at a time.  With the ``nimbus.server.Worker``
worker class a thread is only given a request once its head (request line and
headers) has arrived, so clients that send slowly do not hold threads.

Related options:
* header_timeout
* body_timeout
""",
    ),
    cfg.FloatOpt(
        "header_timeout",
        default=10.0,
        min=0.1,
        help="""Seconds a client has to send a request's line and headers.

The ``nimbus.server.Worker`` gunicorn worker class (that of ``nimbus up``)
reads request heads in its event loop, without holding a thread; a head that
has not arrived this long after the connection was accepted (or after a
kept-alive connection's next request began) is answered 408 and closed.

Related options:
* body_timeout
* threads
""",
    ),
    cfg.FloatOpt(
        "body_timeout",
        default=30.0,
        min=0.1,
        help="""Seconds a read of a request body may wait for data.

With the ``nimbus.server.Worker`` gunicorn worker class, each read of the body
(and each write of the response) that has nothing to do for this long fails
and frees the thread: the connection is closed.  A slow client that keeps
sending within this time is served to the end.

Related options:
* header_timeout
""",
    ),
    cfg.BoolOpt(
        "log_requests",
        default=False,
        help="""Whether ``nimbus up`` logs one INFO line per request.

The line gives the method, the path (without the query string), the status,
the request id and the caller's user, project and audit ids.  ``nimbus up``
logs to its terminal; a line per request there costs more CPU than a token
validation, so by default it leaves them out (``nimbus up --log-requests``
turns them on for one run).  Warnings and errors are always logged.  A
split deployment configures logging itself and is not affected.
""",
    ),
]


register_opts, list_opts = option_hooks((GROUP, OPTS))
