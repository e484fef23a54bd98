"""The group worker's pure rules: duplicate fencing, when offsets are stored, dead-letter
records, configuration and the handlers' bookkeeping."""

from __future__ import annotations

import base64
import hashlib
import tracemalloc
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from partitioning.codec import Tick, decode_message, format_body, frame_message
from workers.deadletter import (
    MAX_ORIGINAL_BYTES,
    dead_letter_message,
    dead_letter_record,
    read_dead_letter,
)
from workers.group import WorkerConfig
from workers.handlers import CountHandler, CountingHandler, PerTick, VwapHandler, handler_named
from workers.offsets import fence, processed_after, store_due


def _tick(seq: int, price: str = "100.5", size: str = "2", symbol: str = "AAPL") -> Tick:
    body = format_body(
        symbol, "XNAS", price, "1", price, "1", price, size, "10", 1_790_000_000_000_000, seq
    )
    return decode_message(frame_message(symbol, body))


# --- fencing ----------------------------------------------------------------------------------
def test_nothing_processed_yet_means_no_duplicates() -> None:
    assert fence(first_offset=0, count=10, last_processed=-1) == 0


def test_offsets_at_or_below_the_last_processed_are_duplicates() -> None:
    assert fence(first_offset=100, count=10, last_processed=104) == 5


def test_a_chunk_wholly_processed_before_is_all_duplicates() -> None:
    assert fence(first_offset=100, count=10, last_processed=500) == 10


def test_a_chunk_after_the_last_processed_offset_is_all_new() -> None:
    assert fence(first_offset=105, count=10, last_processed=104) == 0
    assert fence(first_offset=900, count=10, last_processed=104) == 0


def test_a_handled_chunk_moves_the_last_processed_offset_to_its_end() -> None:
    assert processed_after(last_processed=-1, first_offset=0, count=10) == 9
    assert processed_after(last_processed=104, first_offset=105, count=10) == 114


def test_a_chunk_with_nothing_left_after_the_fence_never_moves_the_offset_back() -> None:
    # a newly active member is sent chunks from thousands of offsets before the one it asked
    # for: an empty chunk at 13,227 must not let offsets 13,228..16,610 through the fence
    assert processed_after(last_processed=16_610, first_offset=13_227, count=0) == 16_610
    assert processed_after(last_processed=16_610, first_offset=13_222, count=5) == 16_610


# --- offset store policy ----------------------------------------------------------------------
def test_nothing_new_is_never_stored() -> None:
    assert not store_due(50, 50, now_ms=10_000, stored_at_ms=0, every_ticks=1, every_ms=1)


def test_store_after_every_n_ticks() -> None:
    assert not store_due(998, -1, now_ms=1, stored_at_ms=0, every_ticks=1000, every_ms=200)
    assert store_due(999, -1, now_ms=1, stored_at_ms=0, every_ticks=1000, every_ms=200)


def test_store_after_every_t_ms_even_for_one_tick() -> None:
    assert not store_due(11, 10, now_ms=199, stored_at_ms=0, every_ticks=1000, every_ms=200)
    assert store_due(11, 10, now_ms=200, stored_at_ms=0, every_ticks=1000, every_ms=200)


def test_defaults_store_often_so_a_replacement_redoes_little() -> None:
    """A crash redoes at most 200 ms or 10,000 ticks (67 ms at 150k ticks/s): each store
    costs the cluster CPU, so not every 1,000 ticks."""
    config = WorkerConfig(group="g")
    assert config.store_every_ticks <= 10_000
    assert config.store_every_ms <= 200


# --- dead-letter records ----------------------------------------------------------------------
def _record() -> bytes:
    return dead_letter_record(
        original=b"\x00\xffnot a tick",
        error="DecodeError: byte 0 does not start an AMQP section",
        partition=2,
        stream="ticks-2",
        offset=12345,
        group="vwap",
        worker="host-1",
    )


def test_dead_letter_record_is_json_with_the_original_in_base64() -> None:
    assert orjson.loads(_record()) == {
        "original": base64.b64encode(b"\x00\xffnot a tick").decode(),
        "error": "DecodeError: byte 0 does not start an AMQP section",
        "partition": 2,
        "stream": "ticks-2",
        "offset": 12345,
        "group": "vwap",
        "worker": "host-1",
    }


