"""Options of the ``[image]`` and ``[image_file_store]`` groups, and of each store's group."""

from __future__ import annotations

import copy
import functools

from oslo_config import cfg

from nimbus.conf._groups import option_hooks

GROUP = cfg.OptGroup("image", title="Image service options", help="The image service (Glance v2).")
FILE_STORE_GROUP = cfg.OptGroup(
    "image_file_store",
    title="File image store options",
    help="The ``file`` image store: image data as files in one directory.",
)

DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]

OPTS = [
    cfg.StrOpt(
        "store",
        default="file",
        help="""Entry-point name of the store that holds image data.

Possible values:
* ``file``: a directory on this host (see ``[image_file_store]``)
* any name installed in the ``nimbus.image.stores`` namespace

With ``enabled_stores`` empty this is the one store, its id is this name
(what images show in ``stores``) and it reads its own group
(``[image_file_store]`` for ``file``).

Related options:
* enabled_stores
""",
    ),
    cfg.ListOpt(
        "enabled_stores",
        default=[],
        help="""Several image stores, each as ``<store id>:<entry-point name>``.

Glance's ``enabled_backends``: for example ``fast:file,cheap:file`` gives
two ``file`` stores with ids ``fast`` and ``cheap``.  Each store reads its
options from its own group ``[image_store_<store id>]`` (for ``file``
stores: ``datadir``, default ``$state_path/image-stores/<store id>``,
``fsync``, ``direct_io``, ``read_ahead``).  An image may then live in
several stores: ``POST /v2/images/{id}/import`` with ``stores`` or
``all_stores`` writes to several, the ``copy-image`` method copies an
active image to more, and ``DELETE /v2/stores/{store id}/{image id}``
removes it from one.  Empty (the default): the one store of ``store``.

Related options:
* default_store
* store
""",
    ),
    cfg.StrOpt(
        "default_store",
        help="""Id of the store uploads go to when the request names none.

Glance's ``[glance_store] default_backend``.  Must be one of
``enabled_stores``; unset, the first of them.  Ignored without
``enabled_stores``.

Related options:
* enabled_stores
""",
    ),
    cfg.IntOpt(
        "chunk_size",
        default=1024 * 1024,
        min=4096,
        max=64 * 1024 * 1024,
        help="""Bytes read or written at a time when streaming image data.

Each transfer in progress holds about one chunk in memory.
""",
    ),
    cfg.StrOpt(
        "hashing_algorithm",
        default="sha512",
        choices=["sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake2b"],
        help="""Algorithm of the ``os_hash_value`` multihash computed on upload.

The MD5 ``checksum`` is always computed as well, for older clients.
""",
    ),
    cfg.IntOpt(
        "image_size_cap",
        default=1024**4,
        min=0,
        help="Largest image, in bytes, that an upload may store (default 1 TiB).",
    ),
    cfg.IntOpt(
        "image_count_quota",
        default=-1,
        min=-1,
        help="""Most images a project may own; -1 means no limit.

Creating one more answers 413.
""",
    ),
    cfg.IntOpt(
        "image_storage_quota",
        default=-1,
        min=-1,
        help="""Most bytes of image data a project may store; -1 means no limit.

An upload that would pass the limit is stopped and answers 413.
""",
    ),
    cfg.IntOpt(
        "limit_param_default",
        default=25,
        min=1,
        help="Images listed per page when the request gives no ``limit``.",
    ),
    cfg.IntOpt(
        "api_limit_max",
        default=1000,
        min=1,
        help="Largest page of images a list request may ask for.",
    ),
    cfg.ListOpt(
        "disk_formats",
        default=DISK_FORMATS,
        help="Disk formats an image may declare.",
    ),
    cfg.ListOpt(
        "container_formats",
        default=CONTAINER_FORMATS,
        help="Container formats an image may declare.",
    ),
    cfg.IntOpt(
        "image_property_quota",
        default=128,
        min=-1,
        help="Most custom properties an image may carry; -1 means no limit.",
    ),
    cfg.IntOpt(
        "image_tag_quota",
        default=128,
        min=-1,
        help="Most tags an image may carry; -1 means no limit.",
    ),
    cfg.IntOpt(
        "image_member_quota",
        default=128,
        min=-1,
        help="Most members a shared image may have; -1 means no limit.",
    ),
    cfg.FloatOpt(
        "upload_heartbeat_interval",
        default=10.0,
        min=0.01,
        help="""Seconds between two refreshes of an upload's heartbeat.

While data arrives, the process receiving an upload refreshes the image's
``updated_at`` at most this often (one database update), so that other
processes can tell a live upload from one whose process died.

Related options:
* upload_stale_after
""",
    ),
    cfg.FloatOpt(
        "upload_stale_after",
        default=60.0,
        min=0.1,
        help="""Seconds without a heartbeat after which an upload or a task counts as dead.

A dead upload's image goes back to ``queued`` and the store's partial
data of it is removed; a dead task (``/v2/tasks``, imports) fails.  Every
API process does this every ``upload_recovery_interval`` seconds and at
start-up.  An upload whose client sends less than one ``chunk_size`` in
this time is cut off too.  It must be greater than
``upload_heartbeat_interval`` and ``upload_recovery_interval`` (each
process refreshes its tasks' heartbeat once per recovery interval), with
room for the clock differences between the API hosts.

Related options:
* upload_heartbeat_interval
* upload_recovery_interval
* chunk_size
""",
    ),
    cfg.FloatOpt(
        "upload_recovery_interval",
        default=30.0,
        min=0.1,
        help="""Seconds between two looks for dead uploads in each API process.

Related options:
* upload_stale_after
""",
    ),
    cfg.IntOpt(
        "task_time_to_live",
        default=48,
        min=1,
        help="""Hours a task is kept after it succeeded or failed.

Its ``expires_at`` is set to the time it ended plus this; expired tasks
are removed by the periodic recovery of every API process.

Related options:
* upload_recovery_interval
""",
    ),
    cfg.IntOpt(
        "task_workers",
        default=2,
        min=1,
        help="""Tasks each API process runs at the same time.

Tasks beyond this wait in ``pending`` for a free worker.
""",
    ),
    cfg.FloatOpt(
        "task_url_timeout",
        default=60.0,
        min=1.0,
        help="""Seconds an ``import`` task waits for its source URL to connect or send.

A source that stays silent this long fails the task.
""",
    ),
]

