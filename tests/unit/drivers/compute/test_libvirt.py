"""The ``libvirt`` compute driver against the contract, on libvirt's ``test:///default``.

The test hypervisor runs in-process: domains change state but nothing
boots, and it cannot hot-plug devices nor assign VNC ports; those tests are
skipped with the reason.  Disks are made by the real ``qemu-img``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg

from nimbus import exception, registry
from nimbus.drivers.compute import ComputeDriver, PowerState
from nimbus.drivers.compute.libvirt import config
from nimbus.drivers.compute.libvirt.driver import LibvirtDriver
from nimbus.testing import services
from nimbus.testing.compute import ComputeDriverContract, make_guest_spec

TEST_URI = "test:///default"


@pytest.fixture(scope="module")
def libvirt() -> Any:
    module = services.require_module(
        "libvirt", "install libvirt-dev and pkg-config, then the nimbus-cloud[libvirt] extra"
    )
    # The test driver's state lives while a connection is open: keep one for
    # the module so that every driver sees the same host.
    conn = module.open(TEST_URI)
    yield module
    conn.close()


@pytest.fixture(scope="module")
def qemu_img() -> str:
    return services.require_program("qemu-img", "tools/install-system-packages.sh installs it")


class Connection:
    """A libvirt connection whose next domain start can be made to fail."""

    def __init__(self, conn: Any, libvirt: Any) -> None:
        self._conn = conn
        self._libvirt = libvirt
        self.fail_next_start = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def defineXML(self, xml: str) -> Any:  # noqa: N802 - libvirt's name
        domain = self._conn.defineXML(xml)
        if not self.fail_next_start:
            return domain
        self.fail_next_start = False
        return FailingDomain(domain, self._libvirt)


class FailingDomain:
    """A domain whose start fails, as QEMU refusing the definition would."""

    def __init__(self, domain: Any, libvirt: Any) -> None:
        self._domain = domain
        self._libvirt = libvirt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._domain, name)

    def create(self) -> None:
        raise self._libvirt.libvirtError("injected: qemu refused to start")


@pytest.fixture
def libvirt_conf(conf: cfg.ConfigOpts, tmp_path: Path) -> cfg.ConfigOpts:
    from nimbus.conf import compute_drivers

    compute_drivers.register_opts(conf)
    conf.set_override("connection_uri", TEST_URI, group="libvirt")
    conf.set_override("instances_path", str(tmp_path / "instances"), group="libvirt")
    conf.set_override("graceful_shutdown_timeout", 5, group="libvirt")
    return conf


@pytest.fixture
def connection(libvirt: Any) -> Connection:
    return Connection(libvirt.open(TEST_URI), libvirt)


@pytest.fixture
def base_image(tmp_path: Path, qemu_img: str) -> str:
    path = tmp_path / "base.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return str(path)


def _no_unsupported(reason: str) -> Callable[..., None]:
    def skipped(self: Any, *args: Any, **kwargs: Any) -> None:
        pytest.skip(reason)

    return skipped


_NO_HOTPLUG = "libvirt's test driver has no device attach/detach"


class TestLibvirtDriver(ComputeDriverContract):
    @pytest.fixture
    def driver(self, libvirt_conf: cfg.ConfigOpts, connection: Connection) -> LibvirtDriver:
        return LibvirtDriver(libvirt_conf, open_connection=lambda uri: connection)

    @pytest.fixture
    def guest_spec(self, base_image: str) -> Callable[..., Any]:
        return lambda **fields: make_guest_spec(**{"image_path": base_image, **fields})

    @pytest.fixture
    def break_spawn(self, connection: Connection) -> Callable[[], None]:
        def arm() -> None:
            connection.fail_next_start = True

        return arm

    @pytest.fixture
    def leftovers(
        self, libvirt: Any, connection: Connection, libvirt_conf: cfg.ConfigOpts
    ) -> Callable[[str], set[str]]:
        def held(uuid: str) -> set[str]:
            found = set()
            directory = os.path.join(libvirt_conf.libvirt.instances_path, uuid)
            if os.path.exists(directory):
                found.add(directory)
            names = {domain.name() for domain in connection.listAllDomains(0)}
            if config.domain_name(uuid) in names:
                found.add(f"domain {config.domain_name(uuid)}")
            return found

        return held

    test_attach_and_detach_a_volume = _no_unsupported(_NO_HOTPLUG)
    test_attaching_a_volume_twice_is_refused = _no_unsupported(_NO_HOTPLUG)
    test_attach_and_detach_an_interface = _no_unsupported(_NO_HOTPLUG)
    test_vnc_console_of_a_running_guest = _no_unsupported(
        "libvirt's test driver assigns no VNC port (the live XML keeps port -1)"
    )


# -- the driver's own behaviour --------------------------------------------------


@pytest.fixture
def driver(libvirt_conf: cfg.ConfigOpts, connection: Connection) -> LibvirtDriver:
    driver = LibvirtDriver(libvirt_conf, open_connection=lambda uri: connection)
    driver.init_host("libvirt-host")
    return driver


def test_loads_through_its_entry_point(libvirt_conf: cfg.ConfigOpts, libvirt: Any) -> None:
    loaded = registry.load_driver(
        "nimbus.compute.drivers", "libvirt", libvirt_conf, expected=ComputeDriver
    )
    assert isinstance(loaded, LibvirtDriver)


def test_spawn_makes_an_overlay_on_the_base_image(
    driver: LibvirtDriver, base_image: str, qemu_img: str, libvirt_conf: cfg.ConfigOpts
) -> None:
    spec = make_guest_spec(image_path=base_image, root_gb=2, ephemeral_gb=1)
    driver.spawn(spec)
    directory = Path(libvirt_conf.libvirt.instances_path, spec.uuid)
    info = subprocess.run(
        [qemu_img, "info", "--output=json", str(directory / "disk")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert f'"backing-filename": "{base_image}"' in info
    assert f'"virtual-size": {2 * 1024**3}' in info
    assert (directory / "disk.eph0").is_file()
    driver.destroy(spec.uuid)
    assert not directory.exists()
    # The base image is the cache's: never touched.
    assert os.path.exists(base_image)


def test_domain_is_named_after_the_uuid_and_other_domains_are_not_listed(
    driver: LibvirtDriver, connection: Connection, base_image: str
) -> None:
    spec = make_guest_spec(image_path=base_image)
    driver.spawn(spec)
    try:
        domain = connection.lookupByUUIDString(spec.uuid)
        assert domain.name() == f"instance-{spec.uuid}"
        # test:///default ships a running domain named "test": not ours.
        assert "test" in {d.name() for d in connection.listAllDomains(0)}
        assert connection.lookupByName("test").UUIDString() not in driver.list_instances()
    finally:
        driver.destroy(spec.uuid)


def test_foreign_domain_is_not_found(driver: LibvirtDriver, connection: Connection) -> None:
    foreign = connection.lookupByName("test").UUIDString()
    with pytest.raises(exception.InstanceNotFound):
        driver.get_info(foreign)
    driver.destroy(foreign)
    assert connection.lookupByName("test").isActive()


def test_console_output_reads_the_log_file(
    driver: LibvirtDriver, base_image: str, libvirt_conf: cfg.ConfigOpts
) -> None:
    spec = make_guest_spec(image_path=base_image)
    driver.spawn(spec)
    try:
        assert driver.get_console_output(spec.uuid) == ""
        log = Path(libvirt_conf.libvirt.instances_path, spec.uuid, "console.log")
        log.write_bytes(b"x" * 200_000 + b"\nboot ok \xff\n")
        output = driver.get_console_output(spec.uuid)
        assert len(output.encode()) <= 100 * 1024 + 2
        assert output.endswith("boot ok \ufffd\n")
    finally:
        driver.destroy(spec.uuid)


def test_qemu_img_failure_is_a_driver_error_and_leaves_nothing(
    libvirt_conf: cfg.ConfigOpts, connection: Connection, tmp_path: Path
) -> None:
    driver = LibvirtDriver(libvirt_conf, open_connection=lambda uri: connection)
    driver.init_host("libvirt-host")
    spec = make_guest_spec(image_path=str(tmp_path / "missing.qcow2"))
    with pytest.raises(exception.DriverError) as info:
        driver.spawn(spec)
    assert "qemu-img" in str(info.value)
    assert info.value.kwargs["driver"] == "libvirt"
    assert not Path(libvirt_conf.libvirt.instances_path, spec.uuid).exists()


def test_libvirt_errors_name_the_driver(libvirt_conf: cfg.ConfigOpts, libvirt: Any) -> None:
    libvirt_conf.set_override("connection_uri", "test:///no/such/file.xml", group="libvirt")
    driver = LibvirtDriver(libvirt_conf)
    with pytest.raises(exception.DriverError) as info:
        driver.init_host("libvirt-host")
    assert info.value.kwargs["driver"] == "libvirt"
    assert "test:///no/such/file.xml" in str(info.value)


def test_libvirt_prints_nothing_to_stderr(
    driver: LibvirtDriver, capfd: pytest.CaptureFixture[str]
) -> None:
    # Without an error handler libvirt prints "libvirt: ... error" for each.
    capfd.readouterr()
    with pytest.raises(exception.InstanceNotFound):
        driver.get_info("9d3c7e2a-0000-4000-8000-000000000000")
    with pytest.raises(exception.InstanceNotFound):
        driver.pause("9d3c7e2a-0000-4000-8000-000000000000")
    assert capfd.readouterr().err == ""


def test_soft_reboot_forces_a_guest_that_ignores_shutdown(
    libvirt_conf: cfg.ConfigOpts, connection: Connection, base_image: str
) -> None:
    # The test driver obeys shutdown(); a busybox guest does not.
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    driver = LibvirtDriver(
        libvirt_conf, open_connection=lambda uri: connection, clock=lambda: now[0], sleep=sleep
    )
    driver.init_host("libvirt-host")
    spec = make_guest_spec(image_path=base_image)
    driver.spawn(spec)
    domain = connection.lookupByUUIDString(spec.uuid)
    calls: list[str] = []

    class Stubborn:
        def __getattr__(self, name: str) -> Any:
            return getattr(domain, name)

        def shutdown(self) -> None:
            calls.append("shutdown")

        def destroy(self) -> None:
            calls.append("destroy")
            domain.destroy()

    try:
        driver._stop(Stubborn(), spec.uuid, 5)
        assert calls == ["shutdown", "destroy"]
        assert now[0] == pytest.approx(5.0)
        assert driver.get_info(spec.uuid).power_state == PowerState.SHUTDOWN
    finally:
        driver.destroy(spec.uuid)


def test_resources_come_from_the_host(driver: LibvirtDriver, connection: Connection) -> None:
    res = driver.get_available_resource()
    info = connection.getInfo()
    assert (res.vcpus, res.memory_mb) == (info[2], info[1])
    assert res.hypervisor_type == "TEST"
    assert res.hypervisor_hostname == connection.getHostname()
    assert ("i686", "test", "hvm") in res.supported_instances


def test_snapshot_is_a_standalone_qcow2(
    driver: LibvirtDriver, base_image: str, qemu_img: str, tmp_path: Path
) -> None:
    spec = make_guest_spec(image_path=base_image)
    driver.spawn(spec)
    try:
        target = tmp_path / "snap.qcow2"
        assert driver.snapshot(spec.uuid, target_path=str(target)) == "qcow2"
        info = subprocess.run(
            [qemu_img, "info", "--output=json", str(target)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert '"format": "qcow2"' in info
        assert "backing-filename" not in info
        with pytest.raises(exception.DriverError):
            driver.snapshot(spec.uuid, target_path=str(target))
    finally:
        driver.destroy(spec.uuid)


def test_qemu_img_runs_with_the_configured_program(
    libvirt_conf: cfg.ConfigOpts, connection: Connection, tmp_path: Path
) -> None:
    ran: list[Sequence[str]] = []

    def run(argv: Sequence[str]) -> None:
        ran.append(list(argv))
        Path(argv[-2] if argv[-1].endswith("G") else argv[-1]).touch()

    libvirt_conf.set_override("qemu_img", "/opt/qemu/bin/qemu-img", group="libvirt")
    driver = LibvirtDriver(libvirt_conf, open_connection=lambda uri: connection, run_command=run)
    driver.init_host("libvirt-host")
    spec = make_guest_spec(image_path="/cache/base.raw", image_format="raw", root_gb=0)
    driver.spawn(spec, power_on=False)
    try:
        disk = os.path.join(libvirt_conf.libvirt.instances_path, spec.uuid, "disk")
        assert ran == [
            ["/opt/qemu/bin/qemu-img", "create", "-f", "qcow2", "-b", "/cache/base.raw", "-F",
             "raw", disk],
        ]  # fmt: skip
    finally:
        driver.destroy(spec.uuid)
