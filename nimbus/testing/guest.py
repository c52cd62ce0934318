"""A tiny real guest for libvirt tests, built on the machine itself.

No cloud image can be downloaded on the project's machines, so the tests
make their own (see ``reference/virt-lab.md``): the Debian cloud kernel,
fetched with ``apt-get download``, and a busybox initramfs whose ``/init``
loads the virtio modules, prints :data:`BOOT_MARKER` on the serial console,
and then prints ``/proc/partitions`` whenever it changes (so a hot-plugged
volume shows up in the console log).  The result is cached in a directory
and reused; building it takes a few seconds.

Needs ``apt-get``, ``apt-cache``, ``dpkg`` and ``busybox-static``
(``tools/install-system-packages.sh --virt``).
"""

from __future__ import annotations

import dataclasses
import fcntl
import glob
import gzip
import os
import re
import shutil
import subprocess
import tempfile

__all__ = ["BOOT_MARKER", "KERNEL_MODULES", "TinyGuest", "build_tiny_guest"]

#: The line the guest prints once its init runs.
BOOT_MARKER = "NIMBUS-TINY-GUEST-BOOTED"

#: Modules the init loads, in order (the kernel package has no modules.dep).
KERNEL_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_blk",
    "failover",
    "net_failover",
    "virtio_net",
)

_KERNEL_META_PACKAGE = "linux-image-cloud-amd64"

_INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in {modules}; do
    [ -f /lib/modules/$module.ko ] && insmod /lib/modules/$module.ko
done
echo {marker}
last=""
while true; do
    parts=$(cat /proc/partitions)
    if [ "$parts" != "$last" ]; then
        echo "PARTITIONS:"
        echo "$parts"
        last=$parts
    fi
    sleep 1
done
"""


@dataclasses.dataclass(frozen=True)
class TinyGuest:
    """The files of the tiny guest: boot them with direct kernel boot."""

    kernel_path: str
    ramdisk_path: str
    kernel_version: str
    marker: str = BOOT_MARKER


def _run(argv: list[str], cwd: str | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout


def _kernel_package() -> str:
    """Return the versioned cloud kernel package the meta package depends on."""
    depends = _run(["apt-cache", "depends", _KERNEL_META_PACKAGE])
    match = re.search(r"Depends:\s*(linux-image-\S+-cloud-amd64)", depends)
    if match is None:
        raise RuntimeError(f"cannot resolve {_KERNEL_META_PACKAGE}: {depends!r}")
    return match.group(1)


def _pack(rootfs: str, target: str) -> None:
    """Write *rootfs* as a gzipped newc cpio archive at *target*."""
    names = _run(["find", "."], cwd=rootfs).encode()
    archive = subprocess.run(
        ["busybox", "cpio", "-o", "-H", "newc"],
        cwd=rootfs,
        input=names,
        check=True,
        capture_output=True,
    ).stdout
    with gzip.open(target, "wb", compresslevel=6) as out:
        out.write(archive)


def build_tiny_guest(cache_dir: str) -> TinyGuest:
    """Return the tiny guest, building it into *cache_dir* the first time.

    Concurrent callers wait for one build.  The files are readable by
    everyone (QEMU runs as ``libvirt-qemu``).

    :param cache_dir: where the kernel and initramfs are kept.
    :raises subprocess.CalledProcessError: a tool failed (no network to the
        Debian mirror, busybox missing).
    """
    os.makedirs(cache_dir, mode=0o755, exist_ok=True)
    os.chmod(cache_dir, 0o755)
    kernel = os.path.join(cache_dir, "vmlinuz")
    ramdisk = os.path.join(cache_dir, "initrd.gz")
    version_file = os.path.join(cache_dir, "version")
    with open(os.path.join(cache_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(map(os.path.exists, (kernel, ramdisk, version_file))):
            _build(cache_dir, kernel, ramdisk, version_file)
        with open(version_file) as f:
            version = f.read().strip()
    return TinyGuest(kernel_path=kernel, ramdisk_path=ramdisk, kernel_version=version)


def _build(cache_dir: str, kernel: str, ramdisk: str, version_file: str) -> None:
    package = _kernel_package()
    with tempfile.TemporaryDirectory(dir=cache_dir) as work:
        # apt-get download writes as the _apt user when it can: let it.
        os.chmod(work, 0o777)
        _run(["apt-get", "download", "-q", package], cwd=work)
        (deb,) = glob.glob(os.path.join(work, "*.deb"))
        unpacked = os.path.join(work, "pkg")
        _run(["dpkg", "-x", deb, unpacked])
        (vmlinuz,) = glob.glob(os.path.join(unpacked, "boot", "vmlinuz-*"))
        version = os.path.basename(vmlinuz)[len("vmlinuz-") :]

        rootfs = os.path.join(work, "rootfs")
        modules_dir = os.path.join(rootfs, "lib", "modules")
        os.makedirs(modules_dir)
        found = {}
        for path in glob.glob(
            os.path.join(unpacked, "lib", "modules", "*", "**", "*.ko"), recursive=True
        ):
            name = os.path.basename(path)[: -len(".ko")]
            if name in KERNEL_MODULES:
                found[name] = path
        for name, path in found.items():
            shutil.copy(path, os.path.join(modules_dir, name + ".ko"))
        os.makedirs(os.path.join(rootfs, "bin"))
        busybox = shutil.which("busybox") or "/bin/busybox"
        shutil.copy(busybox, os.path.join(rootfs, "bin", "busybox"))
        init = os.path.join(rootfs, "init")
        with open(init, "w") as f:
            f.write(_INIT.format(modules=" ".join(KERNEL_MODULES), marker=BOOT_MARKER))
        os.chmod(init, 0o755)

        partial_ramdisk = ramdisk + ".part"
        _pack(rootfs, partial_ramdisk)
        shutil.copy(vmlinuz, kernel + ".part")
        for path in (partial_ramdisk, kernel + ".part"):
            os.chmod(path, 0o644)
        os.replace(kernel + ".part", kernel)
        os.replace(partial_ramdisk, ramdisk)
        with open(version_file, "w") as f:
            f.write(version + "\n")
