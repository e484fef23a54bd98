"""A publish write on a socket that closed under the publisher (before rstream noticed) is a
lost connection, reported once, never an exception from the transport."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from superticks.errors import ConnectionFailed
from superticks.settings import ConnectionSettings
from superticks.streams import PartitionPublisher


async def _write_after_close() -> list[str]:
    lost: list[str] = []
    ours, theirs = socket.socketpair()
    try:
        _, writer = await asyncio.open_connection(sock=ours)
        link = PartitionPublisher(
            ConnectionSettings(), "s", "ref", lambda _ids: None, lambda _e: None, lost.append
        )
        link._writer, link.connected = writer, True  # as start() leaves them
        writer.close()  # the socket goes away before rstream reports it
        with pytest.raises(ConnectionFailed, match="ref lost its connection"):
            link.write(b"head", b"records")
        with pytest.raises(ConnectionFailed):
            link.write(b"frame")
    finally:
        theirs.close()
    return lost


def test_a_write_on_a_closed_socket_is_a_lost_connection_under_uvloop() -> None:
    lost = uvloop.run(_write_after_close())
    assert len(lost) == 1
    assert "socket closed while writing" in lost[0]
