"""The compute driver interface: what the compute agent asks of a hypervisor.

Vocabulary of this layer:

* A **guest** is one virtual machine on this host, the hypervisor's side of
  an **instance** (the compute service's record).  Every operation names it
  by the instance's **uuid**; names the hypervisor uses inside (libvirt's
  domain names, tap numbers, disk paths) never leave the driver.
* A **host** is the machine the driver runs on; ``init_host`` tells the
  driver the name the compute service knows it by.
* The **power state** (:class:`~nimbus.drivers.compute.types.PowerState`) is
  what the hypervisor says a guest does right now.  The compute service's
  ``vm_state`` and ``task_state`` are not the driver's business: the agent
  compares them with ``get_info`` and decides.
* Images arrive as local files: the agent downloads a base image into its
  cache (:mod:`nimbus.compute.imagecache`) and passes its path in the
  :class:`~nimbus.drivers.compute.types.GuestSpec`; a snapshot is written
  to a local file the agent then uploads.  Drivers never talk to the image
  service.
* NICs arrive plugged: the network driver made the bridge and names the
  tap in each :class:`~nimbus.drivers.compute.types.Vif`.

Every operation may raise :class:`~nimbus.exception.DriverError` when the
hypervisor fails; the driver names itself in it.  An operation on a guest
the driver does not know raises
:class:`~nimbus.exception.InstanceNotFound`; one the guest's power state
does not allow raises :class:`~nimbus.exception.InstanceInvalidState`.
Optional operations are guarded by :class:`~nimbus.drivers.compute.types.
Capability`: a driver without the capability raises
:class:`~nimbus.exception.OperationNotSupported`.
"""

from __future__ import annotations

import abc
import time
import types
from collections.abc import Callable, Mapping
from typing import ClassVar

from oslo_config import cfg

from nimbus import exception
from nimbus.drivers._capabilities import CapabilityGuarded
from nimbus.drivers.compute.types import (
    Capability,
    ConsoleEndpoint,
    GuestInfo,
    GuestSpec,
    GuestStats,
    HostResources,
    Vif,
    VolumeConnection,
)

__all__ = ["OPTIONAL_OPERATIONS", "ComputeDriver"]

#: Each optional operation and the capability it needs.
OPTIONAL_OPERATIONS: Mapping[str, Capability] = types.MappingProxyType(
    {
        "pause": Capability.PAUSE,
        "unpause": Capability.PAUSE,
        "suspend": Capability.SUSPEND,
        "resume": Capability.SUSPEND,
        "get_console_output": Capability.CONSOLE_OUTPUT,
        "get_vnc_console": Capability.VNC_CONSOLE,
        "snapshot": Capability.SNAPSHOT,
        "attach_volume": Capability.VOLUME_ATTACH,
        "detach_volume": Capability.VOLUME_ATTACH,
        "attach_interface": Capability.INTERFACE_ATTACH,
        "detach_interface": Capability.INTERFACE_ATTACH,
        "get_diagnostics": Capability.STATS,
        "get_all_stats": Capability.STATS,
    }
)