def test_a_dead_letter_of_a_huge_message_carries_its_head_and_reference_under_the_frame_limit() -> (
    None
):
    original = b"\x00Sw" + bytes(range(256)) * 4000  # ~1 MB: whole, it would not fit a frame
    record = orjson.loads(
        dead_letter_record(
            original=original, error="E" * 100_000, partition=0, stream="t-0", offset=7,
            group="g", worker="w",
        )
    )  # fmt: skip
    assert base64.b64decode(record["original"]) == original[:MAX_ORIGINAL_BYTES]
    assert record["original_truncated"] is True
    assert record["original_size"] == len(original)
    assert record["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert len(record["error"]) < 5_000
    assert len(dead_letter_message(orjson.dumps(record))) < 512 * 1024


def test_dead_letter_travels_as_an_amqp_message_and_reads_back() -> None:
    record = read_dead_letter(dead_letter_message(_record()))
    assert record["original"] == b"\x00\xffnot a tick"
    assert record["offset"] == 12345


# --- configuration ----------------------------------------------------------------------------
def test_dead_letter_stream_defaults_to_the_super_streams_name_plus_dlq() -> None:
    assert WorkerConfig(group="g", super_stream="fx").dead_letters == "fx-dlq"
    assert WorkerConfig(group="g", dead_letter_stream="poison").dead_letters == "poison"


def test_worker_name_defaults_to_host_and_pid() -> None:
    import os

    assert WorkerConfig(group="g").name.endswith(f"-{os.getpid()}")


@pytest.mark.parametrize(
    "bad",
    [{"group": ""}, {"group": "g", "start": "middle"}, {"group": "g", "store_every_ticks": 0}],
)
def test_bad_configuration_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WorkerConfig.model_validate(bad)


def test_config_is_frozen() -> None:
    config = WorkerConfig(group="g")
    with pytest.raises(ValidationError):
        config.group = "h"


# --- handlers ---------------------------------------------------------------------------------
async def test_vwap_handler_ignores_offsets_it_already_folded() -> None:
    handler = VwapHandler()
    await handler.handle_batch(0, [10, 11], [_tick(0, "100"), _tick(1, "102")])
    await handler.handle_batch(0, [11, 12], [_tick(1, "102"), _tick(2, "104")])
    aggregate = handler.snapshot()["AAPL"]
    assert aggregate.count == 3
    assert aggregate.vwap == Decimal(102)


async def test_vwap_handler_keeps_partitions_apart() -> None:
    handler = VwapHandler()
    await handler.handle_batch(0, [5], [_tick(0)])
    await handler.handle_batch(1, [5], [_tick(1)])
    assert handler.snapshot()["AAPL"].count == 2


async def test_counting_handler_records_symbol_sequence_partition_offset() -> None:
    handler = CountingHandler()
    await handler.handle_batch(2, range(7, 9), [_tick(3), _tick(4)])
    assert handler.records == [("AAPL", 3, 2, 7), ("AAPL", 4, 2, 8)]


async def test_per_tick_adapter_calls_once_per_tick_in_order() -> None:
    seen: list[tuple[int, int, int]] = []

    async def one(partition: int, offset: int, tick: Tick) -> None:
        seen.append((partition, offset, tick.sequence_number))

    await PerTick(one).handle_batch(1, [3, 5], [_tick(0), _tick(1)])
    assert seen == [(1, 3, 0), (1, 5, 1)]


# --- the count handler --------------------------------------------------------------------------
async def test_the_count_handler_counts_per_partition_and_symbol_and_never_twice() -> None:
    handler = handler_named("count")
    assert isinstance(handler, CountHandler)
    await handler.handle_batch(0, [0, 1], [_tick(0), _tick(1, symbol="MSFT")])
    await handler.handle_batch(0, [1, 2], [_tick(1, symbol="MSFT"), _tick(2)])  # a retry
    await handler.handle_batch(1, [0], [_tick(0)])
    assert handler.total == 4
    assert handler.per_partition == {0: 3, 1: 1}
    assert handler.per_symbol == {"AAPL": 3, "MSFT": 1}


async def test_the_count_handler_of_the_cli_keeps_counts_not_ticks() -> None:
    """`superticks worker --handler count` used to keep every tick in memory for ever."""
    handler = handler_named("count")
    ticks = [_tick(i, symbol=f"S{i % 50}") for i in range(1_000)]
    await handler.handle_batch(0, range(1_000), ticks)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(1, 51):
        await handler.handle_batch(0, range(n * 1_000, (n + 1) * 1_000), ticks)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 20_000  # recording 50,000 ticks took megabytes
