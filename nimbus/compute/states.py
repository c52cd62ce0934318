"""Server states, with Nova's values, and the API ``status`` they add up to.

``vm_state`` is where a server rests, ``task_state`` what is being done to
it (``None`` when nothing), ``power_state`` what the hypervisor last said
(:class:`~nimbus.drivers.compute.types.PowerState`).  The API shows one
``status`` made of the first two (:func:`status`).
"""

from __future__ import annotations

__all__ = [
    "ACTIVE",
    "BUILDING",
    "DELETED",
    "ERROR",
    "PAUSED",
    "STOPPED",
    "SUSPENDED",
    "Task",
    "status",
    "vm_states_for_status",
]

# vm_state values (Nova's nova/compute/vm_states.py).
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"


class Task:
    """task_state values (Nova's nova/compute/task_states.py) that nimbus uses."""

    SCHEDULING = "scheduling"
    NETWORKING = "networking"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    SPAWNING = "spawning"
    IMAGE_SNAPSHOT = "image_snapshot"
    IMAGE_UPLOADING = "image_uploading"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    DELETING = "deleting"
    REBUILDING = "rebuilding"


_STATUS = {
    ACTIVE: "ACTIVE",
    BUILDING: "BUILD",
    STOPPED: "SHUTOFF",
    RESIZED: "VERIFY_RESIZE",
    PAUSED: "PAUSED",
    SUSPENDED: "SUSPENDED",
    RESCUED: "RESCUE",
    ERROR: "ERROR",
    DELETED: "DELETED",
    SOFT_DELETED: "SOFT_DELETED",
    SHELVED: "SHELVED",
    SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
}

#: task_states that refine an ACTIVE server's status.
_ACTIVE_TASKS = {
    Task.REBOOTING: "REBOOT",
    "reboot_pending": "REBOOT",
    "reboot_started": "REBOOT",
    Task.REBOOTING_HARD: "HARD_REBOOT",
    "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
    "updating_password": "PASSWORD",
    "rebuilding": "REBUILD",
    "rebuild_block_device_mapping": "REBUILD",
    "rebuild_spawning": "REBUILD",
    "migrating": "MIGRATING",
    "resize_prep": "RESIZE",
    "resize_migrating": "RESIZE",
    "resize_migrated": "RESIZE",
    "resize_finish": "RESIZE",
}


def status(vm_state: str, task_state: str | None) -> str:
    """Return the API status of a server in *vm_state* doing *task_state* (Nova's map)."""
    if vm_state == ACTIVE and task_state in _ACTIVE_TASKS:
        return _ACTIVE_TASKS[task_state]
    if vm_state == STOPPED and task_state and task_state.startswith("resize"):
        return "RESIZE"
    if vm_state in (STOPPED, ERROR) and task_state and task_state.startswith("rebuild"):
        return "REBUILD"
    if vm_state == RESIZED and task_state == "resize_reverting":
        return "REVERT_RESIZE"
    if vm_state == PAUSED and task_state == "migrating":
        return "MIGRATING"
    return _STATUS.get(vm_state, "UNKNOWN")


def vm_states_for_status(wanted: str) -> set[str]:
    """Return the vm_states a ``status`` filter of a server list means.

    :raises ValueError: *wanted* is not a status Nova knows.
    """
    wanted = wanted.upper()
    found = {vm for vm, shown in _STATUS.items() if shown == wanted}
    if wanted in ("REBOOT", "HARD_REBOOT", "PASSWORD", "REBUILD", "MIGRATING", "RESIZE"):
        found.add(ACTIVE)
    if not found:
        raise ValueError(wanted)
    return found