class ComputeDriver(CapabilityGuarded, abc.ABC):
    """Base class of hypervisor drivers (``nimbus.compute.drivers``).

    :param conf: the nimbus config; drivers read their own option group.
    :param clock: seconds from an arbitrary start (``time.monotonic``),
        for timeouts.
    :param sleep: waits that many seconds (``time.sleep``); tests pass a
        fake that moves their clock.

    One driver instance drives one host.  Several instances in one process
    (the embedded cloud's fake hosts) share nothing.
    """

    #: Optional operations this driver implements.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    optional_operations = OPTIONAL_OPERATIONS

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.conf = conf
        self.clock = clock
        self.sleep = sleep

    # -- the lifecycle core -------------------------------------------------

    @abc.abstractmethod
    def init_host(self, host: str) -> None:
        """Prepare the driver once, when the compute agent starts.

        :param host: the name the compute service knows this host by.
        :raises DriverError: the hypervisor cannot be reached.
        """

    @abc.abstractmethod
    def spawn(self, guest: GuestSpec, *, power_on: bool = True) -> None:
        """Create the guest described by *guest* and start it.

        On success the guest is RUNNING, or SHUTDOWN when *power_on* is
        false.  On failure everything the call made (disks, definitions,
        files) is removed again before the exception propagates, so that
        the instance can be rescheduled elsewhere.

        :param guest: what to create; ``guest.uuid`` names it from now on.
        :param power_on: start the guest once created.
        :raises InstanceExists: a guest with this uuid exists already.
        :raises DriverError: the hypervisor failed; nothing is left behind.
        """

    @abc.abstractmethod
    def destroy(self, uuid: str, *, destroy_disks: bool = True) -> None:
        """Stop the guest at once and remove it; a missing guest is not an error.

        :param uuid: the instance's id.
        :param destroy_disks: remove the guest's local disks and files too;
            false keeps them (for an evacuation on shared storage).
        :raises DriverError: the hypervisor failed.
        """

    @abc.abstractmethod
    def reboot(self, uuid: str, *, hard: bool) -> None:
        """Restart the guest; it ends RUNNING from any state, paused or stopped too.

        :param uuid: the instance's id.
        :param hard: power-cycle instead of asking the guest OS to reboot.
        :raises InstanceNotFound: no such guest.
        :raises DriverError: the hypervisor failed.
        """

    @abc.abstractmethod
    def power_off(self, uuid: str, *, timeout: float) -> None:
        """Stop the guest: ask its OS, then force it off after *timeout* seconds.

        The guest ends SHUTDOWN whatever state it was in; stopping a stopped
        guest does nothing.  A suspended guest's saved memory is discarded.

        :param uuid: the instance's id.
        :param timeout: seconds to wait for a clean shutdown; 0 forces at once.
        :raises InstanceNotFound: no such guest.
        :raises DriverError: the hypervisor failed.
        """

    @abc.abstractmethod
    def power_on(self, uuid: str) -> None:
        """Start a stopped guest; a running guest is left as it is.

        :param uuid: the instance's id.
        :raises InstanceNotFound: no such guest.
        :raises InstanceInvalidState: the guest is paused or suspended (use
            ``unpause`` or ``resume``).
        :raises DriverError: the hypervisor failed.
        """

    @abc.abstractmethod
    def get_info(self, uuid: str) -> GuestInfo:
        """Return the guest's power state and size.

        :param uuid: the instance's id.
        :raises InstanceNotFound: no such guest.
        :raises DriverError: the hypervisor failed.
        """

    @abc.abstractmethod
    def list_instances(self) -> list[str]:
        """Return the uuids of every guest this driver made on this host.

        :raises DriverError: the hypervisor failed.
        """

    @abc.abstractmethod
    def get_available_resource(self) -> HostResources:
        """Return the host's totals and facts, for the scheduler.

        :raises DriverError: the hypervisor failed.
        """

    def instance_exists(self, uuid: str) -> bool:
        """Tell whether the driver knows the guest *uuid*.

        :param uuid: the instance's id.
        """
        return uuid in self.list_instances()

    # -- optional operations, guarded by capabilities -----------------------

    def _unsupported(self, operation: str) -> exception.OperationNotSupported:
        return exception.OperationNotSupported(driver=self.name, operation=operation)

    def pause(self, uuid: str) -> None:
        """Freeze a RUNNING guest's vCPUs; it becomes PAUSED.

        :raises InstanceNotFound: no such guest.
        :raises InstanceInvalidState: the guest is not RUNNING.
        :raises OperationNotSupported: the driver lacks ``PAUSE``.
        """
        raise self._unsupported("pause")

    def unpause(self, uuid: str) -> None:
        """Thaw a PAUSED guest; it becomes RUNNING.

        :raises InstanceNotFound: no such guest.
        :raises InstanceInvalidState: the guest is not PAUSED.
        :raises OperationNotSupported: the driver lacks ``PAUSE``.
        """
        raise self._unsupported("unpause")

    def suspend(self, uuid: str) -> None:
        """Save a RUNNING guest's memory to disk and stop it; it becomes SUSPENDED.

        :raises InstanceNotFound: no such guest.
        :raises InstanceInvalidState: the guest is not RUNNING.
        :raises OperationNotSupported: the driver lacks ``SUSPEND``.
        """
        raise self._unsupported("suspend")

    def resume(self, uuid: str) -> None:
        """Restore a SUSPENDED guest from its saved memory; it becomes RUNNING.

        :raises InstanceNotFound: no such guest.
        :raises InstanceInvalidState: the guest is not SUSPENDED.
        :raises OperationNotSupported: the driver lacks ``SUSPEND``.
        """
        raise self._unsupported("resume")

    def get_console_output(self, uuid: str) -> str:
        """Return what the guest wrote to its serial console so far.

        :returns: the log as text (undecodable bytes replaced); empty when
            the guest wrote nothing yet.
        :raises InstanceNotFound: no such guest.
        :raises OperationNotSupported: the driver lacks ``CONSOLE_OUTPUT``.
        """
        raise self._unsupported("get_console_output")

    def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        """Return where a VNC client reaches the running guest's display.

        :raises InstanceNotFound: no such guest.
        :raises InstanceInvalidState: the guest is not RUNNING or PAUSED.
        :raises OperationNotSupported: the driver lacks ``VNC_CONSOLE``.
        """
        raise self._unsupported("get_vnc_console")

    def snapshot(self, uuid: str, *, target_path: str) -> str:
        """Write the guest's root disk as a standalone image file.

        The guest keeps its power state.  The agent uploads the file and
        removes it.

        :param uuid: the instance's id.
        :param target_path: the local file to write (it must not exist).
        :returns: the file's disk format (``qcow2`` or ``raw``).
        :raises InstanceNotFound: no such guest.
        :raises OperationNotSupported: the driver lacks ``SNAPSHOT``.
        """
        raise self._unsupported("snapshot")

    def attach_volume(
        self, uuid: str, *, connection: VolumeConnection, mountpoint: str | None = None
    ) -> str:
        """Hot-plug a volume into the guest (or into its definition when stopped).

        :param uuid: the instance's id.
        :param connection: how to reach the volume.
        :param mountpoint: the device name asked for (``/dev/vdb``); the
            next free one when ``None``.
        :returns: the device name the volume got (``/dev/vdb``).
        :raises InstanceNotFound: no such guest.
        :raises InstanceInvalidState: the volume is attached already.
        :raises OperationNotSupported: the driver lacks ``VOLUME_ATTACH``.
        """
        raise self._unsupported("attach_volume")

    def detach_volume(self, uuid: str, *, volume_id: str) -> None:
        """Unplug the volume *volume_id* from the guest.

        :raises InstanceNotFound: no such guest.
        :raises NotFound: the volume is not attached to the guest.
        :raises OperationNotSupported: the driver lacks ``VOLUME_ATTACH``.
        """
        raise self._unsupported("detach_volume")

    def attach_interface(self, uuid: str, *, vif: Vif) -> None:
        """Hot-plug a NIC (already plugged on the host side) into the guest.

        :raises InstanceNotFound: no such guest.
        :raises InstanceInvalidState: the port is attached already.
        :raises OperationNotSupported: the driver lacks ``INTERFACE_ATTACH``.
        """
        raise self._unsupported("attach_interface")

    def detach_interface(self, uuid: str, *, port_id: str) -> None:
        """Unplug the NIC of port *port_id* from the guest.

        :raises InstanceNotFound: no such guest.
        :raises NotFound: the port is not attached to the guest.
        :raises OperationNotSupported: the driver lacks ``INTERFACE_ATTACH``.
        """
        raise self._unsupported("detach_interface")

    def get_diagnostics(self, uuid: str) -> GuestStats:
        """Return the guest's counters.

        :raises InstanceNotFound: no such guest.
        :raises OperationNotSupported: the driver lacks ``STATS``.
        """
        raise self._unsupported("get_diagnostics")

    def get_all_stats(self) -> dict[str, GuestStats]:
        """Return the counters of every guest, by uuid, in one sweep.

        :raises OperationNotSupported: the driver lacks ``STATS``.
        """
        raise self._unsupported("get_all_stats")
