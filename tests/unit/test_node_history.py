"""What a process learns of the nodes (the last that answered, the silent ones) and how a caller
makes it forget: the next connection then tries the nodes in their configured order."""

from __future__ import annotations

from superticks import streams
from superticks.settings import ConnectionSettings


def _order(settings: ConnectionSettings) -> list[int]:
    return [address.port for _, address in streams._node_order(settings)]


def test_a_connection_starts_at_the_node_that_answered_last_and_tries_silent_ones_last() -> None:
    settings = ConnectionSettings()
    streams.forget_nodes(settings)
    first, second, third = (address.port for address in settings.nodes)

    streams._answered(settings, 1)
    streams.mark_silent(settings.nodes[2])

    assert _order(settings) == [second, first, third]
    streams.forget_nodes(settings)


def test_forgetting_the_nodes_restores_their_configured_order_and_full_timeouts() -> None:
    settings = ConnectionSettings()
    streams._answered(settings, 2)
    streams.mark_silent(settings.nodes[0])

    streams.forget_nodes(settings)

    assert _order(settings) == [address.port for address in settings.nodes]
    assert not any(streams.is_silent(address) for address in settings.nodes)
