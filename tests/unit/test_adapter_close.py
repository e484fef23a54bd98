"""How the stream adapter closes rstream's connections (against a bare TCP peer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from superticks import streams


class _Peer:
    """A TCP server that accepts and reads until the client closes (EOF), or hangs up first."""

    def __init__(self, hang_up: bool) -> None:
        self.hang_up = hang_up
        self.saw_eof = asyncio.Event()
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.hang_up:
            writer.close()
            return
        while await reader.read(1024):
            pass
        self.saw_eof.set()
        writer.close()


@pytest.fixture
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[_Peer]:
    peer = _Peer(hang_up=getattr(request, "param", False))
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    peer.port = server.sockets[0].getsockname()[1]
    async with server:
        yield peer


async def _connected(port: int) -> streams.Client:
    client = streams.Client(
        host="127.0.0.1", port=port, frame_max=streams.FRAME_MAX, heartbeat=60, connection_name="t"
    )
    await client.start()  # the socket and the listener task: no handshake needed
    return client


async def test_closing_a_client_closes_its_socket_and_its_tasks_without_pausing(
    peer: _Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await _connected(peer.port)
    real_sleep = asyncio.sleep

    async def no_pause(delay: float, *args: object) -> None:
        assert delay == 0, f"close paused {delay} s (rstream's close sleeps 0.2 s)"
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", no_pause)

    await client.close()

    monkeypatch.undo()
    async with asyncio.timeout(5):
        await peer.saw_eof.wait()
    assert client._conn is None
    assert not client._tasks
    assert not client.is_connection_alive()


@pytest.mark.parametrize("peer", [True], indirect=True)
async def test_a_client_whose_peer_hung_up_still_closes_its_socket(peer: _Peer) -> None:
    client = await _connected(peer.port)
    writer = client._conn._writer if client._conn is not None else None
    assert writer is not None
    async with asyncio.timeout(5):  # the listener sees the hang-up: rstream marks it dead
        await client._tasks["listener"]
    assert not client.is_connection_alive()

    await client.close()

    assert writer.is_closing()


async def test_closing_twice_is_harmless(peer: _Peer) -> None:
    client = await _connected(peer.port)

    await client.close()
    await client.close()

    assert client._conn is None
