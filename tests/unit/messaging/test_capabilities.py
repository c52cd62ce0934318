"""Transports are held to the optional operations they declare."""

from __future__ import annotations

import pytest

from nimbus import exception
from nimbus.messaging import Capability
from nimbus.messaging.base import OPTIONAL_OPERATIONS
from nimbus.messaging.memory import MemoryBroker, MemoryTransport
from nimbus.messaging.rabbit import RabbitTransport


def test_every_optional_operation_has_a_capability() -> None:
    assert dict(OPTIONAL_OPERATIONS) == {"fetch_dead_letters": Capability.DEAD_LETTER}


@pytest.mark.parametrize("transport_class", [MemoryTransport, RabbitTransport])
def test_in_tree_transports_declare_dead_lettering(transport_class: type) -> None:
    assert Capability.DEAD_LETTER in transport_class.capabilities


def test_a_transport_that_drops_a_capability_refuses_its_operation(conf) -> None:
    class NoDeadLetters(MemoryTransport):
        """A memory transport that no longer declares dead-lettering."""

        capabilities = frozenset()

    transport = NoDeadLetters(conf, broker=MemoryBroker())
    try:
        with pytest.raises(exception.OperationNotSupported, match="fetch_dead_letters"):
            transport.fetch_dead_letters()
    finally:
        transport.close()


def test_a_transport_that_declares_the_capability_runs_it(conf) -> None:
    transport = MemoryTransport(conf, broker=MemoryBroker())
    try:
        assert transport.fetch_dead_letters() == []
    finally:
        transport.close()
