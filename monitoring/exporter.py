"""The lag exporter (`superticks monitor`): broker-side lag of every consumer group, for Prometheus.

It polls the cluster every `interval_s` seconds in the background and serves the latest poll as
Prometheus text on /metrics (so a scrape costs nothing and every poll is one sample of the
status window). Super streams and groups are discovered, not configured: super streams are the
exchanges with partition bindings (`x-stream-partition-order`), groups are the references with a
stored offset on their partitions (management API `.../tracking?type=offset`). Both are
remembered, so stored offsets, end offsets and lag keep coming from the stream protocol while no
management API answers. Every call goes to whichever node answers (stream protocol: the nodes of
`SUPERTICKS_NODES` in turn, a failed one last; management API: the `--management` URLs, likewise).
A source that does not answer is a metric (`superticks_exporter_up{source} 0`), never a crash.

Metrics (labels: `super_stream`; `partition` = the partition's index; `stream` = its stream;
`group`; `node` = Erlang node name, or the advertised host:port while the management API is down):

* ``superticks_partition_end_offset{super_stream,partition,stream}``: offset of the last
  committed tick (-1: none)
* ``superticks_partition_committed_offset{...}``: the broker's committed offset (offset-tracking
  records included); ``superticks_partition_first_offset{...}``: first offset kept
* ``superticks_partition_last_tick_timestamp_seconds{...}``: when the last chunk of ticks was
  stored
* ``superticks_partition_leader{super_stream,partition,stream,node}``: 1
* ``superticks_partition_replicas{...}``, ``superticks_partition_replicas_in_sync{...}``: members,
  members online
* ``superticks_group_stored_offset{super_stream,group,partition}``: the group's stored offset
* ``superticks_group_lag_ticks{...}``: end offset minus the stored offset
* ``superticks_group_lag_seconds{...}``: now minus the time the first unprocessed tick was
  stored; 0 when caught up; never NaN
* ``superticks_group_consumers{...}``: consumers of the group the broker lists (active + waiting)
* ``superticks_group_active_consumer{super_stream,group,partition,consumer}``: 1, labelled with the
  active consumer's connection name as the broker shows it (``unknown`` for its first ~5 s)
* ``superticks_group_partition_unconsumed{...}``: 1 when no consumer of the group is active
* ``superticks_group_partition_status{super_stream,group,partition,status}``: 1 for the current
  status (OK, WARN, STALL, STOP, ERR; `monitoring.status`)
* ``superticks_group_status{super_stream,group,status}``: 1, the worst partition's status
* ``superticks_node_running{node}``: 1/0 per the management API
* ``superticks_exporter_up{source}``: 1/0, whether `stream` / `management` answered the last poll;
  ``superticks_exporter_scrape_errors_total{source}``: failed calls;
  ``superticks_exporter_last_success_timestamp_seconds{source}``
* ``superticks_exporter_scrape_duration_seconds``: how long the last poll took;
  ``superticks_exporter_poll_timestamp_seconds``: when it was taken

Lag in ticks counts *offsets*: the end offset is the last tick's (read from the last chunk of
ticks, so offset-tracking records written after it, which `committed_offset` counts, never make
a caught-up group look behind), but the offset-tracking records *between* the stored offset and
the end count as ticks. A worker stores at most every 1000 ticks or 200 ms, so that overstates
a lag by at most about 0.1% plus 5 per second of lag. Lag in seconds is exact: the chunk at the
stored offset + 1 (the first unprocessed tick's, or the next chunk of ticks) carries the time
the broker stored it; that read is cached per offset, so a group that does not move costs
nothing. `active_consumer`, `consumers` and `unconsumed` come from the management API and are
absent while it does not answer (the status rules then say STALL rather than STOP).

Permissions: the stream-protocol side needs read on the partitions (stats, stored offsets, one-
chunk reads), which the `superticks-monitoring` user (management API only) does not have; the
compose service runs as the admin user (`SUPERTICKS_USERNAME`).

Cancelling `run()` (or `stop()`) ends the poll loop and closes the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

from monitoring.management import ActiveConsumer, ManagementApi, QueueReplicas
from monitoring.status import Sample, Status, group_status, partition_status
from superticks.errors import (
    ConfigError,
    ConnectionFailed,
    ManagementUnavailable,
    StreamError,
    StreamNotFound,
    SuperticksError,
)
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, ChunkHeader, ChunkProbe, StreamInfo
from superticks.tasks import checkpoint

__all__ = [
    "DEFAULT_MANAGEMENT_URLS",
    "GroupPartition",
    "Monitor",
    "MonitorCollector",
    "MonitorConfig",
    "MonitorState",
    "PartitionState",
    "Snapshot",
    "SourceHealth",
    "render",
    "serve",
]

log = logging.getLogger("superticks.monitor")

DEFAULT_MANAGEMENT_URLS = (
    "http://127.0.0.1:15672",
    "http://127.0.0.1:15673",
    "http://127.0.0.1:15674",
)
SOURCES = ("stream", "management")
T = TypeVar("T")


class MonitorConfig(BaseModel):
    """What the exporter watches and how often. Empty `super_streams`/`groups`: all found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection: ConnectionSettings = Field(default_factory=ConnectionSettings)
    management_urls: tuple[str, ...] = Field(default=DEFAULT_MANAGEMENT_URLS, min_length=1)
    super_streams: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    interval_s: float = Field(default=5.0, gt=0)
    window: int = Field(default=6, ge=2, le=1000)
    timeout_s: float = Field(default=4.0, gt=0)


