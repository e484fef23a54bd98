"""The adapter: the only module that imports rstream. Everything else uses the typed API here.

rstream 1.1.1's traps, each handled once, here:

* reads of 256 bytes at a time (`Connection._read`): replaced by `readexactly` (one read per
  frame part), which is what makes a chunk of a thousand ticks cheap to receive;
* two offset types (`ConsumerOffsetSpecification` for subscribe, `OffsetSpecification` for the
  SAC consumer-update answer): callers use our one `Offset` type;
* raw SAC property strings, and the missing `super-stream` property that silently makes every
  partition its own group: `subscribe(..., group=..., super_stream=...)` sets all three;
* the shared default recovery strategy with 1-8 s of random jitter, which also re-subscribes only
  through the node the consumer was built with and never notices a hung node (it only logs
  missing heartbeats): rstream's recovery is off (`_NoRecovery`); `Subscription` reconnects by
  itself through any node, with short back-off, and treats 3 silent heartbeats as a lost
  connection;
* every connection bootstraps from any configured node: `_connect_any` and `Subscription` try
  them in turn, starting at the one that answered last;
* `close()` of a client whose connection broke leaves the socket open (also inside rstream's
  own connection pool), and every `close()` sleeps 0.2 s (a subscription took 1 s to stop):
  patched once, so every client closes its socket, at once;
* exceptions swallowed in callbacks (delivery and consumer-update handlers only log them): ours
  are caught, kept, and surfaced through `Subscription.failure` / the owner's error callback;
* unbounded `send()` and no re-send after recovery: we do not use rstream's producer; a
  `PartitionPublisher` writes publish frames with our own publishing ids and reports confirms,
  errors and disconnects, so the producer above can bound, re-send and deduplicate;
* confirms and deliveries decoded field by field in Python, and StreamStats not decodable at
  all (its response would kill rstream's listener): `_read_frame` decodes these with `struct`;
* a subscription whose connection dropped would be re-subscribed silently: `Subscription(on_lost=)`
  tells its owner, which may no longer be the active consumer;
* rstream's exceptions never leave this module: `_mapped()` turns them into ours.

It also holds the benchmarks' reference implementation of stock rstream usage
(`naive_rstream_publish`), since nothing else may import rstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import logging
import random
import ssl
import struct
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import rstream
import zstandard
from rstream import exceptions as rs_exc
from rstream import schema
from rstream.client import Addr, BaseClient, Client
from rstream.compression import CompressionType, ICompressionCodec, StreamCompressionCodecs
from rstream.connection import Connection, ConnectionClosed
from rstream.constants import ConsumerOffsetSpecification, OffsetType
from rstream.encoding import decode_frame
from rstream.recovery import IReliableEntity, RecoveryStrategy

from superticks.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    PermissionDenied,
    StreamError,
    StreamNotFound,
    StreamUnavailable,
    TlsError,
    TopologyError,
)
from superticks.settings import ConnectionSettings, NodeAddress
from superticks.tasks import checkpoint
from superticks.tls import client_context

__all__ = [
    "FRAME_MAX",
    "PUBLISH_FRAME_OVERHEAD",
    "Admin",
    "Chunk",
    "ChunkHeader",
    "ChunkProbe",
    "Compression",
    "NameLock",
    "Offset",
    "OffsetKind",
    "PartitionPublisher",
    "StreamInfo",
    "Subscription",
    "encode_credit_frame",
    "encode_id",
    "encode_publish_frame",
    "encode_record",
    "encode_records_frame",
    "encode_split_frame",
    "encode_sub_entry_record",
    "filter_part",
    "forget_nodes",
    "frame_runs",
    "record_middle",
]

log = logging.getLogger("superticks.streams")

FRAME_MAX = 1_048_576


# --- rstream's log lines for what this module handles itself, dropped once --------------------
class _HandledHere(logging.Filter):
    """rstream logs, at WARNING and above, two things this module handles and reports itself:

    * "Connection Closed Error", with a traceback, whenever a connection without a close
      handler of its own drops (its locator connections: every worker printed one per node
      restart); this module notices each lost connection and says so in one line
      ("subscription to ... lost; subscribing again");
    * "Leader not yet elected for stream ..., retrying...", once per attempt while a stream
      has no leader (17-21 lines a fault), though rstream itself raises and retries nothing;
      the producer and subscriptions retry and say so once ("...; reconnecting").
    """

    DROPPED: ClassVar[frozenset[str]] = frozenset(
        {"Connection Closed Error", "Leader not yet elected for stream %s, retrying..."}
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.DROPPED


logging.getLogger("rstream.client").addFilter(_HandledHere())


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


_QUIET_S = 1.0  # a connection silent this long has its silence remembered (`_quiet`)


def _quiet(conn: Connection | None) -> tuple[float, float]:
    """(when it ended, monotonic; how long it was, s) of the connection's last silence of
    `_QUIET_S` or more that a frame ended; (0, 0) for none."""
    return getattr(conn, "_superticks_quiet", (0.0, 0.0))


async def _read_frame(self: Connection) -> schema.Frame:
    """rstream's read_frame, with the two hot frames decoded by `struct` in one go instead of
    field by field: PublishConfirm (a list of publishing ids) and Deliver (a chunk). Also
    remembers the last silence of `_QUIET_S` or more that a frame ended (`_quiet`)."""
    data = await self._read_frame_raw()
    now = time.monotonic()
    heard = getattr(self, "_superticks_heard_at", now)
    self._superticks_heard_at = now  # type: ignore[attr-defined]
    if now - heard >= _QUIET_S:
        self._superticks_quiet = (now, now - heard)  # type: ignore[attr-defined]
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


# --- rstream's close(): a dead connection's socket left open, and a 0.2 s pause each --------------
async def _close_promptly(self: BaseClient) -> None:
    """What rstream's `Client.close` (1.1.1) does, without its two faults. It closed the socket
    only of a connection it still thought alive: a client whose peer vanished (or whose
    handshake failed inside rstream's pool) kept its socket for ever. And it slept 0.2 s before
    it stopped its tasks: a subscription (a locator and a data connection, each closed twice on
    the way out) took 1 s to stop, and every worker, reader and admin paid it (measured:
    `read_stored` of three partitions 1.8 s, 1.0 s of it in closes). Like rstream's `Client`
    (which stops its heartbeat first, so its base class never sends the close request), no
    close request: the tasks are cancelled and the socket closed."""
    conn = self._conn
    alive = self.is_connection_alive()
    try:
        self._is_not_closed = False
        await self.stop_task("heartbeat_sender")
        await self.stop_task("listener")
        for subscriber_id in list(self._frames):
            await self.stop_queue_listener_task(subscriber_id=subscriber_id)
        if conn is not None and alive:
            await conn.close()
        self._conn = None
        self.server_properties = None
        self._tasks.clear()
        self._handlers.clear()
    finally:
        writer = conn._writer if conn is not None else None
        if writer is not None and not writer.is_closing():
            writer.close()


BaseClient.close = _close_promptly  # type: ignore[method-assign]
Client.close = _close_promptly  # type: ignore[method-assign]


# --- heartbeats: rstream sends one per interval, the broker drops a connection after two ----------
_HEARTBEATS_PER_INTERVAL = 3


async def _heartbeat_often(self: BaseClient) -> None:
    """rstream's heartbeat sender, sending `_HEARTBEATS_PER_INTERVAL` heartbeats per negotiated
    interval instead of one. The broker drops a connection it heard nothing from for about two
    intervals; a process whose event loop is blocked (a handler computing for 4 s) sends
    nothing, so with one heartbeat per interval an idle connection (a group member's passive
    subscription) fell silent for the block plus up to one interval, and was dropped (measured:
    `bench failover --scenario busy-handler-blocking`, a 4 s block with 3 s heartbeats, lost
    idle subscriptions in 2 of 3 runs, and their group rebalanced). Like rstream's, it warns
    when the server's heartbeats stop (a subscription's watchdog acts on that)."""
    interval = self._heartbeat
    if interval == 0:
        return
    beat = 0
    while self.is_connection_alive():
        await self.send_frame(schema.Heartbeat())
        await asyncio.sleep(interval / _HEARTBEATS_PER_INTERVAL)
        beat += 1
        if (
            beat % _HEARTBEATS_PER_INTERVAL == 0
            and time.monotonic() - self._last_heartbeat > 2 * interval
        ):
            log.warning("heartbeats from %s:%s missing", self.host, self.port)


BaseClient._heartbeat_sender = _heartbeat_often  # type: ignore[method-assign]


# --- error mapping ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Access:
    """What an operation needs: `permission` (configure, write, read) on `resource`, as the
    settings' user. Named in the PermissionDenied the broker's refusal (code 16) becomes."""

    settings: ConnectionSettings
    permission: str
    resource: str


def _tls_refused(what: str, settings: ConnectionSettings | None, exc: ssl.SSLError) -> TlsError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        ca = settings.ca_file if settings is not None else None
        source = f"SUPERTICKS_CA_FILE={ca}" if ca else "the system's trust store"
        return TlsError(
            f"{what}: TLS: the server's certificate was refused ({exc.verify_message}). Check "
            f"that {source} is the CA that signed the cluster's certificates (for the compose "
            "cluster: cluster/certs/ca.pem, made by `superticks cluster up`) and that "
            "SUPERTICKS_NODES names hosts the certificates are for (localhost, 127.0.0.1, rabbitN)"
        )
    return TlsError(
        f"{what}: TLS handshake failed ({exc.reason or exc}): is this a TLS port (the compose "
        "cluster's are 5562-5564, used when SUPERTICKS_TLS=true and SUPERTICKS_NODES is unset), "
        "and does the broker accept the client certificate (SUPERTICKS_CERT_FILE)?"
    )


@contextlib.contextmanager
def _mapped(
    what: str, access: _Access | None = None, settings: ConnectionSettings | None = None
) -> Iterator[None]:
    """Turn rstream's and the socket's exceptions into ours, naming what we were doing (and,
    for a refusal, who lacked which permission on what)."""
    try:
        yield
    except rs_exc.AccessRefused:
        if access is None:
            raise StreamError(f"{what}: access refused (a permission is missing)") from None
        cfg = access.settings
        raise PermissionDenied(
            what, cfg.username, access.permission, access.resource, cfg.vhost
        ) from None
    except rs_exc.StreamDoesNotExist:
        raise StreamNotFound(f"{what}: the stream does not exist (create it first)") from None
    except (rs_exc.LeaderNotAvailable, rs_exc.StreamNotAvailable) as exc:
        raise StreamUnavailable(
            f"{what}: the stream has no leader right now ({type(exc).__name__}); a node "
            "probably just went down: retry in a moment"
        ) from None
    except rs_exc.StreamAlreadyExists:
        raise TopologyError(f"{what}: it already exists") from None
    except (rs_exc.AuthenticationFailure, rs_exc.SASLAuthenticationFailureLoopback):
        raise AuthenticationFailed(
            f"{what}: authentication failed; check SUPERTICKS_USERNAME/SUPERTICKS_PASSWORD"
        ) from None
    except rs_exc.VirtualHostAccessFailure:
        raise AuthenticationFailed(
            f"{what}: no access to the virtual host (SUPERTICKS_VHOST)"
        ) from None
    except rs_exc.PreconditionFailed as exc:
        raise TopologyError(f"{what}: precondition failed ({exc})") from None
    except (rs_exc.ServerError, rs_exc.ClientError) as exc:
        raise StreamError(f"{what}: {type(exc).__name__} {exc}") from None
    except ssl.SSLError as exc:
        raise _tls_refused(what, access.settings if access else settings, exc) from None
    except (OSError, ConnectionClosed, ConnectionError) as exc:
        hint = ""
        if (
            settings is not None
            and settings.tls
            and isinstance(exc, ConnectionResetError | ConnectionClosed | EOFError)
        ):  # what a plain listener does to a TLS hello
            hint = "; with SUPERTICKS_TLS=true the nodes must be TLS ports (compose: 5562-5564)"
        raise ConnectionFailed(
            f"{what}: connection failed ({exc or type(exc).__name__}){hint}"
        ) from None
    except TimeoutError:
        raise ConnectionFailed(f"{what}: the broker did not answer in time") from None


async def _close(client: Client) -> None:
    """Close an rstream client, also when its connection is already dead (rstream's close()
    may then fail before it closes the socket, which would leak it), when its node froze
    (after the polite attempts the socket is closed at once, unsent bytes dropped), and when
    cancelled meanwhile (the socket is closed all the same)."""
    try:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await client.close()
    finally:
        _abort(client)


_HELD_MAX = 8  # connections an Admin keeps for `Admin.seal` at most (the oldest let go)
_SEAL_TIMEOUT_S = 1.0


class _StoreFrames:
    """The store frames written on one connection, which have no answer, and what answers
    proved of them: an answer to a request written after the first n frames proves those n
    processed (one connection's frames are processed in order)."""

    __slots__ = ("_latest", "proved", "written")

    def __init__(self) -> None:
        self.written = 0
        self.proved = 0
        # per (stream, reference) with frames not proved yet: (number of its latest frame,
        # the highest offset among them)
        self._latest: dict[tuple[str, str], tuple[int, int]] = {}

    def wrote(self, stream: str, reference: str, offset: int) -> None:
        """A store frame of `offset` for (`stream`, `reference`) is being written."""
        self.written += 1
        _, highest = self._latest.get((stream, reference), (0, offset))
        self._latest[(stream, reference)] = (self.written, max(highest, offset))

    def answered(self, written_before: int) -> None:
        """An answer came to a request written after the first `written_before` frames."""
        if written_before > self.proved:
            self.proved = written_before
            self._latest = {k: v for k, v in self._latest.items() if v[0] > written_before}

    def unproved(self) -> dict[tuple[str, str], int]:
        """(stream, reference) -> the highest offset of its frames no answer proved."""
        return {pair: highest for pair, (_, highest) in self._latest.items()}


class _Held:
    """Connections an `Admin` dropped with store frames no answer proved, kept open for
    `Admin.seal` (their nodes, frozen or cut off, apply those frames when they resume), each
    with `_StoreFrames.unproved` of it: at most `limit`, the oldest let go first; one whose node
    closed it had resumed and applied its frames, and is let go."""

    def __init__(self, limit: int = _HELD_MAX) -> None:
        self.limit = limit
        self._kept: list[tuple[Client, dict[tuple[str, str], int]]] = []

    async def keep(self, client: Client, unproved: dict[tuple[str, str], int]) -> None:
        with contextlib.suppress(Exception):  # it would only say the node is silent
            await client.stop_task("heartbeat_sender")
        # the node may close it as it wakes: expected (rstream would log a traceback)
        client._connection_closed_handler = _closed_quietly
        self._kept.append((client, unproved))
        await self.prune()

    async def prune(self) -> None:
        alive = [k for k in self._kept if k[0].is_connection_alive()]
        gone = [k for k in self._kept if not k[0].is_connection_alive()]
        excess = max(0, len(alive) - self.limit)  # the oldest go
        self._kept = alive[excess:]
        for client, _ in (*gone, *alive[:excess]):
            await _let_go(client)

    def alive(self) -> list[tuple[Client, dict[tuple[str, str], int]]]:
        return [k for k in self._kept if k[0].is_connection_alive()]

    async def let_go_all(self) -> None:
        kept, self._kept = self._kept, []
        for client, _ in kept:
            await _let_go(client)


async def _closed_quietly(_info: Any) -> None:
    """A connection-closed handler for a connection nobody uses any more."""


async def _let_go(client: Client) -> None:
    """Close a connection kept for `Admin.seal`: no close request (its node may not answer)
    and no reset: what was written to the socket is still delivered, then the end of the
    connection."""
    client._is_not_closed = False  # rstream's own mark of a connection it may not use
    with contextlib.suppress(Exception):
        for task in ("heartbeat_sender", "listener"):
            await client.stop_task(task)
    conn = client._conn
    writer = conn._writer if conn is not None else None
    if writer is not None and not writer.is_closing():
        writer.close()


def _abort(client: Client) -> None:
    """Close the client's socket now, dropping what it did not send (a no-op once closed)."""
    conn = client._conn
    writer = conn._writer if conn is not None else None
    if writer is not None:
        writer.transport.abort()


async def _connect(
    settings: ConnectionSettings,
    address: NodeAddress,
    name: str,
    on_closed: Callable[[Any], Awaitable[None]] | None = None,
    *,
    last_resort: bool = True,
) -> Client:
    """A connection to `address`. Its handshake may take `connect_timeout_s`, or only a few
    seconds where another node may be tried instead (`last_resort` False) or `address` is
    silent (see `_handshake_timeout`)."""
    client = Client(
        host=address.host,
        port=address.port,
        frame_max=FRAME_MAX,
        heartbeat=settings.heartbeat_s,
        connection_name=name,
        connection_closed_handler=on_closed,
        ssl_context=client_context(settings),
    )
    timeout = _handshake_timeout(settings, address, last_resort)
    try:
        with _mapped(f"connecting to {address}", settings=settings):
            try:
                async with asyncio.timeout(timeout):
                    await client.start()
                async with asyncio.timeout(timeout):
                    await client.authenticate(
                        settings.vhost, settings.username, settings.password.get_secret_value()
                    )
            except TimeoutError:
                mark_silent(address)
                raise
    except BaseException:
        await _close(client)
        raise
    _heard(address)
    return client


# The node that answered last, per configured node list: the next connection starts there, so
# a dead first node costs one refused connection once, not on every connect.
_preferred: dict[tuple[NodeAddress, ...], int] = {}


# Nodes that went silent: a handshake that timed out, a connection that heard nothing for 3
# heartbeats, a leader whose confirms stalled. A paused, hung or cut-off node keeps accepting TCP
# connections (the port is published by a proxy; a frozen kernel still completes handshakes)
# and answers nothing, so every attempt on it would wait the whole `connect_timeout_s`, and a
# reconnect that tries the nodes in turn would wait that long on every round. A silent node is
# tried last, with a short handshake timeout, until it answers again (then it is no longer
# silent) or `_SILENT_FOR_S` passes.
_SILENT_FOR_S = 30.0
_SILENT_TIMEOUT_S = 2.0
_ROTATION_TIMEOUT_S = 1.5
_silent: dict[tuple[str, int], float] = {}


def mark_silent(address: NodeAddress | str) -> None:
    """`address` (a node, or "host:port") went silent: see `_silent` above."""
    key = _key(address)
    if key not in _silent or _silent[key] < time.monotonic():
        log.info("node %s:%d is silent: tried last, with a short timeout", *key)
    _silent[key] = time.monotonic() + _SILENT_FOR_S


def is_silent(address: NodeAddress | str) -> bool:
    """Whether `address` went silent lately (and has not answered since)."""
    until = _silent.get(_key(address))
    return until is not None and until > time.monotonic()


def _demote(settings: ConnectionSettings, address: NodeAddress | str) -> None:
    """A connection to `address` just closed (its node stops or died): the next connection
    starts at another node rather than going back to it first."""
    key = _key(address)
    for index, node in enumerate(settings.nodes):
        if (node.host, node.port) == key:
            _failed(settings, index)


def _heard(address: NodeAddress | str) -> None:
    _silent.pop(_key(address), None)


def forget_nodes(settings: ConnectionSettings) -> None:
    """Forget what this process learned of `settings`' nodes (which one answered last, which
    went silent): its next connection tries them in their configured order, each with the
    full handshake timeout. For a caller that knows better than that history, e.g. a node
    that is back after maintenance, or a test placing a connection on a chosen node."""
    _preferred.pop(settings.nodes, None)
    for address in settings.nodes:
        _heard(address)


def _key(address: NodeAddress | str) -> tuple[str, int]:
    if isinstance(address, NodeAddress):
        return address.host, address.port
    host, _, port = address.rpartition(":")
    return host, int(port)


def _handshake_timeout(
    settings: ConnectionSettings, address: NodeAddress | str, last_resort: bool = True
) -> float:
    """How long to wait for `address` to answer a handshake: `connect_timeout_s` when it is
    the last resort (the only node, or every other one timed out too), else 1.5 s
    (`_ROTATION_TIMEOUT_S`: a handshake on loopback or a LAN takes milliseconds; a node that
    does not answer in that time is down, restarting or paused, and another node is tried), and
    `_SILENT_TIMEOUT_S` for a node known to be silent."""
    if last_resort and not is_silent(address):
        return settings.connect_timeout_s
    limit = _SILENT_TIMEOUT_S if is_silent(address) else _ROTATION_TIMEOUT_S
    return min(settings.connect_timeout_s, limit)


def _last_resort(position: int, count: int, timed_out: int) -> bool:
    """Whether the `position`-th of `count` nodes tried in a round is the last resort: the last
    one, with every node before it timed out (not refused: a node that refuses answers)."""
    return position == count - 1 and timed_out == position


def _node_order(settings: ConnectionSettings) -> list[tuple[int, NodeAddress]]:
    """The configured nodes, starting at the one that answered last, then in order; silent
    nodes last."""
    nodes = settings.nodes
    start = _preferred.get(nodes, 0) % len(nodes)
    order = [((start + k) % len(nodes), nodes[(start + k) % len(nodes)]) for k in range(len(nodes))]
    return sorted(order, key=lambda item: is_silent(item[1]))  # stable: the order otherwise


def _answered(settings: ConnectionSettings, index: int) -> None:
    _preferred[settings.nodes] = index


def _failed(settings: ConnectionSettings, index: int) -> None:
    """A node that failed us: the next connection starts at the node after it."""
    if _preferred.get(settings.nodes, 0) == index:
        _preferred[settings.nodes] = (index + 1) % len(settings.nodes)


async def _connect_any(settings: ConnectionSettings, name: str) -> tuple[Client, int]:
    """A connection to the first node that answers (the last one that answered first), and
    that node's index in `settings.nodes`."""
    errors = []
    timed_out = 0
    order = _node_order(settings)
    for position, (index, address) in enumerate(order):
        last_resort = _last_resort(position, len(order), timed_out)
        try:
            client = await _connect(settings, address, name, last_resort=last_resort)
        except AuthenticationFailed:
            raise  # every node would refuse the same credentials
        except ConnectionFailed as exc:
            if isinstance(exc, TlsError):
                raise  # every node would refuse the same way
            _failed(settings, index)
            timed_out += is_silent(address)  # its handshake timed out (or it was silent)
            errors.append(str(exc))
        else:
            _answered(settings, index)
            return client, index
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
        self._node = 0
        self._subscriptions = 0
        self._frames = _StoreFrames()  # on the current connection
        self._held = _Held()

    async def start(self) -> None:
        """Connect to the first node that answers (ConnectionFailed when none does)."""
        if self._client is None:
            self._client, self._node = await _connect_any(self._settings, "superticks-admin")

    async def reconnect(self, *, silent: bool = False) -> None:
        """Drop the connection, whose node counts as failed (the next connection starts at
        another node; with `silent`, a call on it timed out: it is tried last, see
        `mark_silent`), and connect to the first node that answers.

        A connection with store frames that no answer proved processed is kept open, not
        closed: its node (frozen, or cut off) applies them when it resumes, and `seal` can
        still put a later offset behind them (see there)."""
        client, self._client = self._client, None
        if client is not None:
            _failed(self._settings, self._node)
            if silent:
                mark_silent(self._settings.nodes[self._node])
            unproved = self._frames.unproved()
            self._frames = _StoreFrames()
            if unproved:
                await self._held.keep(client, unproved)
            else:
                await _close(client)
                await self._held.prune()
        await self.start()

    async def stop(self) -> None:
        client, self._client = self._client, None
        self._frames = _StoreFrames()
        await self._held.let_go_all()
        if client is not None:
            await _close(client)

    async def seal(self, offsets: dict[tuple[str, str], int]) -> int:
        """Write, to each connection `reconnect` kept open because store frames written to
        it went unanswered, a store frame of `offsets[(stream, reference)]` for each pair it
        has such frames of, unless that offset is below one of those frames; returns how many
        frames were written.

        A store frame has no answer: one written to a node that then froze sits in that
        node's socket buffer and is applied when the node resumes, seconds or minutes later,
        setting the offset back to what it was then. The connection's frames are applied in
        order, so a frame written after them with the final offset is applied last, even when
        the node resumes after this process has exited (the socket is closed gracefully: what
        was written is delivered). The caller gives offsets it confirmed through another node,
        only for partitions it still owns."""
        written = 0
        for client, pairs in self._held.alive():  # one its node closed had resumed: applied
            for (stream, reference), highest in sorted(pairs.items()):
                offset = offsets.get((stream, reference))
                if offset is None or offset < highest:
                    continue
                with contextlib.suppress(StreamError, TimeoutError):
                    async with asyncio.timeout(_SEAL_TIMEOUT_S):
                        with _mapped(f"sealing the offset of {reference} on {stream}"):
                            await client.store_offset(stream, reference, offset)
                    written += 1
        return written

    async def __aenter__(self) -> Admin:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def _needs(self, permission: str, resource: str) -> _Access:
        return _Access(self._settings, permission, resource)

    def heard_within(self, seconds: float) -> bool:
        """Whether the connection received anything from its node in the last `seconds`
        (a store frame has no answer: one written to a node that froze is applied when the
        node resumes, so its writer may want to know that the node answers)."""
        client = self._client
        return (
            client is not None
            and client.is_connection_alive()
            and time.monotonic() - client._last_heartbeat <= seconds
        )

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
            with _mapped(f"creating stream {name}", self._needs("configure", name)):
                await self.client.create_stream(name, arguments)
        except TopologyError as exc:
            if "already exists" in str(exc):
                return False
            raise
        except PermissionDenied as refused:
            # a user that may not create it may still use it (the broker checks the
            # permission before it looks whether the stream exists)
            try:
                exists = await self.stream_exists(name)
            except PermissionDenied:
                raise refused from None
            if exists:
                return False
            raise
        return True

    async def delete_stream(self, name: str) -> bool:
        try:
            with _mapped(f"deleting stream {name}", self._needs("configure", name)):
                await self.client.delete_stream(name)
        except StreamNotFound:
            return False
        return True

    async def stream_exists(self, name: str) -> bool:
        with _mapped(f"looking up stream {name}", self._needs("read or write", name)):
            return bool(await self.client.stream_exists(name))

    async def create_super_stream(
        self, name: str, partitions: Sequence[str], arguments: dict[str, Any]
    ) -> bool:
        """Create a super stream whose partition i has binding key str(i); False if it exists."""
        try:
            with _mapped(f"creating super stream {name}", self._needs("configure", name)):
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
            with _mapped(f"deleting super stream {name}", self._needs("configure", name)):
                await self.client.delete_super_stream(name)
        except StreamNotFound:
            return False
        return True

    async def partitions(self, super_stream: str) -> list[str]:
        """The super stream's partition streams in binding-key order ([] if it does not exist)."""
        client = self.client
        request = schema.SuperStreamPartitions(
            client._corr_id_seq.next(), super_stream=super_stream
        )
        what = f"listing partitions of {super_stream}"
        with _mapped(what, self._needs("read", super_stream)):
            response = await client.sync_request(
                request, resp_schema=schema.SuperStreamPartitionsResponse, raise_exception=False
            )
            if response.response_code == rs_exc.AccessRefused.code:  # rstream would say []
                response.check_response_code()
        return list(response.streams or [])

    async def info(self, stream: str) -> StreamInfo:
        with _mapped(f"reading metadata of {stream}", self._needs("read or write", stream)):
            leader, replicas = await self.client.query_leader_and_replicas(stream)
        return StreamInfo(
            name=stream,
            leader=f"{leader.host}:{leader.port}",
            replicas=tuple(f"{r.host}:{r.port}" for r in replicas),
        )

    async def stored_offset(self, stream: str, reference: str) -> int | None:
        """The offset stored under `reference` (a consumer group's name), or None."""
        frames = self._frames
        written = frames.written
        try:
            what = f"querying offset of {reference} on {stream}"
            with _mapped(what, self._needs("read", stream)):
                stored = int(await self.client.query_offset(stream, reference))
        except StreamError as exc:
            if "OffsetNotFound" in str(exc):
                frames.answered(written)
                return None
            raise
        frames.answered(written)
        return stored

    async def store_offset(self, stream: str, reference: str, offset: int) -> None:
        """Write a store frame (it has no answer: a later `stored_offset` on this
        connection proves it processed; see `seal` for one that may not be)."""
        client = self.client
        self._frames.wrote(stream, reference, offset)
        with _mapped(f"storing offset of {reference} on {stream}"):
            await client.store_offset(stream, reference, offset)

    async def publisher_sequence(self, stream: str, reference: str) -> int:
        """The highest publishing id the stream stored for producer `reference` (0 if none)."""
        with _mapped(
            f"querying publisher sequence of {reference} on {stream}", self._needs("read", stream)
        ):
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
        with _mapped(f"reading the stats of {stream}", self._needs("read", stream)):
            await client._conn._write_frame_raw(frame)  # type: ignore[union-attr]
            response = await waiter
            response.check_response_code()
        return dict(response.stats)

    async def is_empty(self, stream: str) -> bool:
        """Whether nothing is committed in the stream (StreamStats' `committed_chunk_id`)."""
        return (await self.stats(stream)).get("committed_chunk_id", -1) < 0

    async def last_offset(self, stream: str, timeout_s: float = 5.0) -> int:
        """The offset of the stream's last message now (-1 when the stream is empty).

        StreamStats says whether anything is committed; then a subscription at LAST on this
        connection delivers the last chunk: its first offset plus its record count is one past
        the end. (Every node of the compose cluster holds a replica of every stream.)
        """
        if await self.is_empty(stream):
            return -1
        client = self.client
        self._subscriptions += 1
        sub_id = _LAST_OFFSET_IDS[self._subscriptions % len(_LAST_OFFSET_IDS)]
        result: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_deliver(frame: schema.Deliver) -> None:
            if frame.subscription_id == sub_id and not result.done():
                result.set_result(frame.chunk_first_offset + frame.num_records - 1)

        client.add_handler(schema.Deliver, on_deliver, name=str(sub_id))
        await client.run_queue_listener_task(sub_id, on_deliver)
        try:
            with _mapped(f"reading the tail of {stream}", self._needs("read", stream)):
                await client.subscribe(
                    stream, sub_id, schema.OffsetSpec.from_params(OffsetType.LAST, None), 1
                )
                try:
                    async with asyncio.timeout(timeout_s):
                        return await result
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
_LAST_BYTE = [bytes((i,)) for i in range(256)]
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


def encode_split_frame(
    publisher_id: int,
    runs: Sequence[tuple[Sequence[int], Sequence[bytes], Sequence[bytes]]],
    version: int = 2,
) -> tuple[bytes, bytes]:
    """A publish frame of records held in parts, without joining each record first: in each
    run (ids, heads, bodies), record k is the 8-byte id `ids[k]`, then `heads[k]` (for a v2
    record: the filter value, the message size and the message's head, see `record_middle`),
    then `bodies[k]`. Returns the frame's head and its records, to be written one after the
    other (`PartitionPublisher.write(head, records)`): together the bytes
    `encode_records_frame` makes of the joined records, with one copy of each record. The
    caller checks their size against `FRAME_MAX`."""
    count = sum(len(ids) for ids, _, _ in runs)
    # Four parts a record, interleaved by slice assignment (no Python loop per record): the
    # id's first 7 bytes, its last byte, head, body. Consecutive ids share their first 7
    # bytes within each block of 256, and the last byte comes from a table, so the ids of a
    # `range` cost no allocation per record.
    parts: list[bytes] = [b""] * (4 * count)
    at = 0
    for ids, heads, bodies in runs:
        if not len(ids) == len(heads) == len(bodies):
            raise ValueError("a run needs one id, head and body per record")
        end = at + 4 * len(ids)
        if isinstance(ids, range) and ids.step == 1:
            pos, first = at, ids.start
            while pos < end:
                block = min((end - pos) // 4, 256 - (first & 0xFF))
                stop = pos + 4 * block
                parts[pos:stop:4] = [(first >> 8).to_bytes(7, "big")] * block
                parts[pos + 1 : stop : 4] = _LAST_BYTE[first & 0xFF : (first & 0xFF) + block]
                first += block
                pos = stop
        else:
            parts[at:end:4] = map(_ID.pack, ids)  # the id whole; parts[at + 1::4] stay b""
        parts[at + 2 : end : 4] = heads
        parts[at + 3 : end : 4] = bodies
        at = end
    records = b"".join(parts)
    head = b"".join(
        (
            _LEN.pack(9 + len(records)),
            _PUBLISH_V2 if version == 2 else _PUBLISH_V1,
            publisher_id.to_bytes(1, "big"),
            _LEN.pack(count),
        )
    )
    return head, records


PUBLISH_FRAME_OVERHEAD = 13
"""Bytes of a publish frame around its records: size, key, version, publisher id, count."""


def frame_runs(records: Sequence[bytes], frame_max: int = FRAME_MAX) -> list[Sequence[bytes]]:
    """`records` cut into consecutive runs whose publish frame fits `frame_max` (the broker
    closes a connection that sends a larger frame). A record too large for any frame on its
    own gets a run of its own: the caller must have refused it (`TickTooLarge`)."""
    if sum(map(len, records)) + PUBLISH_FRAME_OVERHEAD <= frame_max:
        return [records]
    runs: list[Sequence[bytes]] = []
    run: list[bytes] = []
    size = PUBLISH_FRAME_OVERHEAD
    for record in records:
        if run and size + len(record) > frame_max:
            runs.append(run)
            run, size = [], PUBLISH_FRAME_OVERHEAD
        run.append(record)
        size += len(record)
    if run:
        runs.append(run)
    return runs


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
        locator, _ = await _connect_any(self._settings, f"superticks-locator-{self.reference}")
        try:
            what = f"locating the leader of {self.stream}"
            with _mapped(what, _Access(self._settings, "read or write", self.stream)):
                leader, _ = await locator.query_leader_and_replicas(self.stream)
        finally:
            await _close(locator)
        address = NodeAddress(host=leader.host, port=leader.port)
        client = await _connect(  # no last resort: on a timeout, ask for the leader again
            self._settings,
            address,
            f"superticks-producer-{self.reference}",
            self._closed,
            last_resort=False,
        )
        client.add_stream(self.stream)  # so rstream reports the connection's loss to us
        client.add_handler(schema.PublishConfirm, self._confirmed, name="superticks")
        client.add_handler(schema.PublishError, self._refused, name="superticks")
        client.add_handler(schema.MetadataUpdate, self._metadata, name="superticks")
        what = f"declaring producer {self.reference} on {self.stream}"
        try:
            with _mapped(what, _Access(self._settings, "write", self.stream)):
                await client.declare_publisher(self.stream, self.reference, self.PUBLISHER_ID)
            with _mapped(what, _Access(self._settings, "read", self.stream)):
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

    async def stop(self, *, silent: bool = False) -> None:
        """Close the connection (without deleting the publisher: its sequence stays stored).
        With `silent`, the leader stopped answering (confirms stalled): it is tried with a
        short timeout until it answers again (see `mark_silent`)."""
        if silent and self.leader:
            mark_silent(self.leader)
        client, self._client, self._writer = self._client, None, None
        self.connected = False
        if client is not None:
            await _close(client)

    def write(self, *frame: bytes) -> None:
        """Queue one encoded publish frame (see `encode_publish_frame`) on the socket, whole or
        as consecutive parts (`encode_split_frame`: one system call for all of them)."""
        writer = self._writer
        if writer is None or not self.connected:
            raise ConnectionFailed(f"publisher {self.reference} has no connection")
        try:
            if writer.is_closing():  # closed under us, before rstream reported it
                raise ConnectionResetError("the socket is closed")
            if len(frame) == 1:
                writer.write(frame[0])
            else:
                writer.writelines(frame)
        except (ConnectionError, OSError, RuntimeError) as exc:  # uvloop: RuntimeError
            self._lose(f"socket closed while writing ({exc})")
            raise ConnectionFailed(f"publisher {self.reference} lost its connection") from None

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
        if self.leader:
            _demote(self._settings, self.leader)
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


_ENTRY_HEAD = struct.Struct(">I")
_SUB_ENTRY = struct.Struct(">BHII")  # in a chunk: type, messages, uncompressed size, size


def _split_chunk(data: bytes, entries: int) -> list[bytes]:
    """Messages of a chunk: of its simple entries and of its sub-entry batches, uncompressed
    or gzip- or zstd-compressed. Raises ValueError for a truncated chunk or another
    compression (the caller then lets rstream read it)."""
    out: list[bytes] = []
    append = out.append
    pos = 0
    head = _ENTRY_HEAD.unpack_from
    try:
        for _ in range(entries):
            (size,) = head(data, pos)  # one call: no slice, no int.from_bytes
            if size & 0x80000000:
                pos = _split_sub_entry(data, pos, out)
                continue
            pos += 4
            append(data[pos : pos + size])
            pos += size
    except struct.error:
        raise ValueError("truncated chunk") from None
    return out


def _split_sub_entry(data: bytes, pos: int, out: list[bytes]) -> int:
    """Append the messages of the sub-entry batch at `pos` to `out`; returns where the next
    entry starts. Uncompressed messages are sliced from `data` itself."""
    kind, count, raw_size, size = _SUB_ENTRY.unpack_from(data, pos)
    pos += _SUB_ENTRY.size
    end: int = pos + size
    if end > len(data):
        raise ValueError("truncated chunk")
    codec = (kind & 0x70) >> 4
    if codec == Compression.NONE.value:
        raw, at, stop = data, pos, end
    elif codec == Compression.GZIP.value:
        raw, at = gzip.decompress(data[pos:end]), 0
        stop = len(raw)
    elif codec == Compression.ZSTD.value:
        raw, at = _ZstdCodec().uncompress(data[pos:end], raw_size), 0
        stop = len(raw)
    else:
        raise ValueError(f"sub-entry compression {codec}")
    unpack = _LEN.unpack_from
    append = out.append
    for _ in range(count):
        (length,) = unpack(raw, at)
        at += 4
        if at + length > stop:
            raise ValueError("truncated sub-entry batch")
        append(raw[at : at + length])
        at += length
    return end


class _NoRecovery(RecoveryStrategy):
    """rstream's own re-subscription is off: it re-subscribes through the node the consumer was
    built with (a dead first node stays dead for it), may hang on a hung node, and leaves a
    half-made subscriber behind when a retry fails. `Subscription` reconnects by itself."""

    def __init__(self) -> None:
        super().__init__(enable=False, max_retries=0)

    async def recover(
        self,
        entity: IReliableEntity,
        stream: str,
        error: Exception,
        attempt: int,
        recovery_fun: Callable[[], Awaitable[Any]],
    ) -> None:
        return None


_CREDIT_FRAME = struct.Struct(">IHHBH")


def encode_credit_frame(subscription_id: int, credit: int) -> bytes:
    """A Credit frame (key 0x0009, version 1): the broker may send `credit` more chunks to
    subscription `subscription_id`."""
    return _CREDIT_FRAME.pack(7, 0x0009, 1, subscription_id, credit)


class _ChunkConsumer(rstream.Consumer):
    """rstream's Consumer, delivering whole chunks to one callback instead of per message.

    Credits go back `credit_batch` chunks at a time, as one raw Credit frame written without
    waiting (rstream's `credit()` encodes field by field and writes, a system call, per chunk:
    a tenth of a worker's time on chunks of ~150 ticks)."""

    chunk_callbacks: dict[str, Callable[[Chunk], Awaitable[None]]]
    credit_batch: int = 1
    _owed: int = 0

    async def _on_deliver(self, frame: schema.Deliver, subscriber: Any, filter_value: Any) -> None:
        if frame.subscription_id != subscriber.subscription_id:
            return
        first = frame.chunk_first_offset
        try:
            messages = _split_chunk(frame.data, frame.num_entries)
        except (ValueError, IndexError):
            messages = frame.get_messages()  # a compression only rstream reads
        start = 0
        if subscriber.offset_type is OffsetType.OFFSET and subscriber.offset > first:
            start = min(subscriber.offset - first, len(messages))
        if start < len(messages):
            subscriber.offset = first + frame.num_records
            chunk = Chunk(
                subscriber.stream,
                first + start,
                frame.timestamp,
                messages[start:],
                frame.num_records,
            )
            await self.chunk_callbacks[subscriber.stream](chunk)
        # else: wholly before the offset asked for (a newly active SAC member may be sent
        # chunks from thousands of offsets earlier): nothing to deliver, and the offset asked
        # for stays (rstream set it back to this chunk's end, letting the rest through).
        # Credit only after the chunk was handed over: a slow owner slows the broker down.
        owed = self._owed + 1
        if owed < self.credit_batch:
            self._owed = owed
            return
        self._owed = 0
        conn = subscriber.client._conn
        writer = conn._writer if conn is not None else None
        if writer is not None and not writer.is_closing():
            writer.write(encode_credit_frame(subscriber.subscription_id, owed))

    data_nodes: dict[str, str]
    """Stream -> the node ("host:port") its subscription reads from (a replica, else the
    leader), once chosen."""
    handshake_timeout: Callable[[str], float]
    """How long a node may take to answer a handshake (see `_handshake_timeout`)."""
    timed_out = False
    """Whether a handshake of this consumer timed out."""

    read_from_leader = False
    """Read from the stream's leader rather than from a replica (see `Subscription`)."""

    async def _get_or_create_client(self, stream: str) -> Client:
        """rstream's, choosing the node to read from: the leader (`read_from_leader`), else a
        replica that is not silent (rstream picks any replica at random: a paused one would
        hang the subscription for the whole connect timeout), with a short handshake timeout
        for a silent one."""
        if stream in self._clients:
            return self._clients[stream]
        locator = await self.default_client
        leader, replicas = await locator.query_leader_and_replicas(stream)
        candidates = [leader] if self.read_from_leader else list(replicas) or [leader]
        heard = [b for b in candidates if not is_silent(f"{b.host}:{b.port}")]
        broker = random.choice(heard or candidates)
        address = f"{broker.host}:{broker.port}"
        self.data_nodes[stream] = address
        try:
            async with asyncio.timeout(self.handshake_timeout(address)):
                client = await self._pool.get(
                    addr=Addr(broker.host, broker.port),
                    connection_closed_handler=self._on_connection_closed,
                    connection_name=self._connection_name,
                    stream=stream,
                    max_clients_by_connections=self._max_subscribers_by_connection,
                    locator_request=False,
                )
        except TimeoutError:
            mark_silent(address)
            self.timed_out = True
            raise
        _heard(address)
        self._clients[stream] = client
        return client

    def last_heard_s(self, stream: str) -> float | None:
        """Seconds since the connection carrying `stream` last received anything (None: none)."""
        client = self._clients.get(stream)
        if client is None or not client.is_connection_alive():
            return None
        return time.monotonic() - client._last_heartbeat

    def last_silence(self, stream: str) -> tuple[float, float]:
        """(when it ended, how long it was) of the last silence of `_QUIET_S` or more of the
        connection carrying `stream` (see `_quiet`)."""
        client = self._clients.get(stream)
        return _quiet(client._conn if client is not None else None)


class Subscription:
    """A subscription to one stream delivering `Chunk`s, optionally in a SAC group.

    With `group` set the subscription joins the single-active-consumer group `group` (for the
    super stream `super_stream`, so partitions spread over the group). `on_activation(active)`
    is awaited when the broker makes this subscription active (True: return the `Offset` to
    start from) or passive (False: store what you processed; the return value is ignored).
    If `on_activation` raises a `StreamError` (it could not read what it needs, e.g. a stored
    offset, because a node is down), the subscription is treated as lost and made again, so
    the broker activates this or another member anew. Any other exception from a callback is
    recorded in `failure` and reported to `on_failure`.

    Connections: `start()` connects through the configured nodes in turn (the last one that
    answered first), so any one node down does not matter. When the connection drops, the
    stream's leader or replicas move (metadata update), or the node goes silent (no heartbeat
    or frame for 3 heartbeats: a hung or paused node), `on_lost()` is called (whatever the
    broker had made this subscription, it no longer is) and the subscription is made again on
    any node that answers, with back-off (0.1 s steps up to 1 s), for as long as it lives or
    until `give_up_after_s` passes without a connection (then `on_failure(ConnectionFailed)`).
    A plain subscription resumes after the last chunk it delivered; a chunk being delivered is
    never cut off by a reconnect (the reconnect waits for it). A group member reads from the
    stream's leader (a plain subscription from a replica): the broker keeps an active member
    whose node died active for its SAC disconnected timeout (60 s) unless that node led the
    stream, which then restarts and forms its group anew. A node known to be silent (see
    `mark_silent`) is tried last, and read from only when no other will do. A chunk that
    arrives after this process did not run for 2 heartbeats (frozen, or a handler that blocked
    the event loop) is not delivered: the subscription counts as lost and is made again (the
    broker drops a connection silent for ~2.7 heartbeats and activates another member).

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
        give_up_after_s: float | None = None,
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
        self._filter_values = list(filter_values) if filter_values is not None else None
        self._match_unfiltered = match_unfiltered
        self._give_up_after_s = give_up_after_s
        self._consumer: _ChunkConsumer | None = None
        self._generation = 0  # of the consumer in use; callbacks of older ones are ignored
        self._delivering = asyncio.Lock()  # held while a chunk is handed to the owner
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconnecting = False
        self._stopped = False
        self.failure: BaseException | None = None
        self.reconnects = 0
        self.node = ""  # the node the subscription was made through
        self._alive_at = time.monotonic()  # when the watchdog last ran (see `_deliver`)
        self._opened_at = self._alive_at  # when the current consumer subscribed

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, *, leaderless_s: float | None = None) -> None:
        """Subscribe through the first node that answers, retrying for up to
        `connect_timeout_s` while no node answers or the stream has no leader (a node just went
        down), or for up to `leaderless_s` (`math.inf`: for as long as it takes) while nodes
        answer but the stream has no leader yet (its leader is being elected or started: a
        new or moved stream right after a node fault), with a warning every
        `connect_timeout_s`. Raises ConnectionFailed / StreamUnavailable after that,
        StreamNotFound when the stream does not exist. Cancelling closes what was made."""
        started = time.monotonic()
        patience = self._settings.connect_timeout_s
        warned_at = started
        attempt = 0
        while True:
            try:
                await self._open(self._offset)
            except (AuthenticationFailed, TlsError):
                raise  # no retry makes credentials or certificates right
            except (ConnectionFailed, StreamUnavailable) as exc:
                now = time.monotonic()
                limit = patience
                if isinstance(exc, StreamUnavailable) and leaderless_s is not None:
                    limit = max(patience, leaderless_s)
                if now - started > limit:
                    raise
                if now - warned_at > patience:
                    warned_at = now
                    log.warning(
                        "%s: not subscribed after %.0f s (%s); trying on",
                        self.stream,
                        now - started,
                        exc,
                    )
                attempt += 1
                await asyncio.sleep(min(0.1 * attempt, 1.0))
                continue
            break
        self._spawn(self._watch(), "watch")

    async def stop(self) -> None:
        """Unsubscribe and close; safe twice. Waits (up to 5 s) for a chunk being delivered."""
        self._stopped = True
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._delivering.acquire()
                    self._delivering.release()
            await _close_consumer(consumer)

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- connecting ------------------------------------------------------------------------
    def _consumer_for(self, address: NodeAddress, generation: int) -> _ChunkConsumer:
        consumer = _ChunkConsumer(
            address.host,
            address.port,
            username=self._settings.username,
            password=self._settings.password.get_secret_value(),
            vhost=self._settings.vhost,
            heartbeat=self._settings.heartbeat_s,
            connection_name=f"superticks-{self._name}",
            recovery_strategy=_NoRecovery(),
            on_close_handler=functools.partial(self._closed, generation),
            ssl_context=client_context(self._settings),
        )
        consumer.chunk_callbacks = {self.stream: functools.partial(self._deliver, generation)}
        consumer.data_nodes = {}
        # A group member reads from the leader: when a node that only holds a replica dies,
        # the broker keeps an active member connected through it active, "disconnected", for
        # its SAC disconnected timeout (60 s), and nobody else is activated meanwhile; when the
        # leader's node dies, the stream restarts and its group is formed anew at once.
        consumer.read_from_leader = self._group is not None
        consumer.handshake_timeout = functools.partial(_handshake_timeout, self._settings)
        # half the window at a time: at least half of it stays in flight
        consumer.credit_batch = max(1, self._credit // 2)
        return consumer

    async def _open(self, offset: Offset) -> None:
        """Subscribe through the nodes in turn; on success the new consumer is current."""
        properties: dict[str, str] | None = None
        listener = None
        if self._group is not None:
            properties = {"single-active-consumer": "true", "name": self._group}
            if self._super_stream is not None:
                properties["super-stream"] = self._super_stream
        errors = []
        timed_out = 0
        order = _node_order(self._settings)
        for position, (index, address) in enumerate(order):
            self._generation += 1
            generation = self._generation
            if self._group is not None:
                listener = functools.partial(self._consumer_update, generation)
            consumer = self._consumer_for(address, generation)
            consumer.handshake_timeout = functools.partial(
                _handshake_timeout,
                self._settings,
                last_resort=_last_resort(position, len(order), timed_out),
            )
            filter_input = (
                rstream.FilterConfiguration(
                    list(self._filter_values), match_unfiltered=self._match_unfiltered
                )
                if self._filter_values is not None
                else None
            )
            try:
                with _mapped(
                    f"subscribing to {self.stream} through {address}",
                    _Access(self._settings, "read", self.stream),
                ):
                    async with asyncio.timeout(self._settings.connect_timeout_s):
                        try:
                            async with asyncio.timeout(consumer.handshake_timeout(address)):
                                await consumer.start()
                        except TimeoutError:
                            mark_silent(address)
                            consumer.timed_out = True
                            raise
                        _heard(address)
                        await consumer.subscribe(
                            self.stream,
                            callback=_never_called,
                            offset_specification=offset._for_subscribe(),
                            initial_credit=self._credit,
                            properties=dict(properties) if properties is not None else None,
                            subscriber_name=self._group,
                            consumer_update_listener=listener,
                            filter_input=filter_input,
                        )
            except (AuthenticationFailed, TlsError):
                await _close_consumer(consumer)
                raise  # every node would refuse the same way
            except (ConnectionFailed, StreamUnavailable) as exc:
                await _close_consumer(consumer)
                _failed(self._settings, index)
                timed_out += consumer.timed_out
                errors.append(str(exc))
                continue
            except BaseException as exc:
                await _close_consumer(consumer)
                if isinstance(exc, ValueError) and filter_input is not None:
                    # rstream's way of saying the broker cannot filter
                    raise StreamError(
                        f"subscribing to {self.stream} with a filter: {exc}"
                    ) from None
                raise
            _answered(self._settings, index)
            self._consumer = consumer
            self.node = str(address)
            self._alive_at = self._opened_at = time.monotonic()
            return
        raise ConnectionFailed(
            f"subscribing to {self.stream}: no node answered: " + "; ".join(errors)
        )

    def _closed(self, generation: int, info: Any) -> None:
        """rstream: the connection carrying the stream closed, or its metadata changed."""
        if generation == self._generation and self.stream in (getattr(info, "streams", None) or ()):
            reason = str(getattr(info, "reason", "connection closed"))
            consumer = self._consumer
            node = consumer.data_nodes.get(self.stream, self.node) if consumer else self.node
            if consumer is not None and "metadata" not in reason.lower():
                _demote(self._settings, node)
            self._lose(f"{reason}, {node}")

    def resubscribe(self, why: str) -> None:
        """Treat the subscription as lost (`why` is logged): the owner is told (`on_lost`), and
        it is made again, so the broker decides anew which member is active, and from where."""
        self._lose(why)

    def _lose(self, why: str) -> None:
        """The current consumer is gone: tell the owner, then subscribe again (owned task)."""
        if self._stopped or self._reconnecting:
            return
        self._reconnecting = True
        self._generation += 1  # chunks and updates still arriving on the old one are ignored
        log.warning("subscription to %s lost (%s); subscribing again", self.stream, why)
        if self._on_lost is not None:
            self._on_lost()
        self._spawn(self._reconnect(), "reconnect")

    async def _reconnect(self) -> None:
        old, self._consumer = self._consumer, None
        if old is not None:
            async with self._delivering:  # never cut a chunk off in the middle
                pass
            # Its connections are closed without a word: the broker drops a closed
            # connection's subscriptions (and moves a group's partition on) by itself, while
            # rstream's unsubscribe and close request each wait up to 5 s for an answer that
            # a lost connection never gives. Measured: after a metadata update (the broker had
            # dropped the subscription) a group went 5.6 s unhandled; after a node froze, the
            # subscription was made again 5 s after its silent connection was given up.
            await _close_consumer(old, unsubscribe=False)
        started = time.monotonic()
        attempt = 0
        while not self._stopped:
            checkpoint()
            attempt += 1
            try:
                await self._open(self._offset)
            except StreamNotFound as exc:
                self._fail(exc)
                return
            except StreamError as exc:
                waited = time.monotonic() - started
                if self._give_up_after_s is not None and waited > self._give_up_after_s:
                    self._fail(
                        ConnectionFailed(
                            f"gave up on {self.stream} after {waited:.0f} s without a "
                            f"connection (give-up time {self._give_up_after_s:g} s): {exc}"
                        )
                    )
                    return
                log.info(
                    "subscribing to %s again failed (attempt %d): %s", self.stream, attempt, exc
                )
                await asyncio.sleep(min(0.1 * attempt, 1.0))
                continue
            self.reconnects += 1
            log.info("subscribed to %s again through %s", self.stream, self.node)
            break
        self._reconnecting = False

    async def _watch(self) -> None:
        """Owned task: a connection that hears nothing for 3 heartbeats is dead (a paused or
        hung node keeps the TCP connection open; rstream only logs the missing heartbeats)."""
        limit = 3 * self._settings.heartbeat_s
        while True:
            checkpoint()
            await asyncio.sleep(self._settings.heartbeat_s / 4)
            if self.stalled():
                continue  # lost: subscribing again
            self._alive_at = time.monotonic()
            consumer = self._consumer
            if consumer is None or self._reconnecting:
                continue
            silent = consumer.last_heard_s(self.stream)
            if silent is not None and silent > limit:
                node = consumer.data_nodes.get(self.stream, self.node)
                mark_silent(node)  # reconnect through another node first
                self._lose(f"nothing heard from {node} for {silent:.1f} s")

    def stalled(self) -> bool:
        """Whether this process did not run for 2 heartbeats (frozen: SIGSTOP, a suspended VM,
        a handler that blocked the event loop): the broker has dropped the connection or will
        (~2.7 heartbeats) and activated another member, so a chunk still in hand from before
        is not ours to handle. Then the subscription counts as lost (subscribed again: the
        broker decides anew), whichever of the watchdog, a delivery and the owner asks first.
        A delivery asks before the owner gets the chunk; an owner asks again right before it
        acts on the chunk, since the freeze may have come in between (while the chunk waited
        for the owner's lock, or was being decoded)."""
        stalled = time.monotonic() - self._alive_at
        if stalled <= 2 * self._settings.heartbeat_s or self._stopped:
            return False
        self._alive_at = time.monotonic()
        if not self._reconnecting:
            self._lose(f"this process did not run for {stalled:.1f} s")
        return True

    def _woke_from_silence(self) -> bool:
        """Whether the connection carrying the stream was silent for 2 heartbeats or more
        since the subscription was made, and then spoke again. Its node's side was blocked
        meanwhile (measured: after another node was killed, connections on the nodes that
        did not fail waited ~7 s on the stream coordinator), so the broker missed our
        heartbeats: it drops the connection as it wakes, and activates another member, which
        resumes from the stored offset. The chunks the node sent as it woke would be handled
        twice: the subscription counts as lost instead, and is made again (as `stalled`)."""
        consumer = self._consumer
        if consumer is None:
            return False
        ended, silent = consumer.last_silence(self.stream)
        if silent <= 2 * self._settings.heartbeat_s or ended < self._opened_at:
            return False
        if not self._reconnecting:
            node = consumer.data_nodes.get(self.stream, self.node)
            self._lose(f"{node} was silent for {silent:.1f} s, then sent again")
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"subscription-{self.stream}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- callbacks -------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            log.error("subscription to %s failed: %r", self.stream, exc)
            if self._on_failure is not None:
                self._on_failure(exc)

    async def _deliver(self, generation: int, chunk: Chunk) -> None:
        if self.failure is not None or generation != self._generation:
            return
        if self.stalled() or self._woke_from_silence():
            return
        async with self._delivering:
            if generation != self._generation:
                return
            try:
                await self._on_chunk(chunk)
            except Exception as exc:  # noqa: BLE001 - rstream would only log it; we surface it
                self._fail(exc)
                return
            if self._group is None:  # a plain subscription resumes after what it delivered
                self._offset = Offset.at(chunk.first_offset + len(chunk.messages))

    async def _consumer_update(
        self, generation: int, active: bool, _ctx: Any
    ) -> schema.OffsetSpecification:
        offset = self._offset
        if self._on_activation is not None and generation == self._generation:
            try:
                offset = await self._on_activation(active)
            except StreamError as exc:
                self._lose(f"activation failed: {exc}")
            except Exception as exc:  # noqa: BLE001 - rstream would only log it; we surface it
                self._fail(exc)
        return offset._for_consumer_update()


async def _close_consumer(consumer: _ChunkConsumer, *, unsubscribe: bool = True) -> None:
    """Close a consumer, also when its connections are dead (never raises). Without
    `unsubscribe` (the broker dropped the subscriptions already), its connections are closed
    without a word to the broker: no unsubscribe and no close request, each of which rstream
    would wait up to 5 s for; their delivery tasks are stopped and their sockets closed."""
    consumer._recovery_strategy.disable()  # type: ignore[no-untyped-call]
    # its connections, collected before close() forgets them
    pooled = [c for clients in consumer._pool._clients.values() for c in clients]
    everyone = (*pooled, *consumer._clients.values(), consumer._default_client)
    clients = {client for client in everyone if client is not None}
    try:
        if not unsubscribe:
            for client in clients:
                client._is_not_closed = False  # rstream's own mark of a broken connection
                for subscriber_id in list(client._frames):  # what unsubscribing would stop
                    with contextlib.suppress(Exception):
                        await client.stop_queue_listener_task(subscriber_id)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await consumer.close()
        for client in clients:
            await _close(client)  # rstream leaves a dead connection's socket open
    finally:  # also when cancelled meanwhile (the owner stopped): no socket is left open
        for client in clients:
            _abort(client)


async def _never_called(_message: Any, _context: Any) -> None:  # pragma: no cover
    raise AssertionError("chunks are delivered through Subscription, not per message")


# --- reference implementations for benchmarks -------------------------------------------------
async def naive_rstream_publish(
    settings: ConnectionSettings,
    super_stream: str,
    items: Sequence[tuple[str, bytes]],
    warmup: Sequence[tuple[str, bytes]] = (),
    on_window: Callable[[bool], None] | None = None,
) -> float:
    """Publish the way rstream's examples do, for comparison: `SuperStreamProducer.send` per
    message (an `AMQPMessage` with the JSON body and a `symbol` property, rstream's own hash
    routing). The `warmup` ticks go first and are confirmed before the clock starts (rstream
    connects to partition leaders lazily, on the first send, and its first flush waits 0.5 s);
    returns the seconds from the first of `items` sent until all of them are confirmed.
    `on_window(True)` / `on_window(False)` are called as that timed window opens and closes
    (the caller's CPU meter)."""
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
        async with asyncio.timeout(300):
            await done.wait()

    producer = SuperStreamProducer(
        first.host,
        first.port,
        username=settings.username,
        password=settings.password.get_secret_value(),
        vhost=settings.vhost,
        super_stream=super_stream,
        routing=RouteType.Hash,
        routing_extractor=routing_key,
        ssl_context=client_context(settings),
    )
    with _mapped(f"naive publish to {super_stream}"):
        async with producer:
            if warmup:
                await send(warmup)
            if on_window is not None:
                on_window(True)
            started = time.perf_counter()
            await send(items)
            seconds = time.perf_counter() - started
            if on_window is not None:
                on_window(False)
            return seconds


# --- a name held by one live process, arbitrated by the broker ---------------------------------
class NameLock:
    """Holds `name` for as long as this object runs, arbitrated by the broker: the lock is a
    single-active-consumer group of its own (`name`) on `stream`. The broker makes exactly one
    member of a group active, in the order members registered (the SAC coordinator serializes
    registrations cluster-wide), so of two processes that start at the same instant exactly one
    holds the name; the other is a passive member and is activated when the holder's
    connection closes (at once on a clean exit or a killed process; after ~3 missed heartbeats
    for a hung or cut-off host).

    The member reads nothing: it subscribes at NEXT with a stream filter value no message
    carries and `match-unfiltered=false`, so the broker skips every chunk (its offset lag stays
    ~0 and no data crosses the wire); a rare Bloom-filter false positive is discarded.

    `acquire(timeout_s)` connects to the first node that answers, joins the group and waits up
    to `timeout_s` for the broker to activate it: True, or False after leaving the group. While
    running, a lost connection (or a deactivation) clears `held`; the lock reconnects by itself
    (short back-off, for as long as it runs) and rejoins, and `held` is set again once the broker
    activates it (when it has dropped the lost member: the rejoined one is next in line).
    `on_change(held)` is called on every change after acquire. `release()` leaves
    the group and closes; safe twice. Cancelling `acquire` releases.
    """

    FILTER_VALUE = "superticks.name-lock"  # never a symbol: no message carries it
    SUBSCRIPTION_ID = 0

    def __init__(
        self,
        settings: ConnectionSettings,
        stream: str,
        name: str,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._settings = settings
        self.stream = stream
        self.name = name
        self._on_change = on_change
        self.held = asyncio.Event()
        self._client: Client | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._running = False

    async def acquire(self, timeout_s: float) -> bool:
        """Join the group and wait up to `timeout_s` to be its active member. A stream without
        a leader at that moment (just created, or its node just went down) is asked again
        within the same `timeout_s`; StreamUnavailable if it has none by then."""
        self._running = True
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    await self._join()
                    break
                except StreamUnavailable:
                    await self._leave()
                    if time.monotonic() >= deadline:
                        raise
                    await asyncio.sleep(0.1)
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self.held.wait()
        except TimeoutError:
            await self.release()
            return False
        except BaseException:
            await self.release()
            raise
        self._keeper = asyncio.create_task(self._keep(), name=f"name-lock-{self.name}")
        return True

    async def release(self) -> None:
        self._running = False
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        await self._leave()
        self.held.clear()

    async def __aenter__(self) -> NameLock:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.release()

    async def _join(self) -> None:
        self._lost.clear()
        client, _ = await _connect_any(self._settings, f"superticks-lock-{self.name}")
        self._client = client
        client.add_stream(self.stream)  # so rstream reports the connection's loss to us
        client.add_handler(
            schema.ConsumerUpdateResponse, self._consumer_update, name=str(self.SUBSCRIPTION_ID)
        )
        client.add_handler(schema.Deliver, self._deliver, name=str(self.SUBSCRIPTION_ID))
        await client.run_queue_listener_task(self.SUBSCRIPTION_ID, self._deliver)
        client._connection_closed_handler = self._closed
        properties = {
            "single-active-consumer": "true",
            "name": self.name,
            "filter.0": self.FILTER_VALUE,
            "match-unfiltered": "false",
        }
        what = f"joining the name lock {self.name} on {self.stream}"
        with _mapped(what, _Access(self._settings, "read", self.stream)):
            await client.subscribe(
                self.stream,
                self.SUBSCRIPTION_ID,
                schema.OffsetSpec.from_params(OffsetType.NEXT, None),
                1,
                properties,
            )

    async def _leave(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            if client.is_connection_alive():
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await client.unsubscribe(self.SUBSCRIPTION_ID)
            await _close(client)

    async def _keep(self) -> None:
        """Rejoin after a lost connection, for as long as the lock runs."""
        delay = 0.1
        while self._running:
            checkpoint()
            await self._lost.wait()
            self._set_held(False)
            await self._leave()
            try:
                await self._join()
                delay = 0.1
            except (ConnectionFailed, StreamError) as exc:
                log.info("lock %s: rejoining failed (%s); retrying", self.name, exc)
                await self._leave()
                self._lost.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _set_held(self, held: bool) -> None:
        if held == self.held.is_set():
            return
        if held:
            self.held.set()
        else:
            self.held.clear()
        if self._keeper is not None and self._on_change is not None:
            self._on_change(held)

    async def _consumer_update(self, frame: schema.ConsumerUpdateResponse) -> None:
        if frame.subscription_id != self.SUBSCRIPTION_ID or self._client is None:
            return
        with contextlib.suppress(Exception):
            await self._client.consumer_update(
                frame.correlation_id, schema.OffsetSpecification(OffsetType.NEXT, 0)
            )
        self._set_held(bool(frame.active))

    async def _deliver(self, frame: schema.Deliver) -> None:
        client = self._client
        if frame.subscription_id == self.SUBSCRIPTION_ID and client is not None:
            with contextlib.suppress(Exception):
                await client.credit(self.SUBSCRIPTION_ID, 1)  # a false positive: drop it

    async def _closed(self, _info: Any) -> None:
        self._lost.set()


# --- one-chunk reads, for monitoring ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """What a delivered chunk says about itself: its offsets and when it was stored."""

    stream: str
    first_offset: int
    record_count: int
    timestamp_ms: int  # when the broker wrote the chunk (ms since the epoch)

    @property
    def last_offset(self) -> int:
        return self.first_offset + self.record_count - 1


_LAST_OFFSET_IDS = range(201, 251)
"""The subscription ids `Admin.last_offset` takes on its connection: apart from a `ChunkProbe`'s
on the same connection (0-199, and 200, the name its deliveries are queued under; sharing 200
removed the probe's delivery handler when a read of the tail ended, and its reads then timed
out)."""


class ChunkProbe:
    """Reads one chunk's header at a time on an `Admin`'s connection (the monitor's probe).

    `at(stream, n)` subscribes at offset `n` with one credit and returns the header of the first
    chunk the broker delivers: the chunk holding `n`, or the first ticks' chunk after it (the
    broker never delivers offset-tracking chunks). `last(stream)` does the same at LAST: the last
    chunk of ticks. Each read is a subscribe, one delivery and an unsubscribe; reads may run
    concurrently (subscription ids rotate over `ids`, one dispatcher per connection). A read
    that gets no chunk within `timeout_s` returns None. Cancelling a read unsubscribes.
    """

    def __init__(self, admin: Admin, ids: range = range(0, 200)) -> None:
        self._admin = admin
        self._ids = ids
        self._next = 0
        self._client: Client | None = None
        self._waiting: dict[int, asyncio.Future[ChunkHeader]] = {}
        self._streams: dict[int, str] = {}
        self._handler_id = ids.stop  # a name rstream's listener queues Deliver frames under

    @property
    def alive(self) -> bool:
        """Whether the `Admin`'s connection is open."""
        try:
            _ = self._admin.client
        except ConnectionFailed:
            return False
        return True

    async def _attach(self) -> Client:
        client = self._admin.client
        if client is not self._client:
            self._waiting.clear()
            client.add_handler(schema.Deliver, self._on_deliver, name=str(self._handler_id))
            await client.run_queue_listener_task(self._handler_id, self._on_deliver)
            self._client = client
        return client

    def _on_deliver(self, frame: schema.Deliver) -> None:
        waiter = self._waiting.get(frame.subscription_id)
        if waiter is not None and not waiter.done():
            stream = self._streams.get(frame.subscription_id, "")
            waiter.set_result(
                ChunkHeader(stream, frame.chunk_first_offset, frame.num_records, frame.timestamp)
            )

    async def at(self, stream: str, offset: int, timeout_s: float = 2.0) -> ChunkHeader | None:
        return await self._read(stream, Offset.at(offset), timeout_s)

    async def last(self, stream: str, timeout_s: float = 2.0) -> ChunkHeader | None:
        return await self._read(stream, Offset.last(), timeout_s)

    async def _read(self, stream: str, offset: Offset, timeout_s: float) -> ChunkHeader | None:
        client = await self._attach()
        for _ in range(len(self._ids)):
            sub_id = self._ids[self._next % len(self._ids)]
            self._next += 1
            if sub_id not in self._waiting:
                break
        else:
            raise StreamError("too many chunk reads at once on one connection")
        waiter: asyncio.Future[ChunkHeader] = asyncio.get_running_loop().create_future()
        self._waiting[sub_id] = waiter
        self._streams[sub_id] = stream
        try:
            with _mapped(f"reading a chunk of {stream}"):
                await client.subscribe(
                    stream, sub_id, schema.OffsetSpec.from_params(offset._type(), offset.value), 1
                )
                try:
                    async with asyncio.timeout(timeout_s):
                        return await waiter
                except TimeoutError:
                    return None
                finally:
                    # not waiting for the answer saves a round trip; ids rotate, so this one
                    # is not reused before the broker has long processed the unsubscribe
                    await client.send_frame(
                        schema.Unsubscribe(client._corr_id_seq.next(), subscription_id=sub_id)
                    )
        finally:
            self._waiting.pop(sub_id, None)
            self._streams.pop(sub_id, None)
