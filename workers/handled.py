"""The handled log: what a worker's handler handled, written durably for the verdict.

`VerifyingHandler` (`superticks worker --handler verify --record-dir DIR`) appends one line per
handled tick to ``DIR/<worker>.handled``::

    partition offset symbol sequence_number tick_timestamp_us handled_at_ns

``handled_at_ns`` is the wall clock (``time.time_ns()``) when the chunk was handed over, the
same for every tick of a chunk. Each chunk's lines are written with one ``write(2)`` on an
``O_APPEND`` descriptor before the handler returns, so they are in the kernel (and survive a
SIGKILL of the worker) before the worker counts the chunk as processed or stores its offset.
Nothing is fsynced: a worker crash is what the log survives, not a power loss.

`read_handled` reads a directory of such logs back (a torn last line of a killed worker is
skipped). The handler records what it was given; it is not idempotent on purpose: a tick handed
over twice is recorded twice, which is what the verdict counts.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from partitioning.codec import Tick

__all__ = ["Handled", "VerifyingHandler", "handled_path", "read_handled", "read_handled_file"]

SUFFIX = ".handled"


@dataclass(frozen=True, slots=True)
class Handled:
    """One handling of one tick, as a worker's handled log recorded it."""

    worker: str
    partition: int
    offset: int
    symbol: str
    sequence: int
    tick_us: int
    """The tick's own timestamp (its creation time with a realtime simulator)."""
    at_ns: int
    """Wall clock when the worker handed the tick's chunk to its handler."""


def handled_path(directory: str | Path, worker: str) -> Path:
    """The handled log of `worker` in `directory`."""
    return Path(directory) / f"{worker}{SUFFIX}"


class VerifyingHandler:
    """Records every tick it is handed, per chunk, in ``<directory>/<worker>.handled``.

    `drop_offset` (tests only: a deliberately broken handler) skips the tick at that offset of
    every partition, as a handler that loses a tick would. `busy_s` makes each call take that
    much longer (awaited: a busy async handler, for "no false failover while a handler is
    busy"); with `busy_once`, only the next call after `arm()` is busy (one batch), and with
    `busy_blocking` the busy time blocks the event loop (CPU-bound work done inline).
    """

    def __init__(
        self,
        directory: str | Path,
        worker: str,
        *,
        drop_offset: int | None = None,
        busy_s: float = 0.0,
        busy_once: bool = False,
        busy_blocking: bool = False,
    ) -> None:
        path = handled_path(directory, worker)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._drop = drop_offset
        self._busy_s = busy_s
        self._busy_once = busy_once
        self._busy_blocking = busy_blocking
        self._armed = not busy_once
        self.recorded = 0
        self.busy_calls = 0

    def arm(self) -> None:
        """With `busy_once`: make the next call busy."""
        self._armed = True

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        at = time.time_ns()
        drop = self._drop
        lines = [
            f"{partition} {o} {t.symbol} {t.sequence_number} {t.timestamp_us} {at}\n"
            for o, t in zip(offsets, ticks, strict=True)
            if o != drop
        ]
        data = "".join(lines).encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.recorded += len(lines)
        if self._busy_s and self._armed:
            self._armed = not self._busy_once
            self.busy_calls += 1
            if self._busy_blocking:
                time.sleep(self._busy_s)  # noqa: ASYNC251 - on purpose: a handler hogging the loop
            else:
                await asyncio.sleep(self._busy_s)

    async def close(self) -> None:
        """Close the log (safe twice; a `workers.handlers.Closing`)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def read_handled_file(path: str | Path, worker: str | None = None) -> Iterator[Handled]:
    """The handlings recorded in one log, in the order written. A last line without its newline
    (the worker was killed inside a write) is skipped."""
    path = Path(path)
    name = worker if worker is not None else path.name.removesuffix(SUFFIX)
    with path.open("rb") as file:
        for raw in file:
            if not raw.endswith(b"\n"):
                break
            p, o, symbol, seq, tick_us, at = raw.decode().split()
            yield Handled(name, int(p), int(o), symbol, int(seq), int(tick_us), int(at))


def read_handled(directory: str | Path) -> list[Handled]:
    """Every handling recorded in `directory`'s logs (each file in order, files by name)."""
    out: list[Handled] = []
    for path in sorted(Path(directory).glob(f"*{SUFFIX}")):
        out.extend(read_handled_file(path))
    return out