class MonitorState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class PartitionState:
    super_stream: str
    index: int
    stream: str
    end_offset: int | None  # last tick's offset (-1 empty; None: unreadable this poll)
    committed_offset: int | None
    first_offset: int | None
    last_tick_ms: int | None
    leader: str  # node ("" unknown)
    replicas: int | None
    in_sync: int | None


@dataclass(frozen=True, slots=True)
class GroupPartition:
    super_stream: str
    group: str
    index: int
    stored: int | None
    lag_ticks: int | None  # None: unreadable this poll
    lag_seconds: float | None
    consumers: int | None  # None: management API unknown
    active_consumer: str | None  # connection name of the active one
    unconsumed: bool | None
    status: Status


@dataclass(slots=True)
class SourceHealth:
    up: bool = False
    errors_total: int = 0
    last_success: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One poll's results (what /metrics serves until the next poll)."""

    taken_at: float
    duration_s: float
    partitions: tuple[PartitionState, ...] = ()
    groups: tuple[GroupPartition, ...] = ()
    group_statuses: dict[tuple[str, str], Status] = field(default_factory=dict)
    nodes: dict[str, bool] = field(default_factory=dict)
    sources: dict[str, SourceHealth] = field(default_factory=dict)


@dataclass(slots=True)
class _Management:
    """What the management API said this poll (None: it did not answer)."""

    super_streams: dict[str, list[str]] | None = None
    replicas: dict[str, QueueReplicas] | None = None
    consumers: list[ActiveConsumer] | None = None
    connections: dict[str, str] | None = None
    nodes: dict[str, bool] | None = None
    tracking: dict[str, dict[str, int]] = field(default_factory=dict)


