"""The adapter: the only module that imports rstream. Everything else uses the typed API here.

rstream 1.1.1's traps, each handled once, here:

* reads of 256 bytes at a time (`Connection._read`): replaced by `readexactly` (one read per
  frame part), which is what makes a chunk of a thousand ticks cheap to receive;
* two offset types (`ConsumerOffsetSpecification` for subscribe, `OffsetSpecification` for the
  SAC consumer-update answer): callers use our one `Offset` type;
* raw SAC property strings, and the missing `super-stream` property that silently makes every
  partition its own group: `subscribe(..., group=..., super_stream=...)` sets all three;
* the shared default recovery strategy with 1-8 s of random jitter: every consumer gets its own
  `_QuickRecovery` (short, bounded back-off, retries until stopped);
* exceptions swallowed in callbacks (delivery and consumer-update handlers only log them): ours
  are caught, kept, and surfaced through `Subscription.failure` / the owner's error callback;
* unbounded `send()` and no re-send after recovery: we do not use rstream's producer; a
  `PartitionPublisher` writes publish frames with our own publishing ids and reports confirms,
  errors and disconnects, so the producer above can bound, re-send and deduplicate;
* confirms and deliveries decoded field by field in Python, and StreamStats not decodable at
  all (its response would kill rstream's listener): `_read_frame` decodes these with `struct`;
* a subscription whose connection dropped is re-subscribed silently: `Subscription(on_lost=)`
  tells its owner, which may no longer be the active consumer;
* rstream's exceptions never leave this module: `_mapped()` turns them into ours.

It also holds the benchmarks' reference implementation of stock rstream usage
(`naive_rstream_publish`), since nothing else may import rstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import struct
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import rstream
import zstandard
from rstream import exceptions as rs_exc
from rstream import schema
from rstream.client import Client
from rstream.compression import CompressionType, ICompressionCodec, StreamCompressionCodecs
from rstream.connection import Connection, ConnectionClosed
from rstream.constants import ConsumerOffsetSpecification, OffsetType
from rstream.encoding import decode_frame
from rstream.recovery import IReliableEntity, RecoveryStrategy

from superticks.errors import (
    ConnectionFailed,
    StreamError,
    StreamNotFound,
    TopologyError,
)
from superticks.settings import ConnectionSettings, NodeAddress

__all__ = [
    "Admin",
    "Chunk",
    "Compression",
    "Offset",
    "OffsetKind",
    "PartitionPublisher",
    "StreamInfo",
    "Subscription",
    "encode_id",
    "encode_publish_frame",
    "encode_record",
    "encode_records_frame",
    "encode_sub_entry_record",
    "filter_part",
    "record_middle",
]

log = logging.getLogger("superticks.streams")

FRAME_MAX = 1_048_576


# --- rstream's 256-byte reads, replaced once --------------------------------------------------
async def _read_exactly(self: Connection, n: int) -> bytes:
    reader = self._reader
    assert reader is not None
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise ConnectionClosed from None


_CONFIRM_KEY = b"\x00\x03\x00\x01"  # PublishConfirm, version 1
_STATS_REQUEST_KEY = 0x001C  # StreamStats: not in rstream 1.1.1
_STATS_RESPONSE_KEY = b"\x80\x1c\x00\x01"


@dataclass(slots=True)
class _StreamStats:
    """The StreamStats response, which rstream 1.1.1 cannot decode (it would kill its listener),
    decoded here; shaped like an rstream frame so its waiters find it (`key`, `corr_id`)."""

    key: ClassVar[str] = "superticks.StreamStats"
    corr_id: int
    response_code: int
    stats: dict[str, int]

    @classmethod
    def decode(cls, data: bytes | bytearray) -> _StreamStats:
        corr_id, code, count = struct.unpack_from(">IHI", data, 4)
        pos, stats = 14, {}
        for _ in range(count):
            (size,) = struct.unpack_from(">H", data, pos)
            name = bytes(data[pos + 2 : pos + 2 + size]).decode()
            (value,) = struct.unpack_from(">q", data, pos + 2 + size)
            stats[name] = value
            pos += 2 + size + 8
        return cls(corr_id, code, stats)

    def check_response_code(self, raise_exception: bool = True) -> None:
        if self.response_code > 1 and raise_exception:
            raise rs_exc.ServerError.from_code(self.response_code)


_DELIVER_HEAD = struct.Struct(">HHBbbHIqQQIIII")  # Deliver v1 up to the chunk data


async def _read_frame(self: Connection) -> schema.Frame:
    """rstream's read_frame, with the two hot frames decoded by `struct` in one go instead of
    field by field: PublishConfirm (a list of publishing ids) and Deliver (a chunk)."""
    data = await self._read_frame_raw()
    head = bytes(data[:4])
    if head == _CONFIRM_KEY:
        count = int.from_bytes(data[5:9], "big")
        ids = list(struct.unpack_from(f">{count}Q", data, 9))
        return schema.PublishConfirm(publisher_id=data[4], publishing_ids=ids)
    if head == b"\x00\x08\x00\x01":
        (
            _,
            _,
            sub_id,
            magic,
            ctype,
            entries,
            records,
            ts,
            epoch,
            first,
            crc,
            size,
            trailer,
            reserved,
        ) = _DELIVER_HEAD.unpack_from(data, 0)
        return schema.Deliver(
            subscription_id=sub_id,
            magic_version=magic,
            chunk_type=ctype,
            num_entries=entries,
            num_records=records,
            timestamp=ts,
            epoch=epoch,
            chunk_first_offset=first,
            chunk_crc=crc,
            data_length=size,
            trailer_length=trailer,
            _reserved=reserved,
            data=bytes(data[_DELIVER_HEAD.size :]),
        )
    if head == _STATS_RESPONSE_KEY:
        return _StreamStats.decode(data)  # type: ignore[return-value]
    return decode_frame(bytes(data))


Connection._read = _read_exactly  # type: ignore[method-assign,assignment]
Connection.read_frame = _read_frame  # type: ignore[method-assign]


# --- error mapping ----------------------------------------------------------------------------
@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Turn rstream's and the socket's exceptions into ours, naming what we were doing."""
    try:
        yield
    except rs_exc.StreamDoesNotExist:
        raise StreamNotFound(f"{what}: the stream does not exist (create it first)") from None
    except rs_exc.StreamAlreadyExists:
        raise TopologyError(f"{what}: it already exists") from None
    except (rs_exc.AuthenticationFailure, rs_exc.SASLAuthenticationFailureLoopback):
        raise ConnectionFailed(
            f"{what}: authentication failed; check SUPERTICKS_USERNAME/SUPERTICKS_PASSWORD"
        ) from None
    except rs_exc.VirtualHostAccessFailure:
        raise ConnectionFailed(
            f"{what}: no access to the virtual host (SUPERTICKS_VHOST)"
        ) from None
    except rs_exc.PreconditionFailed as exc:
        raise TopologyError(f"{what}: precondition failed ({exc})") from None
    except (rs_exc.ServerError, rs_exc.ClientError) as exc:
        raise StreamError(f"{what}: {type(exc).__name__} {exc}") from None
    except (OSError, ConnectionClosed, ConnectionError) as exc:
        raise ConnectionFailed(f"{what}: connection failed ({exc or type(exc).__name__})") from None
    except TimeoutError:
        raise ConnectionFailed(f"{what}: the broker did not answer in time") from None


