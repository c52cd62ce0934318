"""The compute service's processes behind the API: scheduler, conductor and agents.

:class:`ComputeBackend` runs any of them on a cloud's message bus: all of
them in the one process of ``nimbus up`` (on the memory bus), or one part
per process in a split deployment (``nimbus scheduler``, ``nimbus
conductor``, ``nimbus compute-agent``, on RabbitMQ).  :class:`Bus` holds
the small calling conventions every part uses to reach the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nimbus import messaging, registry
from nimbus.context import RequestContext

if TYPE_CHECKING:
    from nimbus.compute.agent import ComputeAgent, HostReporter
    from nimbus.descriptor import Cloud

__all__ = ["PARTS", "Bus", "ComputeBackend"]

LOG = logging.getLogger(__name__)

#: The parts a backend may run.
PARTS = ("scheduler", "conductor", "agent")
DRIVERS = "nimbus.compute.drivers"


class Bus:
    """How the compute service's parts reach each other over one transport."""

    def __init__(self, transport: messaging.Transport) -> None:
        self._transport = transport

    def conductor(self, ctx: RequestContext, method: str, **kwargs: Any) -> None:
        """Cast *method* to the conductor."""
        messaging.RPCClient(self._transport, "conductor").cast(ctx, method, **kwargs)

    def conductor_call(self, ctx: RequestContext, method: str, **kwargs: Any) -> Any:
        """Call *method* on the conductor and return its answer."""
        return messaging.RPCClient(self._transport, "conductor").call(ctx, method, **kwargs)

    def scheduler(self, ctx: RequestContext, method: str, **kwargs: Any) -> Any:
        """Call *method* on the scheduler and return its answer."""
        return messaging.RPCClient(self._transport, "scheduler").call(ctx, method, **kwargs)

    def agent(
        self, ctx: RequestContext, host: str, method: str, *, call: bool = False, **kwargs: Any
    ) -> Any:
        """Cast (or, with *call*, call) *method* on the compute agent of *host*."""
        client = messaging.RPCClient(self._transport, "compute").prepare(server=host)
        if call:
            return client.call(ctx, method, **kwargs)
        client.cast(ctx, method, **kwargs)
        return None


class ComputeBackend:
    """Some or all of the scheduler, the conductor and compute agents, on a cloud's bus.

    :param cloud: the cloud (its config, database and transport).
    :param parts: which of :data:`PARTS` to run.
    :param hosts: the host names of the agents (one agent each, each with a
        driver of its own); ``[DEFAULT] host`` by default.
    """

    def __init__(
        self, cloud: Cloud, parts: Sequence[str] = PARTS, *, hosts: Sequence[str] | None = None
    ) -> None:
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown parts: {', '.join(sorted(unknown))}")
        self._cloud = cloud
        self._parts = tuple(parts)
        self._hosts = list(hosts or [cloud.conf.host])
        self._servers: list[messaging.RPCServer] = []
        self.agents: list[ComputeAgent] = []
        self._reporters: list[HostReporter] = []

    def start(self) -> None:
        """Start serving the parts' topics (agents report and settle their host first)."""
        from nimbus.compute.agent import ComputeAgent, HostReporter
        from nimbus.compute.conductor import Conductor
        from nimbus.compute.scheduler import HostInventory, Scheduler
        from nimbus.compute.scheduling import SchedulerEndpoint
        from nimbus.drivers.compute import ComputeDriver

        cloud = self._cloud
        conf = cloud.conf
        transport = cloud.transport
        bus = Bus(transport)
        if "scheduler" in self._parts:
            scheduler = Scheduler(conf, cloud.database)
            self._serve("scheduler", conf.host, SchedulerEndpoint(scheduler))
        if "conductor" in self._parts:
            conductor = Conductor(
                cloud.database,
                HostInventory(conf, cloud.database),
                scheduler=bus.scheduler,
                agent=bus.agent,
            )
            self._serve("conductor", conf.host, conductor)
        if "agent" in self._parts:
            for host in self._hosts:
                driver = registry.load_driver(
                    DRIVERS, conf.compute.driver, conf, expected=ComputeDriver
                )
                agent = ComputeAgent(
                    conf,
                    host,
                    driver,
                    conductor=bus.conductor_call,
                    conductor_cast=bus.conductor,
                )
                self._serve("compute", host, agent)
                self.agents.append(agent)
            for agent in self.agents:
                reporter = HostReporter(conf, agent)
                reporter.begin()
                self._reporters.append(reporter)
        LOG.info("Compute %s serving (hosts: %s)", ", ".join(self._parts), ", ".join(self._hosts))

    def _serve(self, topic: str, server: str, endpoint: object) -> None:
        rpc = messaging.RPCServer(self._cloud.transport, topic, server, [endpoint])
        rpc.start()
        self._servers.append(rpc)

    def stop(self) -> None:
        """Stop the agents' reports and every RPC server."""
        for reporter in self._reporters:
            reporter.end()
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