class Monitor:
    """Polls the cluster (see the module docstring); `snapshot` is the latest poll.

    `start()` runs the poll loop as a task this object owns; `stop()` cancels and awaits it and
    closes the connection (safe twice). `poll()` runs one poll by hand (tests, `--once`).
    """

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        c = config.connection
        self._api = ManagementApi(
            config.management_urls,
            c.username,
            c.password.get_secret_value(),
            c.vhost,
            timeout_s=min(2.0, config.timeout_s),
        )
        self._nodes = list(c.nodes)
        self._admin: Admin | None = None
        self._probe: ChunkProbe | None = None
        self._topology: dict[str, list[str]] = {}  # super stream -> partition streams
        self._groups: dict[str, set[str]] = {}  # super stream -> groups watched
        self._discovered: dict[str, set[str]] = {}  # super stream -> every group found
        self._replicas: dict[str, QueueReplicas] = {}
        self._ends: dict[str, tuple[int, ChunkHeader]] = {}  # stream -> (committed id, last)
        self._chunks: dict[str, dict[int, ChunkHeader]] = {}  # stream -> first offset -> chunk
        self._gaps: dict[tuple[str, int], int] = {}  # (stream, tracking offset) -> next chunk ms
        self._windows: dict[tuple[str, str, int], deque[Sample]] = {}
        self._health = {s: SourceHealth() for s in SOURCES}
        self._last_consumers: list[ActiveConsumer] = []
        self._known_super_streams: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.state = MonitorState.CREATED
        self.polls = 0
        self.snapshot = Snapshot(taken_at=time.time(), duration_s=0.0, sources=self._health)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="superticks-monitor")
            self.state = MonitorState.RUNNING

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_admin()
        self.state = MonitorState.STOPPED

    async def __aenter__(self) -> Monitor:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def run(self) -> None:
        """Poll every `interval_s` until cancelled; a poll never raises."""
        try:
            while True:
                checkpoint()
                started = time.monotonic()
                try:
                    await self.poll()
                except ConfigError as exc:  # credentials refused: keep serving, say so
                    self._fail("management", exc)
                except Exception:  # the exporter reports, it must not die
                    log.exception("poll failed")
                    self._fail("stream", RuntimeError("poll failed"))
                await asyncio.sleep(max(0.0, self.config.interval_s - (time.monotonic() - started)))
        finally:
            await self._drop_admin()

    # -- names given on the command line -----------------------------------------------------
    async def check_names(self) -> list[str]:
        """Raise `ConfigError` for a `super_streams`/`groups` name the cluster does not have.
        Returns warnings instead when no source answers (nothing can be checked then)."""
        cfg = self.config
        if not cfg.super_streams and not cfg.groups:
            return []
        await self.poll()
        if not self._health["management"].up and not self._health["stream"].up:
            return ["no node answered: --super-stream/--group names cannot be checked now"]
        missing = [s for s in cfg.super_streams if s not in self._topology]
        if missing:
            raise ConfigError(
                f"unknown super stream(s) {', '.join(missing)}: the cluster has "
                f"{', '.join(sorted(self._known_super_streams)) or 'none'}"
            )
        if self._health["management"].up:
            known = {g for gs in self._discovered.values() for g in gs}
            active = {c.group for c in self._last_consumers}
            unknown = [g for g in cfg.groups if g not in known | active]
            if unknown:
                where = ", ".join(sorted(self._topology)) or "any super stream"
                raise ConfigError(
                    f"unknown group(s) {', '.join(unknown)}: no stored offset or consumer on "
                    f"{where}; groups found: {', '.join(sorted(known)) or 'none'}"
                )
        return []

    # -- one poll --------------------------------------------------------------------------
    async def poll(self) -> Snapshot:
        """Read everything once and update `snapshot`. Failures become metrics, never raise.

        The management API and the stream protocol are read at the same time once the super
        streams and groups are known (the stream side uses what the previous poll found; a new
        group shows up one poll later); on the first poll, the management API first.
        """
        started = time.perf_counter()
        if self._topology:
            mgmt, raw = await asyncio.gather(self._read_management(), self._read_streams_safely())
        else:
            mgmt = await self._read_management()
            raw = await self._read_streams_safely()
        parts, groups = self._assemble(mgmt, raw)
        statuses: dict[tuple[str, str], list[Status]] = {}
        for g in groups:
            statuses.setdefault((g.super_stream, g.group), []).append(g.status)
        self.polls += 1
        self.snapshot = Snapshot(
            taken_at=time.time(),
            duration_s=time.perf_counter() - started,
            partitions=tuple(parts),
            groups=tuple(groups),
            group_statuses={k: group_status(v) for k, v in statuses.items()},
            nodes=mgmt.nodes or {},
            sources=self._health,
        )
        return self.snapshot

    def _ok(self, source: str) -> None:
        h = self._health[source]
        if not h.up and h.errors_total:
            log.warning("%s answers again", source)
        h.up = True
        h.last_success = time.time()

    def _fail(self, source: str, exc: BaseException, count: int = 1) -> None:
        h = self._health[source]
        if h.up or not h.errors_total:  # one line when a source fails, not one per poll
            why = str(exc) or f"no answer within {self.config.timeout_s:g} s ({type(exc).__name__})"
            log.warning("%s: %s (superticks_exporter_up{source=%r} 0)", source, why, source)
        h.up = False
        h.errors_total += count

    async def _read_management(self) -> _Management:
        api = self._api
        out = _Management()
        calls: dict[str, Callable[[], Any]] = {
            "super_streams": api.super_streams,
            "replicas": api.replicas,
            "consumers": api.consumers,
            "connections": api.connection_names,
            "nodes": api.nodes,
        }
        results = await asyncio.gather(
            *(asyncio.to_thread(f) for f in calls.values()), return_exceptions=True
        )
        failures: list[BaseException] = []
        for name, result in zip(calls, results, strict=True):
            if isinstance(result, ConfigError):
                raise result
            if isinstance(result, BaseException):
                if not isinstance(result, ManagementUnavailable | OSError | ValueError):
                    raise result
                failures.append(result)
            else:
                setattr(out, name, result)
        if out.super_streams is not None:
            self._known_super_streams = set(out.super_streams)
            wanted = self.config.super_streams
            self._topology = {
                s: p for s, p in out.super_streams.items() if not wanted or s in wanted
            }
        if out.replicas is not None:
            self._replicas = out.replicas
        if out.consumers is not None:
            self._last_consumers = out.consumers
        streams = [s for parts in self._topology.values() for s in parts]
        tracked = await asyncio.gather(
            *(asyncio.to_thread(api.tracked_offsets, s) for s in streams), return_exceptions=True
        )
        tracking_ok = True
        for stream, result in zip(streams, tracked, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, ManagementUnavailable | OSError | ValueError):
                    raise result
                failures.append(result)
                tracking_ok = False
            else:
                out.tracking[stream] = result
        if tracking_ok and out.super_streams is not None:
            wanted_groups = set(self.config.groups)
            for ss, parts in self._topology.items():
                found = {g for s in parts for g in out.tracking.get(s, {})}
                self._discovered[ss] = found
                self._groups[ss] = {g for g in found if not wanted_groups or g in wanted_groups}
        if failures:
            self._fail("management", failures[0], len(failures))
        else:
            self._ok("management")
        return out

    async def _connect(self) -> tuple[Admin, ChunkProbe]:
        if self._admin is not None and self._probe is not None:
            if self._probe.alive:
                return self._admin, self._probe
            await self._drop_admin()
        settings = self.config.connection.model_copy(
            update={
                "nodes": tuple(self._nodes),
                "connect_timeout_s": min(3.0, self.config.timeout_s),
            }
        )
        admin = Admin(settings)
        try:
            await admin.start()
        except ConnectionFailed:
            self._nodes.append(self._nodes.pop(0))  # next time, start at another node
            raise
        self._admin, self._probe = admin, ChunkProbe(admin)
        return admin, self._probe

    async def _drop_admin(self) -> None:
        admin, self._admin, self._probe = self._admin, None, None
        if admin is not None:
            self._nodes.append(self._nodes.pop(0))
            with contextlib.suppress(SuperticksError, OSError):
                await admin.stop()

    async def _read_streams_safely(self) -> _StreamRead | None:
        """The stream side of a poll, bounded by `timeout_s`; None when it failed."""
        try:
            async with asyncio.timeout(self.config.timeout_s):
                return await self._read_streams()
        except (TimeoutError, ConnectionFailed) as exc:
            self._fail("stream", exc)
            await self._drop_admin()
        except SuperticksError as exc:
            self._fail("stream", exc)
        return None

    async def _read_streams(self) -> _StreamRead:
        admin, probe = await self._connect()
        errors: list[BaseException] = []

        gone: set[str] = set()

        async def guarded(coro: Awaitable[T], stream: str = "") -> T | None:
            try:
                return await coro
            except ConnectionFailed:
                raise
            except StreamNotFound as exc:  # deleted since it was found: not a failure
                if stream:
                    gone.add(stream)
                else:
                    errors.append(exc)
                return None
            except StreamError as exc:
                errors.append(exc)
                return None

        if not self._topology and self.config.super_streams:
            for ss in self.config.super_streams:  # no management API yet: ask the broker
                found = await guarded(admin.partitions(ss))
                if found:
                    self._topology[ss] = found
                    self._known_super_streams.add(ss)
        out = _StreamRead(
            partitions=[
                (ss, i, s) for ss, parts in self._topology.items() for i, s in enumerate(parts)
            ]
        )
        out.pairs = [
            (ss, g, i, s) for ss, i, s in out.partitions for g in sorted(self._groups.get(ss, ()))
        ]
        streams = [s for _, _, s in out.partitions]
        metadata = not self._health["management"].up  # leaders from the stream protocol then
        ends, stored, infos = await asyncio.gather(
            asyncio.gather(*(guarded(self._end(admin, probe, s), s) for s in streams)),
            asyncio.gather(*(guarded(admin.stored_offset(s, g), s) for _, g, _, s in out.pairs)),
            asyncio.gather(*(guarded(admin.info(s), s) for s in (streams if metadata else ()))),
        )
        out.ends = dict(zip(streams, ends, strict=True))
        out.infos = {i.name: i for i in infos if i is not None}
        out.stored = list(stored)
        reads: dict[tuple[str, int], None] = {}
        for (_, _, _, s), offset in zip(out.pairs, out.stored, strict=True):
            end = out.ends.get(s)
            if end is None:
                continue
            o = _next_unprocessed(offset, end.first)
            if end.last >= o and self._chunk_time(s, o) is None:
                reads[(s, o)] = None
        if len(self._gaps) > 10_000:
            self._gaps.clear()
        headers = await asyncio.gather(*(guarded(probe.at(s, o), s) for s, o in reads))
        for (s, o), header in zip(reads, headers, strict=True):
            if header is None:
                errors.append(StreamError(f"no chunk at offset {o} of {s} within 2 s"))
            elif header.first_offset <= o:
                self._remember(header)
            else:  # `o` is an offset-tracking record: the next chunk of ticks holds the next tick
                self._remember(header)
                self._gaps[(s, o)] = header.timestamp_ms
        if gone:  # a super stream deleted since the last poll: leave it out
            out.partitions = [p for p in out.partitions if p[2] not in gone]
            kept = [k for k, pair in enumerate(out.pairs) if pair[3] not in gone]
            out.pairs = [out.pairs[k] for k in kept]
            out.stored = [out.stored[k] for k in kept]
            self._topology = {ss: p for ss, p in self._topology.items() if not gone & set(p)}
        if errors:
            self._fail("stream", errors[0], len(errors))
        else:
            self._ok("stream")
        return out

    def _forget(self, stream: str) -> None:
        """Drop what is cached of `stream` (it was emptied, or deleted and created again)."""
        self._ends.pop(stream, None)
        self._chunks.pop(stream, None)
        self._gaps = {k: v for k, v in self._gaps.items() if k[0] != stream}

    def _remember(self, header: ChunkHeader) -> None:
        chunks = self._chunks.setdefault(header.stream, {})
        chunks[header.first_offset] = header
        if len(chunks) > 256:  # keep the newest chunks of each stream
            for first in sorted(chunks)[: len(chunks) - 256]:
                del chunks[first]

    def _chunk_time(self, stream: str, offset: int) -> int | None:
        """When the chunk holding tick `offset` was stored, if a chunk read already said."""
        gap = self._gaps.get((stream, offset))
        if gap is not None:
            return gap
        for first, header in (self._chunks.get(stream) or {}).items():
            if first <= offset <= header.last_offset:
                return header.timestamp_ms
        return None

    async def _end(self, admin: Admin, probe: ChunkProbe, stream: str) -> _End:
        """The partition's last tick (from its last chunk of ticks) and the broker's stats."""
        stats = await admin.stats(stream)
        committed_chunk = stats.get("committed_chunk_id", -1)
        committed = stats.get("committed_offset", committed_chunk)
        first = max(0, stats.get("first_chunk_id", 0))
        if committed_chunk < 0:
            self._forget(stream)
            return _End(-1, committed, first, None)
        cached = self._ends.get(stream)
        if cached is not None and cached[0] > committed_chunk:  # deleted and created again
            self._forget(stream)
            cached = None
        if cached is not None and cached[0] == committed_chunk:
            last = cached[1]
        else:
            header = await probe.last(stream)
            if header is None:  # only offset-tracking records in the stream: no ticks
                return _End(-1, committed, first, None)
            last = header
            self._ends[stream] = (committed_chunk, header)
            self._remember(header)
        return _End(last.last_offset, committed, first, last.timestamp_ms)

    def _assemble(
        self, mgmt: _Management, raw: _StreamRead | None
    ) -> tuple[list[PartitionState], list[GroupPartition]]:
        """Partitions and groups from what both sources said this poll (None: unreadable)."""
        now = time.time()
        consumers = _by_group(mgmt.consumers, mgmt.connections)
        partitions = (
            raw.partitions
            if raw is not None
            else [(ss, i, s) for ss, parts in self._topology.items() for i, s in enumerate(parts)]
        )
        parts: dict[str, PartitionState] = {}
        for ss, index, stream in partitions:
            end = raw.ends.get(stream) if raw is not None else None
            rep = self._replicas.get(stream) if mgmt.replicas is not None else None
            info = raw.infos.get(stream) if raw is not None else None
            leader, replicas, in_sync = "", None, None
            if rep is not None:
                leader, replicas = rep.leader, len(rep.members)
                in_sync = len(set(rep.online) & set(rep.members))
            elif info is not None:
                leader, in_sync = info.leader, 1 + len(info.replicas)
            parts[stream] = PartitionState(
                super_stream=ss,
                index=index,
                stream=stream,
                end_offset=end.last if end else None,
                committed_offset=end.committed if end else None,
                first_offset=end.first if end else None,
                last_tick_ms=end.last_ms if end else None,
                leader=leader,
                replicas=replicas,
                in_sync=in_sync,
            )
        if raw is not None:
            pairs, stored = raw.pairs, raw.stored
        else:
            pairs = [
                (ss, g, i, s) for ss, i, s in partitions for g in sorted(self._groups.get(ss, ()))
            ]
            stored = [None] * len(pairs)
        groups: list[GroupPartition] = []
        for (ss, g, i, s), offset in zip(pairs, stored, strict=True):
            end = raw.ends.get(s) if raw is not None else None
            lag: int | None = None
            lag_s: float | None = None
            if end is not None:
                o = _next_unprocessed(offset, end.first)
                lag = max(0, end.last - o + 1)
                if lag == 0:
                    lag_s = 0.0
                else:
                    stamp = self._chunk_time(s, o)
                    if stamp is None:  # unreadable: at least as old as the last chunk of ticks
                        stamp = end.last_ms
                    lag_s = max(0.0, now - stamp / 1000) if stamp is not None else None
            listed = consumers.get((s, g)) if consumers is not None else None
            active = listed[1] if listed is not None else None
            window = self._windows.setdefault((ss, g, i), deque(maxlen=2 * self.config.window))
            known = consumers is not None
            window.append(
                Sample(stored=offset, lag=lag, active=active is not None if known else None)
            )
            groups.append(
                GroupPartition(
                    super_stream=ss,
                    group=g,
                    index=i,
                    stored=offset,
                    lag_ticks=lag,
                    lag_seconds=lag_s,
                    consumers=(listed[0] if listed else 0) if known else None,
                    active_consumer=active,
                    unconsumed=active is None if known else None,
                    status=partition_status(window, self.config.window),
                )
            )
        live = {(gp.super_stream, gp.group, gp.index) for gp in groups}
        for gone in [w for w in self._windows if w not in live]:
            del self._windows[gone]
        streams = set(parts)
        self._gaps = {k: v for k, v in self._gaps.items() if k[0] in streams}
        self._chunks = {k: v for k, v in self._chunks.items() if k in streams}
        self._ends = {k: v for k, v in self._ends.items() if k in streams}
        return list(parts.values()), groups