async def _close(client: Client) -> None:
    """Close an rstream client, also when its connection is already dead (rstream's close()
    may then fail before it closes the socket, which would leak it)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 5)
    conn = client._conn
    writer = conn._writer if conn is not None else None
    if writer is not None and not writer.is_closing():
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1)


async def _connect(
    settings: ConnectionSettings,
    address: NodeAddress,
    name: str,
    on_closed: Callable[[Any], Awaitable[None]] | None = None,
) -> Client:
    client = Client(
        host=address.host,
        port=address.port,
        frame_max=FRAME_MAX,
        heartbeat=settings.heartbeat_s,
        connection_name=name,
        connection_closed_handler=on_closed,
    )
    try:
        with _mapped(f"connecting to {address}"):
            await asyncio.wait_for(client.start(), settings.connect_timeout_s)
            await asyncio.wait_for(
                client.authenticate(
                    settings.vhost, settings.username, settings.password.get_secret_value()
                ),
                settings.connect_timeout_s,
            )
    except BaseException:
        await _close(client)
        raise
    return client


async def _connect_any(settings: ConnectionSettings, name: str) -> Client:
    errors = []
    for address in settings.nodes:
        try:
            return await _connect(settings, address, name)
        except ConnectionFailed as exc:
            if "authentication" in str(exc):
                raise
            errors.append(str(exc))
    raise ConnectionFailed("no node answered: " + "; ".join(errors))


# --- offsets ----------------------------------------------------------------------------------
class OffsetKind(Enum):
    FIRST = "first"
    LAST = "last"
    NEXT = "next"
    OFFSET = "offset"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True, slots=True)
class Offset:
    """Where a subscription starts. `Offset.at(n)`, `Offset.since(ms)`, or FIRST/LAST/NEXT."""

    kind: OffsetKind
    value: int | None = None

    @classmethod
    def first(cls) -> Offset:
        return cls(OffsetKind.FIRST)

    @classmethod
    def last(cls) -> Offset:
        return cls(OffsetKind.LAST)

    @classmethod
    def next(cls) -> Offset:
        return cls(OffsetKind.NEXT)

    @classmethod
    def at(cls, offset: int) -> Offset:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        return cls(OffsetKind.OFFSET, offset)

    @classmethod
    def since(cls, timestamp_ms: int) -> Offset:
        return cls(OffsetKind.TIMESTAMP, timestamp_ms)

    def _type(self) -> OffsetType:
        return OffsetType[self.kind.name]

    def _for_subscribe(self) -> ConsumerOffsetSpecification:
        return ConsumerOffsetSpecification(self._type(), self.value)

    def _for_consumer_update(self) -> schema.OffsetSpecification:
        return schema.OffsetSpecification(self._type(), self.value or 0)


# --- topology / admin -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    leader: str  # host:port as advertised
    replicas: tuple[str, ...]


class Admin:
    """Control-plane calls on one connection to any node: streams, super streams, offsets."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._subscriptions = 0

    async def start(self) -> None:
        if self._client is None:
            self._client = await _connect_any(self._settings, "superticks-admin")

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _close(client)

    async def __aenter__(self) -> Admin:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def client(self) -> Client:
        if self._client is None or not self._client.is_connection_alive():
            raise ConnectionFailed("the admin connection is not open (call start())")
        return self._client

    @property
    def broker_version(self) -> str | None:
        """The RabbitMQ version of the node this connection reached (None: not told)."""
        return (self.client.server_properties or {}).get("version")

    async def create_stream(self, name: str, arguments: dict[str, Any]) -> bool:
        """Create a stream; False if it already exists."""
        try:
            with _mapped(f"creating stream {name}"):
                await self.client.create_stream(name, arguments)
        except TopologyError as exc:
            if "already exists" in str(exc):
                return False
            raise
        return True

    async def delete_stream(self, name: str) -> bool:
        try:
            with _mapped(f"deleting stream {name}"):
                await self.client.delete_stream(name)
        except StreamNotFound:
            return False
        return True

    async def stream_exists(self, name: str) -> bool:
        with _mapped(f"looking up stream {name}"):
            return bool(await self.client.stream_exists(name))

    async def create_super_stream(
        self, name: str, partitions: Sequence[str], arguments: dict[str, Any]
    ) -> bool:
        """Create a super stream whose partition i has binding key str(i); False if it exists."""
        try:
            with _mapped(f"creating super stream {name}"):
                await self.client.create_super_stream(
                    name,
                    partitions=list(partitions),
                    binding_keys=[str(i) for i in range(len(partitions))],
                    arguments=arguments,
                )
        except TopologyError as exc:
            if "already exists" in str(exc):
                return False
            raise
        return True

    async def delete_super_stream(self, name: str) -> bool:
        try:
            with _mapped(f"deleting super stream {name}"):
                await self.client.delete_super_stream(name)
        except StreamNotFound:
            return False
        return True

    async def partitions(self, super_stream: str) -> list[str]:
        """The super stream's partition streams in binding-key order ([] if it does not exist)."""
        with _mapped(f"listing partitions of {super_stream}"):
            streams = await self.client.partitions(super_stream)
        return list(streams or [])

    async def info(self, stream: str) -> StreamInfo:
        with _mapped(f"reading metadata of {stream}"):
            leader, replicas = await self.client.query_leader_and_replicas(stream)
        return StreamInfo(
            name=stream,
            leader=f"{leader.host}:{leader.port}",
            replicas=tuple(f"{r.host}:{r.port}" for r in replicas),
        )

    async def stored_offset(self, stream: str, reference: str) -> int | None:
        """The offset stored under `reference` (a consumer group's name), or None."""
        try:
            with _mapped(f"querying offset of {reference} on {stream}"):
                return int(await self.client.query_offset(stream, reference))
        except StreamError as exc:
            if "OffsetNotFound" in str(exc):
                return None
            raise

    async def store_offset(self, stream: str, reference: str, offset: int) -> None:
        with _mapped(f"storing offset of {reference} on {stream}"):
            await self.client.store_offset(stream, reference, offset)

    async def publisher_sequence(self, stream: str, reference: str) -> int:
        """The highest publishing id the stream stored for producer `reference` (0 if none)."""
        with _mapped(f"querying publisher sequence of {reference} on {stream}"):
            return int(await self.client.query_publisher_sequence(stream, reference))

    async def stats(self, stream: str) -> dict[str, int]:
        """The broker's StreamStats: `first_chunk_id` and `committed_chunk_id` (the first offset
        of the first and of the last committed chunk; -1 when the stream is empty)."""
        client = self.client
        corr_id = client._corr_id_seq.next()
        name = stream.encode()
        frame = struct.pack(
            f">IHHIH{len(name)}s", 10 + len(name), _STATS_REQUEST_KEY, 1, corr_id, len(name), name
        )
        waiter = client.wait_frame(_StreamStats, corr_id)  # type: ignore[type-var]
        with _mapped(f"reading the stats of {stream}"):
            await client._conn._write_frame_raw(frame)  # type: ignore[union-attr]
            response = await waiter
            response.check_response_code()
        return dict(response.stats)

    async def last_offset(self, stream: str, timeout_s: float = 5.0) -> int:
        """The offset of the stream's last message now (-1 when the stream is empty).

        StreamStats says whether anything is committed; then a subscription at LAST on this
        connection delivers the last chunk: its first offset plus its record count is one past
        the end. (Every node of the compose cluster holds a replica of every stream.)
        """
        if (await self.stats(stream)).get("committed_chunk_id", -1) < 0:
            return -1
        client = self.client
        self._subscriptions += 1
        sub_id = 200 + self._subscriptions % 50
        result: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_deliver(frame: schema.Deliver) -> None:
            if frame.subscription_id == sub_id and not result.done():
                result.set_result(frame.chunk_first_offset + frame.num_records - 1)

        client.add_handler(schema.Deliver, on_deliver, name=str(sub_id))
        await client.run_queue_listener_task(sub_id, on_deliver)
        try:
            with _mapped(f"reading the tail of {stream}"):
                await client.subscribe(
                    stream, sub_id, schema.OffsetSpec.from_params(OffsetType.LAST, None), 1
                )
                try:
                    return await asyncio.wait_for(result, timeout_s)
                finally:
                    await client.unsubscribe(sub_id)
        finally:
            client.remove_handler(schema.Deliver, name=str(sub_id))
            await client.stop_queue_listener_task(sub_id)


