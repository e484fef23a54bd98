"""`superticks verify`: the verdict of a run, read from the cluster and from the run's directory.

A run directory (written by `superticks bench failover` and `superticks chaos`, or by hand)
holds:

* ``run.json``: ``super_stream``, ``partitions``, ``producer`` (``sent``, ``confirmed``,
  ``per_symbol``: ticks sent per symbol, sequence numbers 0..n-1), and optionally
  ``crash_windows`` (``worker``, ``at_ns``, ``stored``: partition -> offset), ``coverage``
  (name -> bool) and ``worker_exits`` (worker -> exit status when the run stopped it: 0
  expected);
* ``handled/``: the handled logs of `superticks worker --handler verify --record-dir
  DIR/handled`.

`verify_run` reads every partition back from its first offset (a fresh client, up to the end
offsets its leaders have when it starts), reads the handled logs, and judges both
(`bench.verdict.judge_run`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.report import strict_json
from bench.verdict import CrashWindow, RunVerdict, StoredTick, judge_run
from partitioning.codec import decode_message
from superticks.errors import (
    ConfigError,
    ConnectionFailed,
    DecodeError,
    ReplayTimeout,
    StreamNotFound,
    StreamUnavailable,
)
from superticks.settings import ConnectionSettings, NodeAddress
from superticks.streams import Admin, Chunk, Offset, Subscription
from workers.handled import read_handled

__all__ = ["RUN_FILE", "StoredStream", "read_stored", "verify_run", "write_run"]

log = logging.getLogger("superticks.verify")

RUN_FILE = "run.json"
HANDLED_DIR = "handled"


class StoredStream:
    """Every partition's ticks as ``(offset, symbol, sequence)`` in offset order, and how many
    stored messages were not ticks."""

    def __init__(self, partitions: int) -> None:
        self.ticks: dict[int, list[StoredTick]] = {p: [] for p in range(partitions)}
        self.undecodable = 0

    def last_offsets(self) -> dict[int, int]:
        """Partition -> offset of its last tick (-1: none)."""
        return {p: (t[-1][0] if t else -1) for p, t in self.ticks.items()}


async def read_stored(
    settings: ConnectionSettings, super_stream: str, timeout_s: float = 120.0
) -> StoredStream:
    """Read every partition of `super_stream` from its first offset up to its last offset now.

    Each partition's end is asked of its leader: a replica may lag (right after every node
    restarted, the end read through a replica was 617 ticks short, which a verdict counted as
    lost). While a partition has no leader (a node just went down or restarted) or no node
    answers, its end offset is asked again for up to `timeout_s`; the reading itself rides out
    the same (`Subscription` retries at start and reconnects)."""
    streams, ends = await _end_offsets(settings, super_stream, timeout_s)
    result = StoredStream(len(streams))
    pending = {i for i, end in enumerate(ends) if end >= 0}
    finished = asyncio.Event()
    if not pending:
        finished.set()

    def reader(partition: int, end: int) -> Any:
        out = result.ticks[partition]

        async def on_chunk(chunk: Chunk) -> None:
            if partition not in pending:
                return
            offset = chunk.first_offset
            for message in chunk.messages:
                if offset > end:
                    break
                try:
                    tick = decode_message(message)
                except DecodeError:
                    result.undecodable += 1
                else:
                    out.append((offset, tick.symbol, tick.sequence_number))
                offset += 1
            if chunk.first_offset + chunk.record_count > end:
                pending.discard(partition)
                if not pending:
                    finished.set()

        return on_chunk

    subscriptions = [
        Subscription(settings, s, reader(i, ends[i]), Offset.first(), name="verify")
        for i, s in enumerate(streams)
        if ends[i] >= 0
    ]
    try:
        await asyncio.gather(*(sub.start() for sub in subscriptions))
        async with asyncio.timeout(timeout_s):
            await finished.wait()
    except TimeoutError:
        raise ReplayTimeout(
            f"reading {super_stream} back did not reach its end within {timeout_s:.0f} s"
        ) from None
    finally:
        await asyncio.gather(*(sub.stop() for sub in subscriptions))
    return result


async def _end_offsets(
    settings: ConnectionSettings, super_stream: str, timeout_s: float
) -> tuple[list[str], list[int]]:
    """The partitions of `super_stream` and the offset of each one's last message now (-1:
    empty) as its leader has it, asked again while a partition has no leader or a node does
    not answer."""
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        try:
            return await _ends_at_leaders(settings, super_stream)
        except (StreamUnavailable, ConnectionFailed, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise ReplayTimeout(
                    f"reading {super_stream} back: its end offsets were not known within "
                    f"{timeout_s:.0f} s ({exc})"
                ) from exc
            attempt += 1
            log.info("end offsets of %s not known yet (%s); asking again", super_stream, exc)
            await asyncio.sleep(min(0.2 * attempt, 1.0))


async def _ends_at_leaders(
    settings: ConnectionSettings, super_stream: str
) -> tuple[list[str], list[int]]:
    async with Admin(settings) as admin:
        streams = await admin.partitions(super_stream)
        if not streams:
            raise StreamNotFound(f"super stream {super_stream!r} does not exist")
        led: dict[NodeAddress, list[int]] = {}  # one connection per leading node
        for i, stream in enumerate(streams):
            led.setdefault(NodeAddress.parse((await admin.info(stream)).leader), []).append(i)
    ends = [-1] * len(streams)
    for leader, partitions in led.items():
        async with Admin(settings.model_copy(update={"nodes": (leader,)})) as at_leader:
            for i in partitions:
                ends[i] = await at_leader.last_offset(streams[i])
    return streams, ends


def write_run(directory: Path, data: Mapping[str, Any]) -> None:
    """Write ``run.json`` (strict JSON)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RUN_FILE).write_text(strict_json(dict(data)) + "\n")


def _load_run(directory: Path) -> dict[str, Any]:
    path = directory / RUN_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: is {directory} a run directory?") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None
    for key in ("super_stream", "partitions", "producer"):
        if key not in data:
            raise ConfigError(f"{path} has no {key!r}")
    for key in ("sent", "confirmed", "per_symbol"):
        if key not in data["producer"]:
            raise ConfigError(f"{path}: producer has no {key!r}")
    return data


async def verify_run(
    settings: ConnectionSettings, directory: Path, stored: StoredStream | None = None
) -> RunVerdict:
    """The verdict of the run in `directory` (see the module docstring). `stored`: the stream
    as already read back (else it is read now)."""
    run = _load_run(directory)
    if stored is None:
        stored = await read_stored(settings, run["super_stream"])
    handled_dir = directory / HANDLED_DIR
    handled = read_handled(handled_dir) if handled_dir.is_dir() else []
    windows = [
        CrashWindow(w["worker"], int(w["at_ns"]), {int(p): int(o) for p, o in w["stored"].items()})
        for w in run.get("crash_windows", [])
    ]
    producer = run["producer"]
    verdict = judge_run(
        partitions=int(run["partitions"]),
        stored=stored.ticks,
        handled=handled,
        sent_per_symbol={s: int(n) for s, n in producer["per_symbol"].items()},
        confirmed=int(producer["confirmed"]),
        undecodable=stored.undecodable,
        crash_windows=windows,
        coverage={k: bool(v) for k, v in run.get("coverage", {}).items()},
    )
    exits = run.get("worker_exits", {})  # runs written before it was recorded have none
    return replace(
        verdict, worker_exits={w: None if c is None else int(c) for w, c in exits.items()}
    )