FILE_STORE_OPTS = [
    cfg.StrOpt(
        "datadir",
        default="$state_path/images",
        help="""Directory the ``file`` store keeps image data in.

Each image is one file named after the image's id; uploads in progress
are hidden files that are renamed into place when complete.

Related options:
* [DEFAULT] state_path
""",
    ),
    cfg.BoolOpt(
        "fsync",
        default=True,
        help="""Flush each uploaded file to disk before the image becomes active.

Turn off only on throw-away clouds: a crash could then lose data of
images reported ``active``.
""",
    ),
    cfg.BoolOpt(
        "direct_io",
        default=True,
        help="""Write uploads with ``O_DIRECT``, past the page cache.

An upload then costs no page-cache copy and does not push other data out
of the cache.  Where the file system refuses ``O_DIRECT`` (some network
and in-memory file systems), the store writes through the page cache
instead, with the same result on disk.
""",
    ),
    cfg.IntOpt(
        "read_ahead",
        default=32 * 1024 * 1024,
        min=0,
        help="""Bytes of a download the store pulls into the page cache ahead of the client.

Reading a long range starts a thread that keeps up to this much of the
file on its way from the disk ahead of what the download has sent (it
``sendfile``s the file to ``/dev/null``, so it copies nothing).  The disk
then works on two streams of requests at once and the download finds its
data in memory.  The data sits in the page cache, not in the server's
memory, and never more than this far ahead of a slow client.  0 leaves
read-ahead to the kernel alone.
""",
    ),
]


register_opts, list_opts = option_hooks((GROUP, OPTS), (FILE_STORE_GROUP, FILE_STORE_OPTS))

#: The group of a store of ``[image] enabled_stores``: this prefix and its id.
STORE_GROUP_PREFIX = "image_store_"


def store_group(store_id: str) -> str:
    """Return the name of the option group of the store *store_id*."""
    return STORE_GROUP_PREFIX + store_id


@functools.cache
def file_store_opts(store_id: str) -> list[cfg.Opt]:
    """Return the options of the ``file`` store *store_id* (its own ``datadir``).

    The same objects for the same id, so that registering them twice (the
    store and ``nimbus up``) is not a duplicate.
    """
    opts = [copy.deepcopy(opt) for opt in FILE_STORE_OPTS]
    for opt in opts:
        if opt.dest == "datadir":
            opt.default = f"$state_path/image-stores/{store_id}"
    return opts


#: The stores ``nimbus up`` enables when the configuration names none.
EMBEDDED_STORES = ("fast:file", "cheap:file")
EMBEDDED_DEFAULT_STORE = "fast"


def set_embedded_store_defaults(conf: cfg.ConfigOpts) -> None:
    """Make two ``file`` stores the default of ``nimbus up`` (``fast``, the default, and ``cheap``).

    Only defaults: a configuration that sets ``[image] enabled_stores``
    keeps its stores, and one that sets ``[image] store`` to another
    driver keeps its single store.  ``fast`` keeps its data where the
    single store did (``$state_path/images``), so the images of a state
    directory made before several stores stay readable.
    """
    if conf.image.enabled_stores or conf.image.store != "file":
        return
    conf.set_default("enabled_stores", list(EMBEDDED_STORES), group="image")
    conf.set_default("default_store", EMBEDDED_DEFAULT_STORE, group="image")
    group = store_group(EMBEDDED_DEFAULT_STORE)
    conf.register_group(cfg.OptGroup(group))
    conf.register_opts(file_store_opts(EMBEDDED_DEFAULT_STORE), group=group)
    conf.set_default("datadir", "$state_path/images", group=group)