# --- publishing -------------------------------------------------------------------------------
_PUBLISH_V1 = struct.pack(">HH", 0x0002, 1)
_PUBLISH_V2 = struct.pack(">HH", 0x0002, 2)
_ID_LEN = struct.Struct(">QI")
_ID_FILTER = struct.Struct(">QH")
_LEN = struct.Struct(">I")


_ID = struct.Struct(">Q")
_FV_LEN = struct.Struct(">H")


def filter_part(filter_value: bytes) -> bytes:
    """The filter-value field of a v2 publish record (cache it per value)."""
    return _FV_LEN.pack(len(filter_value)) + filter_value


encode_id = _ID.pack
"""The first field of a publish record: its publishing id (8 bytes)."""


def record_middle(filter_field: bytes, head: bytes, body_size: int) -> bytes:
    """What stands between a v2 record's id and its message body: the filter value, the
    message size and the message's head. Cache it per (head, body size); then
    `encode_id(pid) + middle + body` is the record `encode_record` makes, in two copies."""
    return filter_field + _LEN.pack(len(head) + body_size) + head


def encode_record(publishing_id: int, filter_field: bytes, head: bytes, body: bytes) -> bytes:
    """One message (`head + body`) of a v2 publish frame: id, filter value (`filter_part`),
    size, message, in one copy. A record keeps its id, so re-sending it as is lets the broker
    deduplicate it."""
    return b"".join(
        (_ID.pack(publishing_id), filter_field, _LEN.pack(len(head) + len(body)), head, body)
    )


