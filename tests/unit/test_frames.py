"""Publish frames and records, byte for byte, as the RabbitMQ stream protocol defines them
(Publish, key 0x0002: v1 messages are id + size + message; v2 adds a filter value per message;
a sub-entry record is id + entry type + count + sizes + data)."""

from __future__ import annotations

import gzip
import struct

import pytest
import zstandard

from superticks.streams import (
    PUBLISH_FRAME_OVERHEAD,
    Compression,
    _split_chunk,
    encode_credit_frame,
    encode_id,
    encode_publish_frame,
    encode_record,
    encode_records_frame,
    encode_split_frame,
    encode_sub_entry_record,
    filter_part,
    frame_runs,
    record_middle,
)


def test_v1_publish_frame_of_two_messages() -> None:
    frame = encode_publish_frame(7, [(1, b"ab"), (2, b"c")])
    body = (
        b"\x00\x02\x00\x01"  # key Publish, version 1
        + b"\x07"  # publisher id
        + b"\x00\x00\x00\x02"  # two messages
        + struct.pack(">QI", 1, 2) + b"ab"
        + struct.pack(">QI", 2, 1) + b"c"
    )  # fmt: skip
    assert frame == struct.pack(">I", len(body)) + body


def test_v2_publish_frame_carries_a_filter_value_per_message() -> None:
    frame = encode_publish_frame(0, [(5, b"msg")], [b"AAPL"])
    body = b"\x00\x02\x00\x02\x00\x00\x00\x00\x01" + struct.pack(">QH", 5, 4) + b"AAPL"
    body += struct.pack(">I", 3) + b"msg"
    assert frame == struct.pack(">I", len(body)) + body


def test_a_record_is_the_same_as_a_frame_entry() -> None:
    record = encode_record(5, filter_part(b"AAPL"), b"head-", b"body")
    assert record == struct.pack(">QH", 5, 4) + b"AAPL" + struct.pack(">I", 9) + b"head-body"
    assert encode_records_frame(0, [record]) == encode_publish_frame(
        0, [(5, b"head-body")], [b"AAPL"]
    )


def test_id_plus_cached_middle_plus_body_is_the_record() -> None:
    middle = record_middle(filter_part(b"MSFT"), b"head-", 4)
    assert encode_id(9) + middle + b"body" == encode_record(
        9, filter_part(b"MSFT"), b"head-", b"body"
    )


def test_without_filter_values_records_make_a_v1_frame() -> None:
    record = encode_id(3) + record_middle(b"", b"", 2) + b"xy"
    assert encode_records_frame(0, [record], version=1) == encode_publish_frame(0, [(3, b"xy")])


def test_uncompressed_sub_entry_record() -> None:
    record = encode_sub_entry_record(11, [b"ab", b"c"])
    raw = struct.pack(">I", 2) + b"ab" + struct.pack(">I", 1) + b"c"
    assert record == struct.pack(">QBHII", 11, 0x80, 2, len(raw), len(raw)) + raw


def test_compressed_sub_entries_name_their_codec_and_decompress_to_the_messages() -> None:
    raw = struct.pack(">I", 2) + b"ab" + struct.pack(">I", 1) + b"c"
    for compression, entry_type, decompress in (
        (Compression.GZIP, 0x90, gzip.decompress),
        (Compression.ZSTD, 0xC0, zstandard.ZstdDecompressor().decompress),
    ):
        record = encode_sub_entry_record(11, [b"ab", b"c"], compression)
        pid, kind, count, size, length = struct.unpack_from(">QBHII", record)
        assert (pid, kind, count, size) == (11, entry_type, 2, len(raw))
        assert decompress(record[struct.calcsize(">QBHII") :]) == raw
        assert length == len(record) - struct.calcsize(">QBHII")


def test_a_re_sent_gzip_record_is_byte_identical() -> None:
    first = encode_sub_entry_record(1, [b"tick"] * 10, Compression.GZIP)
    assert encode_sub_entry_record(1, [b"tick"] * 10, Compression.GZIP) == first


