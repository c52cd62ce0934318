"""A real QEMU guest through the libvirt driver on ``qemu:///system``.

The guest is the tiny one of :mod:`nimbus.testing.guest` (the Debian cloud
kernel and a busybox initramfs), booted with direct kernel boot on a qcow2
overlay of a small base image.  Software emulation (``virt_type = qemu``):
KVM hangs guests on these machines.  Each step's time is printed
(``pytest -s`` shows it).

Needs libvirtd and QEMU (``tools/install-system-packages.sh --virt``); the
tests skip without them, and fail under ``NIMBUS_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from oslo_config import cfg

from nimbus.conf import compute_drivers
from nimbus.drivers.compute import GuestSpec, PowerState, VolumeConnection
from nimbus.drivers.compute.libvirt import config
from nimbus.drivers.compute.libvirt.driver import LibvirtDriver
from nimbus.testing import guest as tiny
from nimbus.testing import services

pytestmark = [pytest.mark.services, pytest.mark.slow]

URI = "qemu:///system"
#: Where the tiny guest is cached between runs (QEMU must read it).
CACHE = os.environ.get("NIMBUS_TEST_GUEST_CACHE", "/var/tmp/nimbus-tiny-guest")
BOOT_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def libvirt() -> Any:
    module = services.require_module(
        "libvirt", "install libvirt-dev and pkg-config, then the nimbus-cloud[libvirt] extra"
    )
    module.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        conn = module.open(URI)
    except module.libvirtError as ex:
        message = f"libvirtd needed on {URI} ({ex}); run tools/install-system-packages.sh --virt"
        if services.services_required():
            pytest.fail(message + " (NIMBUS_REQUIRE_SERVICES is set)")
        pytest.skip(message)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def qemu_img() -> str:
    services.require_program("qemu-system-x86_64", "tools/install-system-packages.sh --virt")
    return services.require_program("qemu-img", "tools/install-system-packages.sh installs it")


@pytest.fixture(scope="module")
def guest_files(libvirt: Any, qemu_img: str) -> tiny.TinyGuest:
    started = time.monotonic()
    files = tiny.build_tiny_guest(CACHE)
    print(f"\ntiny guest ready in {time.monotonic() - started:.1f} s ({files.kernel_version})")
    return files


@pytest.fixture
def workdir() -> Iterator[str]:
    # Not pytest's tmp_path: QEMU runs as libvirt-qemu, which must traverse it.
    path = tempfile.mkdtemp(prefix="nimbus-libvirt-", dir="/var/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def driver(conf: cfg.ConfigOpts, workdir: str, libvirt: Any) -> LibvirtDriver:
    compute_drivers.register_opts(conf)
    conf.set_override("connection_uri", URI, group="libvirt")
    conf.set_override("virt_type", "qemu", group="libvirt")
    conf.set_override("instances_path", os.path.join(workdir, "instances"), group="libvirt")
    # busybox's init ignores ACPI: a soft reboot waits this long, then forces.
    conf.set_override("graceful_shutdown_timeout", 2, group="libvirt")
    conf.set_override("shutdown_retry_interval", 0.2, group="libvirt")
    driver = LibvirtDriver(conf)
    driver.init_host("integration")
    return driver


@pytest.fixture
def base_image(workdir: str, qemu_img: str) -> str:
    path = os.path.join(workdir, "base.qcow2")
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", path, "16M"], check=True)
    os.chmod(path, 0o644)
    return path


def _qemu_processes(guest_id: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if b"qemu-system" in cmdline and guest_id.encode() in cmdline:
            found.append(int(pid))
    return found


def _wait_for(what: str, check: Callable[[], bool], timeout: float = BOOT_TIMEOUT) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - started


class Timer:
    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []

    def step(self, name: str, seconds: float) -> None:
        self.steps.append((name, seconds))
        print(f"  {name}: {seconds:.2f} s")

    def run(self, name: str, action: Callable[[], object]) -> None:
        started = time.monotonic()
        action()
        self.step(name, time.monotonic() - started)


def test_tiny_guest_lifecycle(
    driver: LibvirtDriver,
    libvirt: Any,
    guest_files: tiny.TinyGuest,
    base_image: str,
    workdir: str,
) -> None:
    spec = GuestSpec(
        uuid=str(uuid.uuid4()),
        name="tiny",
        memory_mb=128,
        vcpus=1,
        root_gb=0,
        image_path=base_image,
        image_format="qcow2",
        kernel_path=guest_files.kernel_path,
        ramdisk_path=guest_files.ramdisk_path,
    )
    marker = guest_files.marker

    def boots() -> int:
        return driver.get_console_output(spec.uuid).count(marker)

    timer = Timer()
    print()
    try:
        timer.run("spawn", lambda: driver.spawn(spec))
        assert driver.get_info(spec.uuid).power_state == PowerState.RUNNING
        timer.step("boot to marker", _wait_for("boot marker", lambda: boots() == 1))
        # The root disk is the overlay, seen by the guest as vda: the kernel's
        # "[vda]" line, or the partition list the guest prints after its
        # marker (which may come a moment later).
        _wait_for(
            "vda in the console log",
            lambda: re.search(r"[\s\[]vda[\s\]]", driver.get_console_output(spec.uuid)) is not None,
        )
        disk = os.path.join(workdir, "instances", spec.uuid, "disk")
        assert (
            base_image
            in subprocess.run(
                ["qemu-img", "info", "-U", disk], check=True, capture_output=True, text=True
            ).stdout
        )

        console = driver.get_vnc_console(spec.uuid)
        assert console.port >= 5900
        stats = driver.get_diagnostics(spec.uuid)
        assert stats.cpu_time_ns is not None
        assert stats.cpu_time_ns > 0

        volume = os.path.join(workdir, "volume.raw")
        with open(volume, "wb") as f:
            f.truncate(8 * 1024 * 1024)
        connection = VolumeConnection(volume_id=str(uuid.uuid4()), path=volume)
        timer.run(
            "attach volume",
            lambda: driver.attach_volume(spec.uuid, connection=connection),
        )
        timer.step(
            "guest sees vdb",
            _wait_for(
                "vdb",
                lambda: re.search(r"\svdb\s", driver.get_console_output(spec.uuid)) is not None,
                30,
            ),
        )
        timer.run(
            "detach volume",
            lambda: driver.detach_volume(spec.uuid, volume_id=connection.volume_id),
        )

        timer.run("soft reboot", lambda: driver.reboot(spec.uuid, hard=False))
        timer.step("boot to marker", _wait_for("second boot", lambda: boots() == 2))
        timer.run("hard reboot", lambda: driver.reboot(spec.uuid, hard=True))
        timer.step("boot to marker", _wait_for("third boot", lambda: boots() == 3))

        timer.run("power off", lambda: driver.power_off(spec.uuid, timeout=1))
        assert driver.get_info(spec.uuid).power_state == PowerState.SHUTDOWN
        assert _qemu_processes(spec.uuid) == []
        timer.run("power on", lambda: driver.power_on(spec.uuid))
        timer.step("boot to marker", _wait_for("fourth boot", lambda: boots() == 4))

        timer.run("pause", lambda: driver.pause(spec.uuid))
        assert driver.get_info(spec.uuid).power_state == PowerState.PAUSED
        timer.run("unpause", lambda: driver.unpause(spec.uuid))
        assert driver.get_info(spec.uuid).power_state == PowerState.RUNNING

        snapshot = os.path.join(workdir, "snapshot.qcow2")
        timer.run("snapshot", lambda: driver.snapshot(spec.uuid, target_path=snapshot))
        info = subprocess.run(
            ["qemu-img", "info", snapshot], check=True, capture_output=True, text=True
        ).stdout
        assert "file format: qcow2" in info
        assert "backing file" not in info
        assert driver.get_info(spec.uuid).power_state == PowerState.RUNNING

        timer.run("suspend", lambda: driver.suspend(spec.uuid))
        assert driver.get_info(spec.uuid).power_state == PowerState.SUSPENDED
        assert _qemu_processes(spec.uuid) == []
        timer.run("resume", lambda: driver.resume(spec.uuid))
        assert driver.get_info(spec.uuid).power_state == PowerState.RUNNING
        # Restored from memory, not booted again.
        time.sleep(1)
        assert boots() == 4
    finally:
        timer.run("destroy", lambda: driver.destroy(spec.uuid))

    assert spec.uuid not in driver.list_instances()
    assert config.domain_name(spec.uuid) not in {d.name() for d in libvirt.listAllDomains(0)}
    assert _qemu_processes(spec.uuid) == []
    assert not os.path.exists(os.path.join(workdir, "instances", spec.uuid))
    assert os.path.exists(base_image)