def encode_records_frame(publisher_id: int, records: Sequence[bytes], version: int = 2) -> bytes:
    """A publish frame of records: v2 for `encode_record`'s, v1 for sub-entry records."""
    body = b"".join(records)
    return b"".join(
        (
            _LEN.pack(9 + len(body)),
            _PUBLISH_V2 if version == 2 else _PUBLISH_V1,
            publisher_id.to_bytes(1, "big"),
            _LEN.pack(len(records)),
            body,
        )
    )


class Compression(Enum):
    """Sub-entry batch compression, as the stream protocol numbers it."""

    NONE = 0
    GZIP = 1
    ZSTD = 4


_SUB_ENTRY_HEAD = struct.Struct(">QBHII")


def encode_sub_entry_record(
    publishing_id: int, messages: Sequence[bytes], compression: Compression = Compression.NONE
) -> bytes:
    """One sub-entry batch (a v1 publish record): several messages under one publishing id,
    optionally compressed. Re-sending the same record bytes lets the broker deduplicate it."""
    raw = b"".join([part for m in messages for part in (_LEN.pack(len(m)), m)])
    if compression is Compression.GZIP:
        data = gzip.compress(raw, mtime=0)
    elif compression is Compression.ZSTD:
        data = zstandard.ZstdCompressor().compress(raw)
    else:
        data = raw
    head = _SUB_ENTRY_HEAD.pack(
        publishing_id, 0x80 | (compression.value << 4), len(messages), len(raw), len(data)
    )
    return head + data


