"""One fault run: a fresh super stream, a live feed, a worker group, faults, and the verdict.

`FaultRun` is what `superticks bench failover` and `superticks chaos` share:

* `open()`: a fresh super stream (`partitions`), the `LiveFeed` (in this process), `workers`
  `superticks worker --handler verify` processes, and a wait until every partition is handled;
* fault primitives that remember what they broke (`kill_node`, `pause_node`, `cut_node`,
  `restart_node`, `kill_worker`, `freeze_worker`) and their undo (`heal_node`, `thaw_worker`,
  `replace_worker`); `restore()` undoes whatever is still broken (always called, in `close()`);
* observations: the leaders now (`leaders()`, asked of a node that is not faulted), the
  group's stored offsets (`stored_offsets()`), phases (`mark()`);
* `finish()`: stop the feed, read the stream back, wait until the group handled its last ticks,
  stop the workers, write ``run.json`` and judge it with `bench.verify.verify_run` (the same
  code as `superticks verify --run DIR`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import cluster as cl
from bench.livefeed import LiveFeed
from bench.phases import (
    Phase,
    faults_during,
    handling_times,
    handover_times,
    longest_gap,
    phase_figures,
    producer_gap_s,
)
from bench.verdict import RunVerdict
from bench.verify import read_stored, verify_run, write_run
from bench.workergroup import WorkerGroup
from partitioning.model import StreamConfig
from partitioning.topology import create_topology, delete_topology
from superticks.errors import ClusterError, ConfigError, StreamError, StreamUnavailable
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from workers.handled import read_handled

__all__ = ["NODE_GRACE_NS", "SIGNAL_GRACE_NS", "FaultRun", "node_of"]

SIGNAL_GRACE_NS = 100_000_000
"""A signalled worker may finish the write in progress on the other core: 0.1 s."""
NODE_GRACE_NS = 1_000_000_000
"""A worker sees its connection to a killed, restarted or cut-off node closed within ~1 s."""

log = logging.getLogger("superticks.bench")


async def _went_down(port: int, timeout_s: float = 30.0) -> int | None:
    """When the node behind `port` stops serving it (refused, or closed at once; a published
    port's proxy may accept and close), polled every 50 ms; None: not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(0.5):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except (OSError, TimeoutError):
            return time.time_ns()
        try:
            async with asyncio.timeout(0.1):
                closed = await reader.read(1) == b""
        except TimeoutError:
            closed = False  # open and silent: a live broker waits for our handshake
        except OSError:
            closed = True
        finally:
            writer.close()
        if closed:
            return time.time_ns()
        await asyncio.sleep(0.05)
    return None


def node_of(address: str) -> str:
    """The compose node advertising `address` (host:port)."""
    port = int(address.rsplit(":", 1)[1])
    return next(n.name for n in cl.NODES if n.stream_port == port)


class FaultRun:
    """See the module docstring. `async with FaultRun(...) as run:` opens and closes it."""

    def __init__(
        self,
        settings: ConnectionSettings,
        cluster: cl.Cluster,
        run_dir: Path,
        *,
        rate: float = 2_000.0,
        partitions: int = 3,
        workers: int = 3,
        symbols: int = 100,
        drop_offset: int | None = None,
        busy_ms: int = 0,
        busy_once: bool = False,
        busy_blocking: bool = False,
        label: str = "run",
        keep_streams: bool = False,
    ) -> None:
        self.settings = settings
        self.cluster = cluster
        self.run_dir = run_dir
        self.partitions = partitions
        self.super_stream = f"bench-{uuid.uuid4().hex[:6]}-{label}"
        self.group = f"{self.super_stream}-group"
        self.feed = LiveFeed(settings, self.super_stream, rate=rate, symbols=symbols)
        self.workers = WorkerGroup(
            self.super_stream,
            self.group,
            run_dir,
            count=workers,
            drop_offset=drop_offset,
            busy_ms=busy_ms,
            busy_once=busy_once,
            busy_blocking=busy_blocking,
        )
        self.phases: list[Phase] = []
        self.faults: list[dict[str, Any]] = []
        self.crash_windows: list[dict[str, Any]] = []
        self.coverage: dict[str, bool] = {}
        self.started_ns = 0
        self._phase: tuple[str, int] | None = None
        self._broken: dict[str, str] = {}  # node -> killed|paused|cut
        self._topology = False
        self.keep_streams = keep_streams
        """Keep the super stream at the end (for `superticks verify --run DIR` later)."""

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        if self.run_dir.exists() and any(self.run_dir.iterdir()):
            # its handled logs would be judged with this run's: every earlier tick "unexpected"
            raise ConfigError(
                f"run dir {self.run_dir} already holds a run: give each run a fresh --run-dir"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        await create_topology(
            self.settings,
            StreamConfig(
                super_stream=self.super_stream,
                partitions=self.partitions,
                max_length_bytes=2_000_000_000,
            ),
        )
        self._topology = True
        await self.feed.start()
        self.started_ns = time.time_ns()
        await self.workers.start()
        if not await self.workers.wait_handling(self.partitions):
            raise ClusterError(
                f"the worker group did not start handling every partition (60 s at most) "
                f"(logs: {self.run_dir}/w*.log)\n{self.workers.why_not_handling(self.partitions)}"
            )
        await self._settle()
        self.mark("steady")

    async def _settle(self, timeout_s: float = 10.0) -> None:
        """Until the partitions have spread over the workers (each of min(workers, partitions)
        workers active somewhere): the group's joining handovers are not the steady phase's."""
        wanted = min(self.workers.count, self.partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.workers.tail.poll()
            active = [w for w in self.workers.running() if self.workers.tail.active_on(w, 0.5)]
            if len(active) >= wanted:
                return
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        """Undo every fault, stop feed and workers, delete the streams. Safe twice."""
        try:
            await self.restore()
        finally:
            await self.feed.stop(flush_timeout_s=5.0)
            await self.workers.stop()
            if self._topology and not self.keep_streams:
                self._topology = False
                with contextlib.suppress(StreamError):
                    await delete_topology(self.settings, self.super_stream)
                    async with Admin(self.settings) as admin:
                        await admin.delete_stream(f"{self.super_stream}-dlq")

    async def __aenter__(self) -> FaultRun:
        try:
            await self.open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- phases and observations -----------------------------------------------------------
    def mark(self, name: str | None) -> int:
        """End the current phase and start `name` (None: just end it); returns now (ns)."""
        now = time.time_ns()
        if self._phase is not None:
            self.phases.append(Phase(self._phase[0], self._phase[1], now))
        self._phase = (name, now) if name is not None else None
        return now

    def log_fault(self, kind: str, target: str, at_ns: int, **extra: Any) -> None:
        entry = {
            "kind": kind,
            "target": target,
            "at_s": round((at_ns - self.started_ns) / 1e9, 3),
            "at_ns": at_ns,
        }
        entry.update(extra)
        self.faults.append(entry)
        log.info("fault %s on %s at %.3f s", kind, target, entry["at_s"])

    def _healthy_settings(self) -> ConnectionSettings:
        broken_ports = {n.stream_port for n in cl.NODES if n.name in self._broken}
        nodes = tuple(a for a in self.settings.nodes if a.port not in broken_ports)
        return self.settings.model_copy(update={"nodes": nodes or self.settings.nodes})

    async def leaders(self) -> dict[int, str]:
        """Partition -> the node leading it now (asked of a node not faulted); {} on failure
        (a partition without a leader included)."""
        now = await self.leaders_or_none()
        return {} if None in now.values() else {p: n for p, n in now.items() if n is not None}

    async def leaders_or_none(self) -> dict[int, str | None]:
        """`leaders()`, with None for a partition that has no leader right now (one is being
        elected, or its node is coming back); {} when the cluster could not be asked."""
        try:
            async with Admin(self._healthy_settings()) as admin:
                streams = await admin.partitions(self.super_stream)
                out: dict[int, str | None] = {}
                for i, stream in enumerate(streams):
                    try:
                        out[i] = node_of((await admin.info(stream)).leader)
                    except StreamUnavailable:
                        out[i] = None
                return out
        except (StreamError, ValueError, StopIteration) as exc:
            log.info("leaders unknown: %s", exc)
            return {}

    async def stored_offsets(self) -> dict[int, int]:
        """Partition -> the group's stored offset now (-1: none or unknown)."""
        out = dict.fromkeys(range(self.partitions), -1)
        with contextlib.suppress(StreamError):
            async with Admin(self._healthy_settings()) as admin:
                streams = await admin.partitions(self.super_stream)
                for i, s in enumerate(streams):
                    stored = await admin.stored_offset(s, self.group)
                    out[i] = -1 if stored is None else stored
        return out

    async def wait_handled_again(
        self,
        after_ns: int,
        partitions: list[int] | None = None,
        not_by: str | None = None,
        timeout_s: float = 60.0,
    ) -> bool:
        """Until a tick created after `after_ns` was handled on each partition."""
        wanted = list(range(self.partitions)) if partitions is None else partitions
        deadline = time.monotonic() + timeout_s
        tail = self.workers.tail
        while time.monotonic() < deadline:
            tail.poll()
            if all(tail.handled_after(p, after_ns, not_by) for p in wanted):
                return True
            await asyncio.sleep(0.05)
        return False

    # -- node faults -----------------------------------------------------------------------
    async def kill_node(self, node: str) -> None:
        self._broken[node] = "killed"
        await asyncio.to_thread(cl.kill, self.cluster, node)

    async def pause_node(self, node: str) -> None:
        self._broken[node] = "paused"
        await asyncio.to_thread(cl.pause, self.cluster, node)

    async def cut_node(self, node: str) -> None:
        self._broken[node] = "cut"
        await asyncio.to_thread(cl.partition, self.cluster, node)

    async def restart_node(self, node: str) -> int:
        """`docker restart` (a graceful stop, then start) and wait for the cluster. Returns
        when (wall clock, ns) the node stopped answering on its stream port: a graceful stop
        closes its connections a second or more after it was asked to stop."""
        self._broken[node] = "restarting"
        asked = time.time_ns()
        watch = asyncio.create_task(_went_down(cl.node_named(node).stream_port))
        try:
            await asyncio.to_thread(cl.restart, self.cluster, node)
        finally:
            self._broken.pop(node, None)
            if not watch.done():
                watch.cancel()
            down = await asyncio.gather(watch, return_exceptions=True)
        return down[0] if isinstance(down[0], int) else asked

    async def drain_node(self, node: str) -> cl.Drain:
        """Move the leadership of every stream `node` leads to the other nodes (`cluster.drain`,
        before a planned restart); returns the moves and what it could not move."""
        return await asyncio.to_thread(cl.drain, self.cluster, node)

    async def heal_node(self, node: str) -> None:
        """Undo what was done to `node` and wait until the cluster is whole again."""
        how = self._broken.get(node)
        state = (await asyncio.to_thread(self.cluster.container_states)).get(node)
        if how == "paused" and state == "paused":
            await asyncio.to_thread(cl.unpause, self.cluster, node)
        elif how == "cut":
            try:
                await asyncio.to_thread(cl.heal, self.cluster, node)
            except ClusterError as exc:
                if "already exists" not in str(exc):  # connected meanwhile
                    raise
                await asyncio.to_thread(self.cluster.wait_until_formed)
        elif how in ("killed", "restarting") or state not in ("running", "paused"):
            await asyncio.to_thread(cl.restart, self.cluster, node)
        else:
            await asyncio.to_thread(self.cluster.wait_until_formed)
        self._broken.pop(node, None)

    # -- worker faults ---------------------------------------------------------------------
    async def _window(self, worker: str, sig: signal.Signals) -> int:
        stored = await self.stored_offsets()
        if sig is signal.SIGKILL:
            await self.workers.kill(worker)
        else:
            self.workers.signal(worker, sig)
        at = time.time_ns()
        # margin: the worker may finish a write on the other core while the signal lands
        self._add_window(worker, at + SIGNAL_GRACE_NS, stored, f"{sig.name} {worker}")
        return at

    def _add_window(self, worker: str, at_ns: int, stored: dict[int, int], cause: str) -> None:
        self.crash_windows.append(
            {
                "worker": worker,
                "at_ns": at_ns,
                "stored": {str(p): o for p, o in stored.items()},
                "cause": cause,
            }
        )

    def node_crash_windows(self, at_ns: int, stored: dict[int, int], cause: str) -> None:
        """A node fault in place at `at_ns` cuts the connections of the workers on it: what
        each worker handled until then (plus `NODE_GRACE_NS`, the time a worker needs to see
        its connection closed) beyond the offsets stored before the fault (`stored`) may be
        handled again by a successor. Every running worker gets that window."""
        for worker in self.workers.running():
            self._add_window(worker, at_ns + NODE_GRACE_NS, stored, cause)

    async def kill_worker(self, worker: str) -> int:
        """SIGKILL `worker`; returns the time (ns). Its unstored handlings are a crash window."""
        return await self._window(worker, signal.SIGKILL)

    async def freeze_worker(self, worker: str) -> int:
        """SIGSTOP `worker` (a hung process); a crash window too, until `thaw_worker`."""
        return await self._window(worker, signal.SIGSTOP)

    def thaw_worker(self, worker: str) -> None:
        self.workers.signal(worker, signal.SIGCONT)

    async def replace_worker(self) -> str:
        """Start a new worker (the group is back to its size)."""
        return await self.workers.add()

    async def restore(self) -> None:
        """Undo every fault still in place (thaw workers, heal nodes), whatever happens."""
        for worker in list(self.workers.stopped):
            self.thaw_worker(worker)
        for node in list(self._broken):
            try:
                await self.heal_node(node)
            except ClusterError as exc:
                log.warning("healing %s failed: %s", node, exc)
                self._broken.pop(node, None)
        if not await asyncio.to_thread(lambda: self.cluster.status().formed):
            with contextlib.suppress(ClusterError):
                await asyncio.to_thread(self.cluster.wait_until_formed)

    # -- the end ---------------------------------------------------------------------------
    async def finish(self, drain_timeout_s: float = 60.0) -> tuple[RunVerdict, dict[str, Any]]:
        """Stop the feed, read back, let the group catch up, stop it, judge. Returns the
        verdict and the run's figures (phases, worst gaps)."""
        self.mark("drain")
        await self.feed.stop()
        stored = await read_stored(self.settings, self.super_stream)
        lasts = stored.last_offsets()
        deadline = time.monotonic() + drain_timeout_s
        tail = self.workers.tail
        while time.monotonic() < deadline:
            tail.poll()
            if all(tail.max_offset.get(p, -1) >= last for p, last in lasts.items()):
                break
            await asyncio.sleep(0.1)
        await self.workers.stop()
        end = self.mark(None)
        write_run(
            self.run_dir,
            {
                "super_stream": self.super_stream,
                "group": self.group,
                "partitions": self.partitions,
                "started_ns": self.started_ns,
                "producer": self.feed.to_dict(),
                "crash_windows": self.crash_windows,
                "coverage": self.coverage,
                "faults": self.faults,
                "worker_exits": self.workers.exits(),
            },
        )
        verdict = await verify_run(self.settings, self.run_dir, stored)
        handled = read_handled(self.run_dir / "handled")
        times = handling_times(handled)
        run_phases = [p for p in self.phases if p.name != "drain"]
        start = run_phases[0].start_ns if run_phases else self.started_ns
        stop = run_phases[-1].end_ns if run_phases else end
        gaps = {p: longest_gap(times.get(p, []), start, stop) for p in range(self.partitions)}
        worst = max(gaps, key=lambda p: gaps[p][1] - gaps[p][0])
        gap_from, gap_to = ((t - self.started_ns) / 1e9 for t in gaps[worst])
        figures = {
            "phases": phase_figures(
                run_phases, self.feed.gaps, times, self.partitions, handover_times(handled)
            ),
            "producer_max_gap_s": round(producer_gap_s(self.feed.gaps, start, stop), 3),
            "unavailability_s": round(gap_to - gap_from, 3),
            # where the worst unavailability was, and the faults it may be put down to
            "worst_gap": {
                "partition": worst,
                "from_s": round(gap_from, 3),
                "to_s": round(gap_to, 3),
                "faults": [
                    {k: f[k] for k in ("kind", "target", "at_s", "healed_after_s") if k in f}
                    for f in faults_during(self.faults, gap_from, gap_to)
                ],
            },
            "producer_reconnects": self.feed.reconnects,
            "handled": handled,
        }
        return verdict, figures
