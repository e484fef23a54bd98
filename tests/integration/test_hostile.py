"""Hostile input at the producer: a tick larger than the broker's frame limit is refused before
it is sent, nothing else is lost; large ticks that fit are cut into frames that fit."""

from __future__ import annotations

import pytest
from _streams import read_messages

from partitioning.codec import format_body, split_message
from partitioning.producer import Producer, ProducerConfig
from superticks.errors import TickTooLarge
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]

SYMBOL = "BIG"  # one symbol: one partition, in send order


def _body(seq: int, pad: int = 0) -> bytes:
    body = format_body(
        SYMBOL, "XNAS", "1.5", "1", "1.5", "1", "1.5", "1", "1", 1_790_000_000_000_000, seq
    )
    return body[:-1] + b',"pad":"' + b"x" * pad + b'"}' if pad else body  # fmt: skip


async def test_a_tick_over_the_frame_limit_is_refused_before_sending_and_nothing_else_is_lost(
    connection: ConnectionSettings, super_stream: str
) -> None:
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        await producer.send_batch([(SYMBOL, _body(i)) for i in range(10)])
        with pytest.raises(TickTooLarge) as refused:
            await producer.send_batch([(SYMBOL, _body(10)), (SYMBOL, _body(11, pad=1_048_576))])
        with pytest.raises(TickTooLarge):  # again: a refused size is never taken for a good one
            await producer.send_batch([(SYMBOL, _body(11, pad=1_048_576))])
        await producer.send_batch([(SYMBOL, _body(i)) for i in range(12, 20)])
        await producer.flush(30)
        assert producer.metrics.confirmed == 18
        partition = f"{super_stream}-{producer.partition_for(SYMBOL)}"
    message = str(refused.value)
    assert "over the broker's frame limit of 1,048,576 bytes" in message
    assert f"{refused.value.frame_size:,} bytes" in message
    assert refused.value.frame_size > 1_048_576
    print(message)
    stored = await read_messages(connection, partition, 18)
    seqs = [int(split_message(m)[1].split(b'"sequence_number":')[1].split(b",")[0]) for m in stored]
    assert seqs == [*range(10), *range(12, 20)]  # the whole refused call was not sent
    async with Admin(connection) as admin:
        assert await admin.last_offset(partition) >= 17  # and nothing after it


async def test_large_ticks_that_fit_are_sent_in_frames_that_fit(
    connection: ConnectionSettings, super_stream: str
) -> None:
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        items = [(SYMBOL, _body(i, pad=300_000)) for i in range(7)]  # ~2.1 MB in one call
        items.append((SYMBOL, _body(7, pad=1_048_000)))  # just fits a frame alone
        await producer.send_batch(items)
        await producer.flush(30)
        assert producer.metrics.confirmed == 8
        partition = f"{super_stream}-{producer.partition_for(SYMBOL)}"
    stored = await read_messages(connection, partition, 8)
    assert [bytes(split_message(m)[1]) for m in stored] == [b for _, b in items]
