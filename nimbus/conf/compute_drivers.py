"""Options of the compute drivers: ``[fake_compute]`` and ``[libvirt]``."""

from __future__ import annotations

from oslo_config import cfg

from nimbus.conf._groups import option_hooks

FAKE_GROUP = cfg.OptGroup(
    "fake_compute",
    title="Fake compute driver options",
    help="The ``fake`` compute driver: guests in memory, for tests and demos.",
)
LIBVIRT_GROUP = cfg.OptGroup(
    "libvirt",
    title="libvirt compute driver options",
    help="The ``libvirt`` compute driver: QEMU guests through libvirt.",
)

FAKE_OPTS = [
    cfg.IntOpt(
        "vcpus",
        default=1000,
        min=1,
        help="vCPUs the fake host reports (Nova's fake driver reports 1000).",
    ),
    cfg.IntOpt(
        "memory_mb",
        default=800000,
        min=1,
        help="RAM in MiB the fake host reports (Nova's fake driver reports 800000).",
    ),
    cfg.IntOpt(
        "local_gb",
        default=600000,
        min=1,
        help="Disk in GiB the fake host reports (Nova's fake driver reports 600000).",
    ),
    cfg.FloatOpt(
        "spawn_delay",
        default=0.0,
        min=0.0,
        help="""Seconds each spawn takes, to imitate a real hypervisor.

0 (the default) spawns at once.
""",
    ),
    cfg.StrOpt(
        "hypervisor_hostname",
        help="""Node name the fake host reports.

Unset (the default), the host name the compute agent passes to
``init_host``, or ``fake-mini`` before that.
""",
    ),
]

LIBVIRT_OPTS = [
    cfg.StrOpt(
        "connection_uri",
        default="qemu:///system",
        help="""libvirt connection URI of the hypervisor.

Possible values:
* ``qemu:///system``: the host's libvirtd (the default)
* ``test:///default``: libvirt's in-process test driver (no guests really run)
""",
    ),
    cfg.StrOpt(
        "virt_type",
        default="qemu",
        choices=["qemu", "kvm"],
        help="""Domain type of the guests.

``qemu`` (the default) is software emulation (TCG), which works everywhere;
``kvm`` needs a working ``/dev/kvm`` (the machines of this project have one
that hangs guests at boot).
""",
    ),
    cfg.StrOpt(
        "instances_path",
        default="$state_path/instances",
        help="""Directory of the guests' disks and console logs, one directory per uuid.

The ``libvirt-qemu`` user must be able to traverse it.
""",
    ),
    cfg.IntOpt(
        "graceful_shutdown_timeout",
        default=60,
        min=0,
        help="""Seconds a stop or soft reboot waits for the guest OS before forcing it off.

Related options:
* shutdown_retry_interval
""",
    ),
    cfg.FloatOpt(
        "shutdown_retry_interval",
        default=1.0,
        min=0.1,
        help="Seconds between checks whether a guest asked to shut down has stopped.",
    ),
    cfg.StrOpt(
        "vnc_listen",
        default="127.0.0.1",
        help="""Address the guests' VNC servers listen on.

Related options:
* vnc_host
""",
    ),
    cfg.StrOpt(
        "vnc_host",
        help="""Host name or address VNC clients are told to connect to.

Unset (the default), ``vnc_listen``.
""",
    ),
    cfg.StrOpt(
        "qemu_img",
        default="qemu-img",
        help="The ``qemu-img`` program that makes the guests' disk overlays.",
    ),
    cfg.StrOpt(
        "kernel_cmdline",
        default="console=ttyS0",
        help="Kernel command line of direct kernel boot when the image names none.",
    ),
]

register_opts, list_opts = option_hooks((FAKE_GROUP, FAKE_OPTS), (LIBVIRT_GROUP, LIBVIRT_OPTS))
