"""The compute agent: one per hypervisor host, driving its compute driver.

It serves the ``compute`` topic for its host (``compute.<host>``), builds
and acts on guests through the driver, and tells the conductor what
happened; it never touches the database.  It beats its heart and reports
its host's resources every ``[compute] report_interval`` seconds, and on
start-up it settles instances left in a task by an agent that died.
"""

from __future__ import annotations

import datetime
import http.client
import json
import logging
import os
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.compute import states
from nimbus.compute.states import Task
from nimbus.context import RequestContext
from nimbus.drivers.compute import ComputeDriver, GuestSpec, PowerState

__all__ = ["BINARY", "ComputeAgent", "HostReporter"]

LOG = logging.getLogger(__name__)

#: The service name agents report under (Nova's ``nova-compute``).
BINARY = "nimbus-compute"

#: What each action's method does to the guest, and the states it ends in.
_ACTIONS: Mapping[str, tuple[str, PowerState]] = {
    "start": (states.ACTIVE, PowerState.RUNNING),
    "stop": (states.STOPPED, PowerState.SHUTDOWN),
    "reboot": (states.ACTIVE, PowerState.RUNNING),
    "pause": (states.PAUSED, PowerState.PAUSED),
    "unpause": (states.ACTIVE, PowerState.RUNNING),
    "suspend": (states.SUSPENDED, PowerState.SUSPENDED),
    "resume": (states.ACTIVE, PowerState.RUNNING),
}
_TASKS = {
    "start": (Task.POWERING_ON,),
    "stop": (Task.POWERING_OFF,),
    "reboot": (Task.REBOOTING, Task.REBOOTING_HARD),
    "pause": (Task.PAUSING,),
    "unpause": (Task.UNPAUSING,),
    "suspend": (Task.SUSPENDING,),
    "resume": (Task.RESUMING,),
}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat()