def _next_unprocessed(stored: int | None, first: int) -> int:
    """The offset of the first tick a group has not processed (retention may have removed
    what lies before `first`)."""
    return max((stored if stored is not None else -1) + 1, first)


@dataclass(frozen=True, slots=True)
class _End:
    last: int  # the last tick's offset (-1: no ticks)
    committed: int
    first: int
    last_ms: int | None  # when the last chunk of ticks was stored


@dataclass(slots=True)
class _StreamRead:
    """What the stream protocol said this poll."""

    partitions: list[tuple[str, int, str]]
    pairs: list[tuple[str, str, int, str]] = field(default_factory=list)
    ends: dict[str, _End | None] = field(default_factory=dict)
    infos: dict[str, StreamInfo] = field(default_factory=dict)
    stored: list[int | None] = field(default_factory=list)


def _by_group(
    consumers: list[ActiveConsumer] | None, connections: dict[str, str] | None
) -> dict[tuple[str, str], tuple[int, str | None]] | None:
    """(stream, group) -> (consumers listed, the active one's connection name or None)."""
    if consumers is None:
        return None
    out: dict[tuple[str, str], tuple[int, str | None]] = {}
    for c in consumers:
        key = (c.stream, c.group)
        count, active = out.get(key, (0, None))
        if c.active:
            name = (connections or {}).get(c.connection) or c.connection or "unknown"
            active = name
        out[key] = (count + 1, active)
    return out


