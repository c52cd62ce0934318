"""Options of the ``[messaging]`` group."""

from __future__ import annotations

from oslo_config import cfg

from nimbus.conf._groups import option_hooks

GROUP = cfg.OptGroup("messaging", title="Messaging options", help="The message bus.")

OPTS = [
    cfg.StrOpt(
        "transport",
        default="memory",
        help="""Entry-point name of the message bus transport.

Possible values:
* ``memory``: threads in one process (the embedded default)
* ``rabbit``: RabbitMQ through pika, for split deployments
* any name installed in the ``nimbus.messaging.transports`` namespace

Related options:
* transport_url
""",
    ),
    cfg.StrOpt(
        "transport_url",
        default="amqp://guest:guest@127.0.0.1:5672/%2F",
        secret=True,
        help="""URL of the RabbitMQ broker.

Possible values:
* ``amqp://USER:PASSWORD@HOST:PORT/VHOST``, the virtual host URL-quoted
  (``%2F`` is the default ``/``); ``amqps://`` for TLS.  Query parameters
  understood by pika (``?connection_attempts=3``) are accepted.

Related options:
* transport: only the ``rabbit`` transport reads it
* heartbeat_timeout
""",
    ),
    cfg.StrOpt(
        "exchange",
        default="nimbus",
        help="""Name of the exchange that scopes every topic of this cloud.

Queues are named after it too (``<exchange>.<topic>``), so two clouds can
share one RabbitMQ virtual host when their exchanges differ.  The memory
transport uses it to pick its in-process broker.

Related options:
* transport
""",
    ),
    cfg.FloatOpt(
        "rpc_response_timeout",
        default=60.0,
        min=0.001,
        help="""Seconds a ``call`` waits for its reply when the caller names no timeout.

A call that gets no reply in time raises ``MessagingTimeout``.

Possible values:
* a positive number of seconds; a client can override it per call with
  ``prepare(timeout=...)``
""",
    ),
    cfg.IntOpt(
        "heartbeat_timeout",
        default=60,
        min=0,
        help="""Seconds of silence after which a RabbitMQ connection is considered dead.

Heartbeats are sent at a fraction of this interval; a broker or a network
path that stops answering is noticed within it, and the connection is
rebuilt.  0 disables heartbeats (not recommended: a dead peer is then only
noticed by TCP, which can take hours).

Related options:
* connection_retry_interval
""",
    ),
    cfg.FloatOpt(
        "connection_retry_interval",
        default=1.0,
        min=0.0,
        help="""Seconds to wait before the first reconnection attempt to the broker.

Each further attempt waits ``connection_retry_backoff`` times longer, up to
``connection_retry_interval_max``.

Related options:
* connection_retry_backoff
* connection_retry_interval_max
* connection_retry_attempts
""",
    ),
    cfg.FloatOpt(
        "connection_retry_backoff",
        default=2.0,
        min=1.0,
        help="""Factor by which the wait grows after each failed reconnection.

Possible values:
* 1: retry at a constant interval
* more than 1: exponential backoff

Related options:
* connection_retry_interval
""",
    ),
    cfg.FloatOpt(
        "connection_retry_interval_max",
        default=30.0,
        min=0.0,
        help="""Longest wait, in seconds, between two reconnection attempts.

Related options:
* connection_retry_interval
""",
    ),
    cfg.IntOpt(
        "connection_retry_attempts",
        default=0,
        min=0,
        help="""Reconnection attempts a publisher makes before it gives up.

A cast, a notification or a reply that cannot be published after these
attempts raises ``MessagingError`` in the sender, so the caller knows the
message was not sent.  Consumers (servers and listeners) never give up: they
retry until they are stopped.  A ``call`` also gives up when its timeout
expires.

Possible values:
* 0: retry until the broker answers (casts block meanwhile)
* a positive number of attempts

Related options:
* connection_retry_interval
""",
    ),
    cfg.IntOpt(
        "max_delivery_attempts",
        default=5,
        min=1,
        help="""Deliveries of a message whose handler keeps raising, before it is dead-lettered.

A cast or a notification whose handler raises is put back on its queue and
delivered again; after this many deliveries it goes to the dead-letter
queue ``<exchange>.dead-letter`` instead of looping forever.  Calls are
never redelivered: their failure goes back to the caller.

Possible values:
* 1: dead-letter on the first failure
* a larger number: retry that many times in all

Related options:
* exchange: names the dead-letter queue
""",
    ),
    cfg.IntOpt(
        "prefetch_count",
        default=8,
        min=1,
        help="""Messages a server handles at once, each in its own thread.

This is also the RabbitMQ prefetch (``basic.qos``): the broker hands a
server at most this many unacknowledged messages per queue, and the others
wait on the queue for whichever server is free.
""",
    ),
]


register_opts, list_opts = option_hooks((GROUP, OPTS))