class ComputeAgent:
    """RPC endpoint of ``compute.<host>``, over one compute driver.

    :param conf: the nimbus config (``[compute]``).
    :param host: the host name this agent serves.
    :param driver: the hypervisor driver.
    :param conductor: calls the conductor: ``conductor(ctx, method, **kwargs)``.
    :param conductor_cast: casts to the conductor (for work that takes long).
    :param images: reaches the image API (snapshots); made from *conf* by default.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        host: str,
        driver: ComputeDriver,
        *,
        conductor: Callable[..., Any],
        conductor_cast: Callable[..., Any],
        images: ImageClient | None = None,
    ) -> None:
        self._conf = conf
        self._images = images or ImageClient(conf)
        self.host = host
        self._driver = driver
        self._conductor = conductor
        self._conductor_cast = conductor_cast

    def init_host(self) -> None:
        """Let the driver set its host up (before the first report)."""
        self._driver.init_host(self.host)

    def report(self) -> None:
        """Send a heartbeat and the host's resources to the conductor."""
        found = self._driver.get_available_resource()
        resources = {
            "hypervisor_hostname": found.hypervisor_hostname,
            "hypervisor_type": found.hypervisor_type,
            "hypervisor_version": found.hypervisor_version,
            "vcpus": found.vcpus,
            "memory_mb": found.memory_mb,
            "local_gb": found.local_gb,
            "cpu_info": dict(found.cpu_info),
            "supported_instances": [list(s) for s in found.supported_instances],
            "disk_available_least": found.disk_available_least,
        }
        self._conductor(
            RequestContext.admin(), "report", host=self.host, binary=BINARY, resources=resources
        )

    def reconcile(self) -> None:
        """Settle instances an earlier agent left in a task, and name unknown guests.

        A build that was under way fails (its claim is given back when the
        server is deleted); an action that was under way ends in the state
        the guest is really in; a delete is finished.
        """
        ctx = RequestContext.admin()
        known = self._conductor(ctx, "instances_on_host", host=self.host)
        guests = set(self._driver.list_instances())
        for instance in known:
            self._settle(ctx, instance, instance["uuid"] in guests)
        for stray in sorted(guests - {i["uuid"] for i in known}):
            LOG.warning("Host %s has a guest %s that no server of the cloud owns", self.host, stray)

    def _settle(self, ctx: RequestContext, instance: Mapping[str, Any], exists: bool) -> None:
        task = instance["task_state"]
        uuid = instance["uuid"]
        if task is None:
            return
        if task == Task.DELETING:
            self.terminate_instance(ctx, uuid)
        elif task in (Task.NETWORKING, Task.SPAWNING, Task.SCHEDULING):
            if exists:
                self._driver.destroy(uuid)
            self._conductor(
                ctx,
                "instance_update",
                instance_uuid=uuid,
                values={"vm_state": states.ERROR, "task_state": None},
                expected_tasks=[task],
                fault=f"The build was interrupted: the compute agent of {self.host} stopped",
            )
        else:
            power = self._power_state(uuid) if exists else PowerState.NOSTATE
            vm_state = {
                PowerState.RUNNING: states.ACTIVE,
                PowerState.PAUSED: states.PAUSED,
                PowerState.SUSPENDED: states.SUSPENDED,
                PowerState.SHUTDOWN: states.STOPPED,
            }.get(power, states.ERROR)
            self._conductor(
                ctx,
                "instance_update",
                instance_uuid=uuid,
                values={"vm_state": vm_state, "task_state": None, "power_state": int(power)},
                expected_tasks=[task],
                fault=None if vm_state != states.ERROR else "The guest is gone",
            )

    def _power_state(self, uuid: str) -> PowerState:
        try:
            return self._driver.get_info(uuid).power_state
        except exception.NotFound:
            return PowerState.NOSTATE

    # -- builds ------------------------------------------------------------------

    def build_and_run_instance(
        self,
        ctx: RequestContext,
        instance_uuid: str,
        alternates: Sequence[Mapping[str, str]],
        spec: Mapping[str, Any],
    ) -> None:
        """Build a guest for an instance placed here; on failure, try an alternate."""
        instance = self._conductor(ctx, "instance_get", instance_uuid=instance_uuid)
        if instance is None or instance["deleted"] or instance["host"] != self.host:
            return
        if not self._conductor(
            ctx,
            "instance_update",
            instance_uuid=instance_uuid,
            values={"task_state": Task.SPAWNING},
            expected_tasks=[Task.NETWORKING],
        ):
            return  # a redelivered build, or a server deleted meanwhile
        try:
            self._driver.spawn(_guest(instance))
        except Exception as ex:  # noqa: BLE001 - any driver failure reschedules
            LOG.warning("Build of %s failed on %s: %s", instance_uuid, self.host, ex)
            self._cleanup(instance_uuid)
            self._conductor_cast(
                ctx,
                "build_failed",
                instance_uuid=instance_uuid,
                host=self.host,
                reason=str(ex) or type(ex).__name__,
                alternates=list(alternates),
                spec=dict(spec),
            )
            return
        done = self._conductor(
            ctx,
            "instance_update",
            instance_uuid=instance_uuid,
            values={
                "vm_state": states.ACTIVE,
                "task_state": None,
                "power_state": int(PowerState.RUNNING),
                "launched_at": _now(),
            },
            expected_tasks=[Task.SPAWNING],
            event="compute_build_and_run_instance",
        )
        if not done:
            # Deleted while it was being built: the delete found no guest yet.
            self._cleanup(instance_uuid)
            self._conductor(ctx, "instance_destroyed", instance_uuid=instance_uuid)

    def _cleanup(self, instance_uuid: str) -> None:
        try:
            self._driver.destroy(instance_uuid)
        except Exception:  # noqa: BLE001 - reported; the guest may be half made
            LOG.exception("Could not clean up guest %s on %s", instance_uuid, self.host)

    # -- actions -----------------------------------------------------------------

    def _act(self, ctx: RequestContext, instance_uuid: str, method: str,
             run: Callable[[], None]) -> None:  # fmt: skip
        vm_state, power = _ACTIONS[method]
        expected = list(_TASKS[method])
        try:
            run()
        except Exception as ex:  # noqa: BLE001 - the task ends, with a fault
            LOG.warning("%s of %s failed on %s: %s", method, instance_uuid, self.host, ex)
            actual = self._power_state(instance_uuid)
            self._conductor(
                ctx,
                "instance_update",
                instance_uuid=instance_uuid,
                values={"task_state": None, "power_state": int(actual)},
                expected_tasks=expected,
                event=f"compute_{method}_instance",
                fault=f"{method} failed: {ex}",
            )
            return
        self._conductor(
            ctx,
            "instance_update",
            instance_uuid=instance_uuid,
            values={"vm_state": vm_state, "task_state": None, "power_state": int(power)},
            expected_tasks=expected,
            event=f"compute_{method}_instance",
        )

    def start_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Power a stopped guest on."""
        self._act(ctx, instance_uuid, "start", lambda: self._driver.power_on(instance_uuid))

    def stop_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Shut a guest down (forced after ``[compute] shutdown_timeout``)."""
        timeout = float(self._conf.compute.shutdown_timeout)
        self._act(
            ctx,
            instance_uuid,
            "stop",
            lambda: self._driver.power_off(instance_uuid, timeout=timeout),
        )

    def reboot_instance(self, ctx: RequestContext, instance_uuid: str, hard: bool) -> None:
        """Reboot a guest (hard: from any state)."""
        self._act(
            ctx, instance_uuid, "reboot", lambda: self._driver.reboot(instance_uuid, hard=hard)
        )

    def pause_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Freeze a guest's vCPUs."""
        self._act(ctx, instance_uuid, "pause", lambda: self._driver.pause(instance_uuid))

    def unpause_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Thaw a paused guest."""
        self._act(ctx, instance_uuid, "unpause", lambda: self._driver.unpause(instance_uuid))

    def suspend_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Save a guest's memory to disk and stop it."""
        self._act(ctx, instance_uuid, "suspend", lambda: self._driver.suspend(instance_uuid))

    def resume_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Bring a suspended guest back."""
        self._act(ctx, instance_uuid, "resume", lambda: self._driver.resume(instance_uuid))

    def rebuild_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Make a guest's disk anew from its (new) image; a stopped guest stays stopped."""
        instance = self._conductor(ctx, "instance_get", instance_uuid=instance_uuid)
        if instance is None or instance["task_state"] != Task.REBUILDING:
            return
        stopped = instance["vm_state"] == states.STOPPED
        try:
            self._driver.destroy(instance_uuid)
            self._driver.spawn(_guest(instance), power_on=not stopped)
        except Exception as ex:  # noqa: BLE001 - the server ends in error, with why
            LOG.warning("Rebuild of %s failed on %s: %s", instance_uuid, self.host, ex)
            self._cleanup(instance_uuid)
            self._conductor(
                ctx,
                "instance_update",
                instance_uuid=instance_uuid,
                values={"vm_state": states.ERROR, "task_state": None, "power_state": 0},
                expected_tasks=[Task.REBUILDING],
                event="compute_rebuild_instance",
                fault=f"rebuild failed: {ex}",
            )
            return
        power = PowerState.SHUTDOWN if stopped else PowerState.RUNNING
        self._conductor(
            ctx,
            "instance_update",
            instance_uuid=instance_uuid,
            values={
                "vm_state": states.STOPPED if stopped else states.ACTIVE,
                "task_state": None,
                "power_state": int(power),
                "launched_at": _now(),
            },
            expected_tasks=[Task.REBUILDING],
            event="compute_rebuild_instance",
        )

    def snapshot_instance(self, ctx: RequestContext, instance_uuid: str, image_id: str) -> None:
        """Copy a guest's disk into the queued image *image_id*, through the image API."""
        fault = None
        try:
            with tempfile.TemporaryDirectory(prefix="snapshot-", dir=self._scratch()) as scratch:
                path = os.path.join(scratch, "disk")
                disk_format = self._driver.snapshot(instance_uuid, target_path=path)
                self._images.upload(ctx, image_id, path, disk_format)
        except Exception as ex:  # noqa: BLE001 - the image goes, the task ends with a fault
            LOG.warning("Snapshot of %s failed on %s: %s", instance_uuid, self.host, ex)
            fault = f"snapshot failed: {ex}"
            self._images.delete(ctx, image_id)
        self._conductor(
            ctx,
            "instance_update",
            instance_uuid=instance_uuid,
            values={"task_state": None},
            expected_tasks=[Task.IMAGE_SNAPSHOT, Task.IMAGE_UPLOADING],
            event="compute_snapshot_instance",
            fault=fault,
        )

    def _scratch(self) -> str:
        path = os.path.join(self._conf.state_path, "snapshots")
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def terminate_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Destroy a guest (there or not) and tell the conductor it is gone."""
        self._driver.destroy(instance_uuid)
        self._conductor(ctx, "instance_destroyed", instance_uuid=instance_uuid)

    def get_console_output(self, ctx: RequestContext, instance_uuid: str) -> str:
        """Return a guest's console log."""
        return self._driver.get_console_output(instance_uuid)