class _ZstdCodec(ICompressionCodec):
    """zstd for rstream's sub-entry reader (rstream ships only none and gzip)."""

    def compress(self, messages: Sequence[Any]) -> None:  # pragma: no cover - never used
        raise NotImplementedError

    def uncompress(self, compressed_data: bytes, uncompressed_data_size: int) -> bytes:
        data = zstandard.ZstdDecompressor().decompress(
            compressed_data, max_output_size=uncompressed_data_size
        )
        if len(data) != uncompressed_data_size:
            raise ValueError("zstd sub-entry: wrong uncompressed size")
        return data

    def compressed_size(self) -> int:  # pragma: no cover
        return 0

    def uncompressed_size(self) -> int:  # pragma: no cover
        return 0

    def messages_count(self) -> int:  # pragma: no cover
        return 0

    def data(self) -> bytes:  # pragma: no cover
        return b""

    def compression_type(self) -> int:
        return Compression.ZSTD.value


StreamCompressionCodecs.register_codec(CompressionType.Zstd, _ZstdCodec())


def encode_publish_frame(
    publisher_id: int,
    messages: Sequence[tuple[int, bytes]],
    filter_values: Sequence[bytes] | None = None,
) -> bytes:
    """One Publish frame (protocol v1; v2 with per-message filter values) for (id, message)s."""
    pack_id_len = _ID_LEN.pack
    parts: list[bytes] = []
    append = parts.append
    if filter_values is None:
        for pid, data in messages:
            append(pack_id_len(pid, len(data)))
            append(data)
        head = _PUBLISH_V1
    else:
        pack_id_filter, pack_len = _ID_FILTER.pack, _LEN.pack
        for (pid, data), fv in zip(messages, filter_values, strict=True):
            append(pack_id_filter(pid, len(fv)))
            append(fv)
            append(pack_len(len(data)))
            append(data)
        head = _PUBLISH_V2
    body = b"".join(parts)
    size = 4 + 1 + 4 + len(body)
    return b"".join(
        (_LEN.pack(size), head, publisher_id.to_bytes(1, "big"), _LEN.pack(len(messages)), body)
    )


