"""Silent connections. One that went silent for 2 heartbeats or more and then spoke again: its
node's side was blocked, the broker drops it as it wakes and activates another member, so the
chunks it sent as it woke are not delivered (the subscription is made again). And our side of
an idle connection is never silent for a whole interval: heartbeats go out 3 times per
interval. What the broker does is in tests/integration; here the silences are set by hand."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace

from rstream import schema
from rstream.connection import Connection

from superticks.settings import ConnectionSettings
from superticks.streams import (
    Chunk,
    Offset,
    Subscription,
    _heartbeat_often,
    _quiet,
    _read_frame,
)

_HEARTBEAT = b"\x00\x17\x00\x01"  # a Heartbeat frame: key 0x0017, version 1


async def test_a_frame_after_a_silence_records_how_long_the_connection_was_silent() -> None:
    conn = Connection("localhost", 5552)

    async def heartbeat() -> bytes:
        return _HEARTBEAT

    conn._read_frame_raw = heartbeat  # type: ignore[method-assign]
    await _read_frame(conn)
    assert _quiet(conn) == (0.0, 0.0)  # the first frame: nothing to compare with
    conn._superticks_heard_at = time.monotonic() - 7.0  # type: ignore[attr-defined]

    await _read_frame(conn)

    ended, silent = _quiet(conn)
    assert 7.0 <= silent < 7.5
    assert time.monotonic() - ended < 0.5


class _Watched(Subscription):
    """A subscription whose current connection was silent `silent_s` before its last frame."""

    def __init__(self, silent_s: float) -> None:
        super().__init__(
            ConnectionSettings(heartbeat_s=3), "s-0", self._got, Offset.next(), name="t"
        )
        self.delivered: list[Chunk] = []
        self.lost: list[str] = []
        silence = (time.monotonic(), silent_s)
        self._consumer = SimpleNamespace(  # type: ignore[assignment]
            last_silence=lambda _stream: silence, data_nodes={"s-0": "localhost:5553"}
        )
        self._opened_at = time.monotonic() - 60

    async def _got(self, chunk: Chunk) -> None:
        self.delivered.append(chunk)

    def _lose(self, why: str) -> None:
        self.lost.append(why)


def _chunk() -> Chunk:
    return Chunk("s-0", 100, 0, [b"m"], 1)


async def test_a_chunk_sent_as_a_node_woke_from_2_heartbeats_of_silence_is_not_delivered() -> None:
    subscription = _Watched(silent_s=7.0)

    await subscription._deliver(subscription._generation, _chunk())

    assert subscription.delivered == []
    assert subscription.lost == ["localhost:5553 was silent for 7.0 s, then sent again"]


async def test_a_chunk_after_a_silence_shorter_than_two_heartbeats_is_delivered() -> None:
    subscription = _Watched(silent_s=4.0)  # a busy node, or this process busy for 4 s

    await subscription._deliver(subscription._generation, _chunk())

    assert len(subscription.delivered) == 1
    assert subscription.lost == []


async def test_heartbeats_go_out_three_times_per_interval() -> None:
    # a process whose loop blocks for a while must not leave an idle connection silent for the
    # block plus a whole interval: the broker drops a connection silent for two intervals
    sent: list[float] = []
    alive = iter([True, True, True, True, False])

    async def send_frame(frame: object) -> None:
        assert isinstance(frame, schema.Heartbeat)
        sent.append(time.monotonic())

    client = SimpleNamespace(
        _heartbeat=0.3,
        _last_heartbeat=time.monotonic(),
        host="localhost",
        port=5552,
        is_connection_alive=lambda: next(alive),
        send_frame=send_frame,
    )

    await _heartbeat_often(client)  # type: ignore[arg-type]

    assert len(sent) == 4
    assert all(0.08 < b - a < 0.2 for a, b in itertools.pairwise(sent))