class HostReporter:
    """Starts an agent's host and keeps reporting it; not on the bus.

    :param conf: the nimbus config (``[compute] report_interval``).
    :param agent: the agent whose host it reports.
    """

    def __init__(self, conf: cfg.ConfigOpts, agent: ComputeAgent) -> None:
        self._conf = conf
        self._agent = agent
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        """Start the driver, report the host, settle what was left, then keep reporting."""
        self._agent.init_host()
        self._agent.report()
        self._agent.reconcile()
        self._thread = threading.Thread(
            target=self._loop, name=f"compute-report-{self._agent.host}", daemon=True
        )
        self._thread.start()

    def end(self) -> None:
        """Stop reporting."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        interval = float(self._conf.compute.report_interval)
        while not self._stopping.wait(interval):
            try:
                self._agent.report()
            except Exception:  # noqa: BLE001 - the next beat tries again
                LOG.exception("Compute agent %s could not report", self._agent.host)


class ImageClient:
    """The image API as a compute agent uses it: over HTTP, with the caller's token.

    An agent has no database; a snapshot's data goes where any client's
    goes, to ``[api] service_endpoints`` ``image`` or the cloud's URL.

    :param conf: the nimbus config (where the image API is).
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self._conf = conf

    def _base(self) -> urllib.parse.SplitResult:
        from nimbus.descriptor import service_url

        return urllib.parse.urlsplit(service_url(self._conf, "image"))

    def _request(
        self, ctx: RequestContext, method: str, path: str, *, body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> int:  # fmt: skip
        base = self._base()
        connection_class = (
            http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
        )
        conn = connection_class(base.netloc, timeout=600)
        try:
            sent = {"X-Auth-Token": ctx.auth_token or "", **(headers or {})}
            conn.request(method, base.path.rstrip("/") + path, body=body, headers=sent)
            resp = conn.getresponse()
            answer = resp.read()
            if resp.status >= 400:
                raise exception.DriverError(
                    driver="image API",
                    reason=f"{method} {path} answered {resp.status}: {answer[:200]!r}",
                )
            return resp.status
        finally:
            conn.close()

    def upload(self, ctx: RequestContext, image_id: str, path: str, disk_format: str) -> None:
        """Set the image's formats, then send the file as its data."""
        patch = json.dumps(
            [
                {"op": "add", "path": "/disk_format", "value": disk_format},
                {"op": "add", "path": "/container_format", "value": "bare"},
            ]
        )
        self._request(
            ctx,
            "PATCH",
            f"/v2/images/{image_id}",
            body=patch,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        )
        with open(path, "rb") as data:
            self._request(
                ctx,
                "PUT",
                f"/v2/images/{image_id}/file",
                body=data,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(os.fstat(data.fileno()).st_size),
                },
            )

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Delete an image (a snapshot that failed); a failure is only logged."""
        try:
            self._request(ctx, "DELETE", f"/v2/images/{image_id}")
        except Exception as ex:  # noqa: BLE001 - the snapshot failed already
            LOG.warning("Could not delete the failed snapshot image %s: %s", image_id, ex)


def _guest(instance: Mapping[str, Any]) -> GuestSpec:
    flavor = instance["flavor"]
    return GuestSpec(
        uuid=instance["uuid"],
        name=instance["name"],
        memory_mb=int(flavor["memory_mb"]),
        vcpus=int(flavor["vcpus"]),
        root_gb=int(flavor["root_gb"]),
        ephemeral_gb=int(flavor.get("ephemeral_gb") or 0),
        swap_mb=int(flavor.get("swap") or 0),
        user_data=instance["user_data"].encode() if instance.get("user_data") else None,
        metadata=dict(instance.get("metadata") or {}),
        key_data=instance.get("key_data"),
    )