class PartitionPublisher:
    """A publisher of one stream, on a connection to its leader, speaking raw publish frames.

    It owns no buffer and resends nothing: it reports. `on_confirm(ids)` for confirmed
    publishing ids; `on_error(ids_with_codes)` for ids the broker refused; `on_lost()` once when
    the connection drops or the stream's leader moves. The owner then calls `start()` again
    (a new connection to the current leader) and resends what is unconfirmed under the same ids.
    """

    PUBLISHER_ID = 0

    def __init__(
        self,
        settings: ConnectionSettings,
        stream: str,
        reference: str,
        on_confirm: Callable[[list[int]], None],
        on_error: Callable[[list[tuple[int, int]]], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self.stream = stream
        self.reference = reference
        self._on_confirm = on_confirm
        self._on_error = on_error
        self._on_lost = on_lost
        self._client: Client | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.leader = ""
        self.connected = False

    async def start(self) -> int:
        """Connect to the leader and declare the publisher; returns the last stored id."""
        await self.stop()
        locator = await _connect_any(self._settings, f"superticks-locator-{self.reference}")
        try:
            with _mapped(f"locating the leader of {self.stream}"):
                leader, _ = await locator.query_leader_and_replicas(self.stream)
        finally:
            await _close(locator)
        address = NodeAddress(host=leader.host, port=leader.port)
        client = await _connect(
            self._settings, address, f"superticks-producer-{self.reference}", self._closed
        )
        client.add_stream(self.stream)  # so rstream reports the connection's loss to us
        client.add_handler(schema.PublishConfirm, self._confirmed, name="superticks")
        client.add_handler(schema.PublishError, self._refused, name="superticks")
        client.add_handler(schema.MetadataUpdate, self._metadata, name="superticks")
        try:
            with _mapped(f"declaring producer {self.reference} on {self.stream}"):
                await client.declare_publisher(self.stream, self.reference, self.PUBLISHER_ID)
                last = int(await client.query_publisher_sequence(self.stream, self.reference))
        except BaseException:
            await _close(client)
            raise
        self._client = client
        conn = client._conn
        assert conn is not None
        self._writer = conn._writer
        self.leader = str(address)
        self.connected = True
        return last

    async def stop(self) -> None:
        """Close the connection (without deleting the publisher: its sequence stays stored)."""
        client, self._client, self._writer = self._client, None, None
        self.connected = False
        if client is not None:
            await _close(client)

    def write(self, frame: bytes) -> None:
        """Queue one encoded publish frame (see `encode_publish_frame`) on the socket."""
        writer = self._writer
        if writer is None or not self.connected:
            raise ConnectionFailed(f"publisher {self.reference} has no connection")
        writer.write(frame)

    async def drain(self) -> None:
        writer = self._writer
        if writer is not None and self.connected:
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                self._lose("socket closed while draining")

    def _lose(self, why: str) -> None:
        if self.connected:
            self.connected = False
            self._on_lost(why)

    def _confirmed(self, frame: schema.PublishConfirm) -> None:
        if frame.publisher_id == self.PUBLISHER_ID:
            self._on_confirm(frame.publishing_ids)

    def _refused(self, frame: schema.PublishError) -> None:
        if frame.publisher_id == self.PUBLISHER_ID:
            self._on_error([(e.publishing_id, e.response_code) for e in frame.errors])

    def _metadata(self, frame: schema.MetadataUpdate) -> None:
        if frame.metadata_info.stream == self.stream:
            self._lose(f"metadata update for {self.stream} (leader moved or stream deleted)")

    async def _closed(self, _info: Any) -> None:
        self._lose("connection closed")


# --- consuming --------------------------------------------------------------------------------
@dataclass(slots=True)
class Chunk:
    """One delivered chunk: its messages (AMQP 1.0 bytes) with consecutive offsets."""

    stream: str
    first_offset: int  # offset of messages[0]
    timestamp_ms: int
    messages: list[bytes]
    record_count: int  # records in the whole chunk (>= len(messages) when some were skipped)


def _split_chunk(data: bytes, entries: int) -> list[bytes]:
    """Messages of a chunk made only of simple entries (what superticks writes)."""
    out: list[bytes] = []
    append = out.append
    pos = 0
    from_bytes = int.from_bytes
    for _ in range(entries):
        if data[pos] & 0x80:
            raise ValueError("sub-entry batch")
        size = from_bytes(data[pos : pos + 4], "big")
        pos += 4
        append(data[pos : pos + size])
        pos += size
    return out


class _QuickRecovery(RecoveryStrategy):
    """Re-subscribe after a lost connection quickly (0.1 s, 0.2 s, ... up to 1 s), no jitter,
    for as long as the subscription lives. One instance per consumer (never shared)."""

    def __init__(self) -> None:
        super().__init__(enable=True, max_retries=10_000)

    async def recover(
        self,
        entity: IReliableEntity,
        stream: str,
        error: Exception,
        attempt: int,
        recovery_fun: Callable[[], Awaitable[Any]],
    ) -> None:
        while self._enable:
            await asyncio.sleep(min(0.1 * attempt, 1.0))
            try:
                if await entity.stream_exists(stream, on_close_event=True):
                    await recovery_fun()
                    return
            except Exception as exc:  # noqa: BLE001 - any failure means: try again
                log.info("re-subscribing to %s failed (attempt %d): %s", stream, attempt, exc)
            attempt += 1


class _ChunkConsumer(rstream.Consumer):
    """rstream's Consumer, delivering whole chunks to one callback instead of per message."""

    chunk_callbacks: dict[str, Callable[[Chunk], Awaitable[None]]]

    async def _on_deliver(self, frame: schema.Deliver, subscriber: Any, filter_value: Any) -> None:
        if frame.subscription_id != subscriber.subscription_id:
            return
        first = frame.chunk_first_offset
        try:
            messages = _split_chunk(frame.data, frame.num_entries)
        except (ValueError, IndexError):
            messages = frame.get_messages()  # sub-entry batches from another producer
        start = 0
        if subscriber.offset_type is OffsetType.OFFSET and subscriber.offset > first:
            start = min(subscriber.offset - first, len(messages))
        subscriber.offset = first + frame.num_records
        chunk = Chunk(
            subscriber.stream, first + start, frame.timestamp, messages[start:], frame.num_records
        )
        await self.chunk_callbacks[subscriber.stream](chunk)
        # Credit only after the chunk was handed over: a slow owner slows the broker down.
        await subscriber.client.credit(subscriber.subscription_id, 1)


class Subscription:
    """A subscription to one stream delivering `Chunk`s, optionally in a SAC group.

    With `group` set the subscription joins the single-active-consumer group `group` (for the
    super stream `super_stream`, so partitions spread over the group). `on_activation(active)`
    is awaited when the broker makes this subscription active (True: return the `Offset` to
    start from) or passive (False: store what you processed; the return value is ignored).
    If a callback raises, the subscription records it in `failure` and calls `on_failure`.

    With `filter_values` the broker filters server-side (stream filtering, RabbitMQ 3.13+): it
    sends only chunks whose Bloom filter may hold one of the values (set per message by the
    producer), plus chunks of messages without a filter value if `match_unfiltered`. Filtering
    is per chunk, so a delivered chunk still holds other values' messages: the owner
    post-filters (delivery here stays chunk-level; rstream's per-message post-filter is unused).
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        stream: str,
        on_chunk: Callable[[Chunk], Awaitable[None]],
        offset: Offset,
        *,
        name: str = "superticks",
        group: str | None = None,
        super_stream: str | None = None,
        on_activation: Callable[[bool], Awaitable[Offset]] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        initial_credit: int = 4,
        filter_values: Sequence[str] | None = None,
        match_unfiltered: bool = False,
    ) -> None:
        if filter_values is not None and not filter_values:
            raise ValueError("filter_values needs at least one value (or None: no filtering)")
        self._settings = settings
        self.stream = stream
        self._on_chunk = on_chunk
        self._offset = offset
        self._name = name
        self._group = group
        self._super_stream = super_stream
        self._on_activation = on_activation
        self._on_failure = on_failure
        self._on_lost = on_lost
        self._credit = initial_credit
        self._filter = (
            rstream.FilterConfiguration(list(filter_values), match_unfiltered=match_unfiltered)
            if filter_values is not None
            else None
        )
        self._consumer: _ChunkConsumer | None = None
        self.failure: BaseException | None = None

    async def start(self) -> None:
        first = self._settings.nodes[0]
        consumer = _ChunkConsumer(
            first.host,
            first.port,
            username=self._settings.username,
            password=self._settings.password.get_secret_value(),
            vhost=self._settings.vhost,
            heartbeat=self._settings.heartbeat_s,
            connection_name=f"superticks-{self._name}",
            recovery_strategy=_QuickRecovery(),
            on_close_handler=self._closed,
        )
        consumer.chunk_callbacks = {self.stream: self._deliver}
        properties: dict[str, str] | None = None
        listener = None
        if self._group is not None:
            properties = {"single-active-consumer": "true", "name": self._group}
            if self._super_stream is not None:
                properties["super-stream"] = self._super_stream
            listener = self._consumer_update
        try:
            with _mapped(f"subscribing to {self.stream}"):
                await consumer.start()
                await consumer.subscribe(
                    self.stream,
                    callback=_never_called,
                    offset_specification=self._offset._for_subscribe(),
                    initial_credit=self._credit,
                    properties=properties,
                    subscriber_name=self._group,
                    consumer_update_listener=listener,
                    filter_input=self._filter,
                )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await consumer.close()
            if isinstance(exc, ValueError) and self._filter is not None:
                # rstream's way of saying the broker cannot filter
                raise StreamError(f"subscribing to {self.stream} with a filter: {exc}") from None
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer._recovery_strategy.disable()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.close(), 5)

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def _closed(self, info: Any) -> None:
        """The connection carrying this subscription closed (or its stream's metadata changed):
        whatever the broker had made it, it is no longer; rstream re-subscribes by itself."""
        if self.stream in (getattr(info, "streams", None) or ()) and self._on_lost is not None:
            self._on_lost()

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            log.error("subscription to %s failed: %r", self.stream, exc)
            if self._on_failure is not None:
                self._on_failure(exc)

    async def _deliver(self, chunk: Chunk) -> None:
        if self.failure is not None:
            return
        try:
            await self._on_chunk(chunk)
        except Exception as exc:  # noqa: BLE001 - rstream would only log it; we surface it
            self._fail(exc)

    async def _consumer_update(self, active: bool, _ctx: Any) -> schema.OffsetSpecification:
        offset = self._offset
        if self._on_activation is not None:
            try:
                offset = await self._on_activation(active)
            except Exception as exc:  # noqa: BLE001 - rstream would only log it; we surface it
                self._fail(exc)
        return offset._for_consumer_update()


async def _never_called(_message: Any, _context: Any) -> None:  # pragma: no cover
    raise AssertionError("chunks are delivered through Subscription, not per message")


# --- reference implementations for benchmarks -------------------------------------------------
async def naive_rstream_publish(
    settings: ConnectionSettings,
    super_stream: str,
    items: Sequence[tuple[str, bytes]],
    warmup: Sequence[tuple[str, bytes]] = (),
) -> float:
    """Publish the way rstream's examples do, for comparison: `SuperStreamProducer.send` per
    message (an `AMQPMessage` with the JSON body and a `symbol` property, rstream's own hash
    routing). The `warmup` ticks go first and are confirmed before the clock starts (rstream
    connects to partition leaders lazily, on the first send, and its first flush waits 0.5 s);
    returns the seconds from the first of `items` sent until all of them are confirmed."""
    import time

    from rstream import AMQPMessage, RouteType, SuperStreamProducer

    first = settings.nodes[0]
    confirmed = 0
    target = 0
    done = asyncio.Event()

    async def on_confirm(status: Any) -> None:
        nonlocal confirmed
        confirmed += 1
        if confirmed >= target:
            done.set()

    async def routing_key(message: Any) -> str:
        return str(message.application_properties["symbol"])

    async def send(batch: Sequence[tuple[str, bytes]]) -> None:
        nonlocal target
        target += len(batch)
        done.clear()
        for symbol, body in batch:
            message = AMQPMessage(body=body, application_properties={"symbol": symbol})
            await producer.send(message, on_publish_confirm=on_confirm)
        await asyncio.wait_for(done.wait(), 300)

    producer = SuperStreamProducer(
        first.host,
        first.port,
        username=settings.username,
        password=settings.password.get_secret_value(),
        vhost=settings.vhost,
        super_stream=super_stream,
        routing=RouteType.Hash,
        routing_extractor=routing_key,
    )
    with _mapped(f"naive publish to {super_stream}"):
        async with producer:
            if warmup:
                await send(warmup)
            started = time.perf_counter()
            await send(items)
            return time.perf_counter() - started