class MonitorCollector(Collector):
    """Renders a `Monitor`'s latest snapshot as Prometheus metric families."""

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def collect(self) -> Iterator[Metric]:
        return iter(_families(self._monitor.snapshot))


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"superticks_{name}", doc, labels=labels)


def _families(snap: Snapshot) -> list[Metric]:
    part = ["super_stream", "partition", "stream"]
    grp = ["super_stream", "group", "partition"]
    end = _gauge("partition_end_offset", "Offset of the partition's last committed tick.", part)
    committed = _gauge(
        "partition_committed_offset",
        "The broker's committed offset (offset-tracking records included).",
        part,
    )
    first = _gauge("partition_first_offset", "First offset the partition still keeps.", part)
    last_ts = _gauge(
        "partition_last_tick_timestamp_seconds", "When the last chunk of ticks was stored.", part
    )
    leader = _gauge("partition_leader", "1 for the partition's leader node.", [*part, "node"])
    replicas = _gauge("partition_replicas", "Replicas of the partition's stream.", part)
    in_sync = _gauge("partition_replicas_in_sync", "Replicas online (in sync).", part)
    for p in snap.partitions:
        values = [p.super_stream, str(p.index), p.stream]
        for family, value in (
            (end, p.end_offset),
            (committed, p.committed_offset),
            (first, p.first_offset),
            (last_ts, None if p.last_tick_ms is None else p.last_tick_ms / 1000),
            (replicas, p.replicas),
            (in_sync, p.in_sync),
        ):
            if value is not None:
                family.add_metric(values, value)
        if p.leader:
            leader.add_metric([*values, p.leader], 1)
    stored = _gauge("group_stored_offset", "The group's stored offset.", grp)
    lag_ticks = _gauge("group_lag_ticks", "End offset minus the group's stored offset.", grp)
    lag_seconds = _gauge(
        "group_lag_seconds",
        "Now minus when the first unprocessed tick was stored (0 when caught up).",
        grp,
    )
    consumers = _gauge("group_consumers", "Consumers of the group the broker lists.", grp)
    active = _gauge("group_active_consumer", "1: the active consumer.", [*grp, "consumer"])
    unconsumed = _gauge("group_partition_unconsumed", "1: no active consumer.", grp)
    pstatus = _gauge("group_partition_status", "1 for the current status.", [*grp, "status"])
    for g in snap.groups:
        values = [g.super_stream, g.group, str(g.index)]
        for family, value in (
            (stored, g.stored),
            (lag_ticks, g.lag_ticks),
            (lag_seconds, g.lag_seconds),
            (consumers, g.consumers),
        ):
            if value is not None:
                family.add_metric(values, value)
        if g.active_consumer is not None:
            active.add_metric([*values, g.active_consumer], 1)
        if g.unconsumed is not None:
            unconsumed.add_metric(values, 1 if g.unconsumed else 0)
        pstatus.add_metric([*values, str(g.status)], 1)
    gstatus = _gauge(
        "group_status",
        "1 for the group's status (its worst partition's).",
        [
            "super_stream",
            "group",
            "status",
        ],
    )
    for (ss, group), status in sorted(snap.group_statuses.items()):
        gstatus.add_metric([ss, group, str(status)], 1)
    nodes = _gauge("node_running", "1 if the node runs (management API).", ["node"])
    for node, running in sorted(snap.nodes.items()):
        nodes.add_metric([node], 1 if running else 0)
    up = GaugeMetricFamily(
        "superticks_exporter_up", "1 if the source answered the last poll.", labels=["source"]
    )
    errors = CounterMetricFamily(
        "superticks_exporter_scrape_errors", "Failed calls to the source.", labels=["source"]
    )
    success = GaugeMetricFamily(
        "superticks_exporter_last_success_timestamp_seconds",
        "When the source last answered a poll.",
        labels=["source"],
    )
    for source, h in sorted(snap.sources.items()):
        up.add_metric([source], 1 if h.up else 0)
        errors.add_metric([source], h.errors_total)
        if h.last_success is not None:
            success.add_metric([source], h.last_success)
    duration = GaugeMetricFamily(
        "superticks_exporter_scrape_duration_seconds", "How long the last poll took."
    )
    duration.add_metric([], snap.duration_s)
    taken = GaugeMetricFamily(
        "superticks_exporter_poll_timestamp_seconds", "When the last poll was taken."
    )
    taken.add_metric([], snap.taken_at)
    return [
        end,
        committed,
        first,
        last_ts,
        leader,
        replicas,
        in_sync,
        stored,
        lag_ticks,
        lag_seconds,
        consumers,
        active,
        unconsumed,
        pstatus,
        gstatus,
        nodes,
        up,
        errors,
        success,
        duration,
        taken,
    ]


def render(monitor: Monitor) -> str:
    """The Prometheus text of the monitor's latest snapshot."""
    registry = CollectorRegistry()
    registry.register(MonitorCollector(monitor))
    return generate_latest(registry).decode()


def serve(monitor: Monitor, host: str, port: int) -> CollectorRegistry:
    """Serve the monitor's snapshot on http://host:port/metrics (a thread); the registry."""
    registry = CollectorRegistry()
    registry.register(MonitorCollector(monitor))
    start_http_server(port, addr=host, registry=registry)
    return registry
