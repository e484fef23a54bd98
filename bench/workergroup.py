"""A group of `superticks worker --handler verify` processes for the fault benches, and a live
view of what they handled.

`WorkerGroup` starts separate worker processes (one interpreter each, as a user runs them), can
SIGKILL, SIGSTOP and SIGCONT them, and stops them all gracefully (SIGTERM) at the end (a
stopped one is continued first; one that does not exit in time is killed). Their handled logs
go to ``<run dir>/handled``, their stderr to ``<run dir>/<name>.log``.

`HandledTail` reads the handled logs as they grow (complete lines only): per partition, the
latest handling by each worker and the newest tick each worker handled, which is enough to see
a partition handled again after a fault without polling any worker's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from workers.handled import SUFFIX

__all__ = ["HandledTail", "WorkerGroup"]

_SUPERTICKS = (
    sys.executable,
    "-c",
    "import logging, sys; from superticks.cli.main import main; "
    "logging.basicConfig(format='%(asctime)s %(name)s %(message)s', level=logging.INFO); "
    "logging.getLogger('rstream').setLevel(logging.WARNING); sys.exit(main())",
)
"""The `superticks` command, run by this interpreter (so in this environment); its log carries
the time (to set it beside the handled logs) and, besides warnings, each partition's
activations and moves (with the offset it resumed from), which say who handled what after a
fault."""


@dataclass(slots=True)
class _Seen:
    at_ns: int = 0  # the worker's latest handling of the partition (wall clock)
    tick_us: int = 0  # the newest tick (by creation time) it handled there
    count: int = 0


@dataclass(slots=True)
class _File:
    position: int = 0
    rest: bytes = b""


@dataclass(slots=True)
class HandledTail:
    """What the handled logs of `directory` say so far; `poll()` reads what was added."""

    directory: Path
    seen: dict[int, dict[str, _Seen]] = field(default_factory=dict)  # partition -> worker -> _Seen
    max_offset: dict[int, int] = field(default_factory=dict)
    _files: dict[Path, _File] = field(default_factory=dict)

    def poll(self) -> None:
        for path in self.directory.glob(f"*{SUFFIX}"):
            state = self._files.setdefault(path, _File())
            with path.open("rb") as file:
                file.seek(state.position)
                data = file.read()
            if not data:
                continue
            state.position += len(data)
            data = state.rest + data
            cut = data.rfind(b"\n") + 1
            state.rest = data[cut:]
            worker = path.name.removesuffix(SUFFIX)
            for line in data[:cut].splitlines():
                p, o, _, _, tick_us, at = line.split()
                partition = int(p)
                seen = self.seen.setdefault(partition, {}).setdefault(worker, _Seen())
                seen.at_ns = max(seen.at_ns, int(at))
                seen.tick_us = max(seen.tick_us, int(tick_us))
                seen.count += 1
                offset = int(o)
                if offset > self.max_offset.get(partition, -1):
                    self.max_offset[partition] = offset

    def handled_after(self, partition: int, after_ns: int, not_by: str | None = None) -> bool:
        """Whether a tick created after `after_ns` was handled on `partition` (by a worker other
        than `not_by`)."""
        return any(
            s.tick_us * 1000 > after_ns
            for w, s in self.seen.get(partition, {}).items()
            if w != not_by
        )

    def active_on(self, worker: str, within_s: float = 1.0) -> list[int]:
        """The partitions `worker` handled something of within the last `within_s` seconds."""
        horizon = time.time_ns() - int(within_s * 1e9)
        return sorted(
            p for p, by in self.seen.items() if worker in by and by[worker].at_ns >= horizon
        )


class WorkerGroup:
    """`count` worker processes of consumer group `group`; see the module docstring."""

    def __init__(
        self,
        super_stream: str,
        group: str,
        run_dir: Path,
        *,
        count: int = 3,
        drop_offset: int | None = None,
        busy_ms: int = 0,
        busy_once: bool = False,
        busy_blocking: bool = False,
    ) -> None:
        self.super_stream = super_stream
        self.group = group
        self.run_dir = run_dir
        self.handled_dir = run_dir / "handled"
        self.count = count
        self.drop_offset = drop_offset
        self.busy_ms = busy_ms
        self.busy_once = busy_once
        """With `busy_ms`: busy only on the next chunk after `make_busy` (SIGUSR1)."""
        self.busy_blocking = busy_blocking
        """With `busy_ms`: the busy time blocks the worker's event loop."""
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.stopped: set[str] = set()
        self.killed: set[str] = set()
        """Workers this group SIGKILLed (their exit status is the kill's)."""
        self._started = 0
        self.tail = HandledTail(self.handled_dir)

    async def start(self, stagger_s: float = 0.4) -> None:
        """Start the workers, a little apart (registration order spreads the partitions)."""
        self.handled_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(self.count):
            await self.add()
            await asyncio.sleep(stagger_s)

    async def add(self) -> str:
        """Start one more worker; returns its name."""
        self._started += 1
        name = f"w{self._started}"
        args = [
            *_SUPERTICKS, "worker", "--group", self.group,
            "--name", name, "--handler", "verify", "--record-dir", str(self.handled_dir),
            "--super-stream", self.super_stream,
        ]  # fmt: skip
        if self.drop_offset is not None:
            args += ["--drop-offset", str(self.drop_offset)]
        if self.busy_ms:
            args += ["--busy-ms", str(self.busy_ms)]
            if self.busy_once:
                args.append("--busy-once")
            if self.busy_blocking:
                args.append("--busy-blocking")
        with (self.run_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.DEVNULL, stderr=log
            )
        return name

    def running(self) -> list[str]:
        """Workers alive and not stopped."""
        return [
            n for n, p in self.processes.items() if p.returncode is None and n not in self.stopped
        ]

    def signal(self, name: str, sig: signal.Signals) -> None:
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        if sig is signal.SIGSTOP:
            self.stopped.add(name)
        elif sig is signal.SIGCONT:
            self.stopped.discard(name)

    def make_busy(self, name: str) -> None:
        """With `busy_once`: `name`'s handler is busy on its next chunk (`busy_ms`)."""
        self.signal(name, signal.SIGUSR1)

    async def kill(self, name: str) -> None:
        self.killed.add(name)
        self.signal(name, signal.SIGKILL)
        await self.processes[name].wait()

    async def wait_handling(self, partitions: int, timeout_s: float = 60.0) -> bool:
        """Until every partition was handled by someone and every worker made its log; False
        after `timeout_s`, or at once when a worker exited (see `why_not_handling`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(p.returncode is not None for p in self.processes.values()):
                return False
            self.tail.poll()
            names = {p.name.removesuffix(SUFFIX) for p in self.handled_dir.glob(f"*{SUFFIX}")}
            if (
                all(self.tail.seen.get(p) for p in range(partitions))
                and set(self.processes) <= names
            ):
                return True
            await asyncio.sleep(0.1)
        return False

    def why_not_handling(self, partitions: int, log_lines: int = 8) -> str:
        """What `wait_handling` still waited for: the partitions nobody handled, the workers
        without a handled log, each worker's exit status and the end of its log."""
        self.tail.poll()
        names = {p.name.removesuffix(SUFFIX) for p in self.handled_dir.glob(f"*{SUFFIX}")}
        idle = [p for p in range(partitions) if not self.tail.seen.get(p)]
        parts = [
            f"partitions never handled: {idle or 'none'}",
            f"workers without a handled log: {sorted(set(self.processes) - names) or 'none'}",
        ]
        for name, process in self.processes.items():
            log = self.run_dir / f"{name}.log"
            lines = log.read_text(errors="replace").splitlines() if log.exists() else []
            parts.append(f"{name} (exit {process.returncode}), last lines of its log:")
            parts.extend(f"  | {line}" for line in lines[-log_lines:])
        return "\n".join(parts)

    def exits(self) -> dict[str, int | None]:
        """Each worker's exit status but the killed ones' (None: still running). After
        `stop()`, anything but 0 is a worker that failed: `superticks worker` exits 0 on
        SIGTERM after storing its offsets."""
        return {
            name: process.returncode
            for name, process in self.processes.items()
            if name not in self.killed
        }

    async def stop(self, timeout_s: float = 30.0) -> None:
        """SIGCONT the stopped, SIGTERM all, wait; SIGKILL what is still there. Safe twice."""
        for name in list(self.stopped):
            self.signal(name, signal.SIGCONT)
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in self.processes.values():
            try:
                async with asyncio.timeout(timeout_s):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