def test_frame_runs_keep_every_publish_frame_within_frame_max() -> None:
    records = [b"a" * 400, b"b" * 400, b"c" * 100, b"d" * 900, b"e" * 10]
    runs = frame_runs(records, frame_max=1000)
    assert [list(r) for r in runs] == [records[:3], records[3:]]
    assert all(sum(map(len, r)) + PUBLISH_FRAME_OVERHEAD <= 1000 for r in runs)
    assert frame_runs(records[:3], frame_max=1000) == [records[:3]]  # fits: left as is
    assert [list(r) for r in frame_runs([b"x" * 2000, b"y"], frame_max=1000)] == [
        [b"x" * 2000],
        [b"y"],
    ]  # a record too large alone keeps a run of its own (the producer refuses it first)


def test_credit_frame_grants_chunks_to_one_subscription() -> None:
    # size 7, key Credit (0x0009), version 1, subscription id 3, credit 2
    assert encode_credit_frame(3, 2) == b"\x00\x00\x00\x07\x00\x09\x00\x01\x03\x00\x02"


def test_a_frame_of_records_in_parts_is_the_frame_of_the_joined_records() -> None:
    fv = filter_part(b"AAPL")
    heads = [record_middle(fv, b"head-", 4), record_middle(fv, b"h-", 2)]
    bodies = [b"body", b"xy"]
    records = [encode_id(5) + heads[0] + bodies[0], encode_id(6) + heads[1] + bodies[1]]
    runs = [(range(5, 6), heads[:1], bodies[:1]), ([6], heads[1:], bodies[1:])]
    assert b"".join(encode_split_frame(0, runs)) == encode_records_frame(0, records)
    sub_entry = encode_split_frame(3, [([5], [b"rest"], [b""])], 1)
    assert b"".join(sub_entry) == encode_records_frame(3, [encode_id(5) + b"rest"], 1)


def test_split_frames_of_consecutive_ids_across_blocks_of_256_match_the_joined_records() -> None:
    for first in (0, 250, 2**40 + 255, 2**63 - 300):
        ids = range(first, first + 300)
        heads = [record_middle(filter_part(b"S"), b"h%d" % i, 1) for i in range(300)]
        bodies = [bytes((i % 256,)) for i in range(300)]
        records = [encode_id(p) + h + b for p, h, b in zip(ids, heads, bodies, strict=True)]
        runs = [(ids[:7], heads[:7], bodies[:7]), (ids[7:], heads[7:], bodies[7:])]
        assert b"".join(encode_split_frame(0, runs)) == encode_records_frame(0, records)


def test_a_chunk_of_simple_entries_splits_into_its_messages() -> None:
    """A delivered chunk's data: each entry is a 4-byte size, then the message."""
    messages = [b"first", b"", b"x" * 300]
    data = b"".join(len(m).to_bytes(4, "big") + m for m in messages)
    assert _split_chunk(data, 3) == messages


def _in_chunk(record: bytes) -> bytes:
    """A sub-entry record as a chunk holds it: without its publishing id."""
    return record[8:]


@pytest.mark.parametrize("compression", list(Compression))
def test_a_chunk_of_sub_entry_batches_and_simple_entries_splits_into_every_message(
    compression: Compression,
) -> None:
    batch = [b"a", b"", b"c" * 500]
    simple = b"simple"
    data = (
        _in_chunk(encode_sub_entry_record(7, batch, compression))
        + len(simple).to_bytes(4, "big")
        + simple
        + _in_chunk(encode_sub_entry_record(8, [b"last"], compression))
    )
    assert _split_chunk(data, 3) == [*batch, simple, b"last"]


def test_an_uncompressed_sub_entry_batch_pinned_byte_for_byte() -> None:
    # type 0x80 (sub-entry, no compression), 2 messages, 9 bytes uncompressed, 9 bytes
    data = bytes.fromhex("80 0002 00000009 00000009 00000001 61 00000000")
    assert _split_chunk(data, 1) == [b"a", b""]


@pytest.mark.parametrize(
    ("data", "entries", "error"),
    [
        (b"\x00\x00\x00\x01a\x00\x00", 2, "truncated chunk"),  # a size cut off
        # a sub-entry batch longer than the chunk
        (bytes.fromhex("80 0001 00000005 00000009 00000001 61"), 1, "truncated chunk"),
        # a message longer than its batch
        (bytes.fromhex("80 0001 00000005 00000005 00000002 61"), 1, "truncated sub-entry"),
        # a compression rstream may know (snappy, 2): left to it
        (bytes.fromhex("a0 0001 00000005 00000005 00000001 61"), 1, "compression 2"),
    ],
)
def test_a_chunk_that_cannot_be_split_here_is_refused(
    data: bytes, entries: int, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        _split_chunk(data, entries)
