"""What every bench hands its reader: a table, a strict JSON report, plots and a progress bar.

* `Report` is one bench's result: its name, the parameters it ran with and its results (any
  JSON-able values, dataclasses included); `Report.to_json()` adds the machine (with how its
  CPU went during the run, when given) and the software versions and is strict JSON (an
  infinite or NaN figure is written as ``null``).
* `table(headers, rows)` lines up rows as text (numbers right-aligned, thousands separated).
* `Progress` draws a bar on stderr for long runs, only when stderr is a terminal and the bench
  was not asked for JSON; otherwise it draws nothing.
* `cpu_times()` / `cpu_shares(before, after)`: how the machine's CPU time went between two
  readings: busy, idle, idle waiting for the disk, and stolen by the hypervisor (on a shared
  VM every figure of the window moves with it).
* `plot_lines(...)` writes one PNG of named series (rate vs latency, lag over time, ...), with
  optional vertical marks (faults); `plot_bars(...)` one of named values (contenders' rates).
  Both need matplotlib (``superticks[plot]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from superticks.errors import ConfigError

__all__ = [
    "CpuTimes",
    "Progress",
    "Report",
    "cpu_shares",
    "cpu_times",
    "machine",
    "plot_bars",
    "plot_lines",
    "strict",
    "strict_json",
    "table",
    "versions",
]

_PACKAGES = ("superticks", "rstream", "orjson", "uvloop", "rbfly", "pika")


def machine() -> dict[str, Any]:
    """The machine a bench ran on: host, CPU model, cores, memory, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gb = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "load_average": [round(x, 2) for x in load] if load else None,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class CpuTimes:
    """The machine's CPU time so far, in clock ticks summed over its cores (`/proc/stat`)."""

    busy: int
    idle: int
    iowait: int  # idle with I/O outstanding (the disk behind)
    steal: int  # taken by the hypervisor for other guests


def cpu_times(stat: str | None = None) -> CpuTimes | None:
    """The machine's CPU times now (None where `/proc/stat` cannot be read); `stat`: its text."""
    if stat is None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                stat = f.readline()
        except OSError:
            return None
    fields = stat.split()
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[1:9])
    return CpuTimes(user + nice + system + irq + softirq, idle, iowait, steal)


def cpu_shares(before: CpuTimes | None, after: CpuTimes | None) -> dict[str, float] | None:
    """Fractions of the machine's CPU time between two readings: busy, idle, iowait, steal
    (summing to 1; None without both readings or without time between them)."""
    if before is None or after is None:
        return None
    spent = {
        name: getattr(after, name) - getattr(before, name)
        for name in ("busy", "idle", "iowait", "steal")
    }
    total = sum(spent.values())
    if total <= 0:
        return None
    return {name: round(value / total, 3) for name, value in spent.items()}


def versions(broker: str | None = None) -> dict[str, str | None]:
    """Versions of the packages that decide a bench's figures (None: not installed), and the
    broker's when known."""
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["rabbitmq"] = broker
    return found


def strict(value: Any) -> Any:
    """`value` as plain JSON types: dataclasses and mappings as dicts, tuples as lists, and
    non-finite floats as None (JSON has no Infinity or NaN)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return strict({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def strict_json(value: Any) -> str:
    """`value` as one line of strict JSON (`strict`: a non-finite float becomes null, never
    Infinity or NaN, which JSON parsers refuse): the one JSON writer of the benches, `verify`
    and `chaos`."""
    return json.dumps(strict(value), allow_nan=False)


@dataclasses.dataclass
class Report:
    """One bench run: `bench` (its name), `parameters` and `results`."""

    bench: str
    parameters: dict[str, Any]
    results: Any
    broker: str | None = None
    started: str = dataclasses.field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    cpu: dict[str, float] | None = None
    """How the machine's CPU went during the run (`cpu_shares`), when known."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "started": self.started,
            "machine": {**machine(), "cpu_during_run": self.cpu},
            "versions": versions(self.broker),
            "parameters": strict(self.parameters),
            "results": strict(self.results),
        }

    def to_json(self) -> str:
        """One line of strict JSON (`strict_json`)."""
        return strict_json(self.to_dict())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if value else "0"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as aligned text under `headers`: the first column left-aligned, the others right;
    ints with thousands separators, floats rounded, None and non-finite floats as ``-``."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(widths[i]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


class Progress:
    """A progress bar on stderr: ``with Progress("publishing", total, enabled=not json) as p:
    p.update(done)``. Draws only when `enabled` and the stream is a terminal; at most ~10 times
    per second; erased on exit."""

    def __init__(
        self, label: str, total: float, *, enabled: bool = True, stream: IO[str] | None = None
    ) -> None:
        self.label = label
        self.total = max(total, 1e-9)
        self._stream = stream or sys.stderr
        self.enabled = enabled and self._stream.isatty()
        self._drawn = 0.0
        self._started = time.monotonic()

    def update(self, done: float, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn < 0.1 and done < self.total:
            return
        self._drawn = now
        share = min(1.0, max(0.0, done / self.total))
        filled = int(share * 30)
        bar = "#" * filled + "." * (30 - filled)
        elapsed = now - self._started
        self._stream.write(
            f"\r{self.label} [{bar}] {share:4.0%} {elapsed:5.1f}s {note}"[:120].ljust(120)
        )
        self._stream.flush()

    def close(self) -> None:
        """Erase the bar (safe twice)."""
        if self.enabled:
            self.enabled = False
            self._stream.write("\r" + " " * 120 + "\r")
            self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib: `uv sync` (dev) or `pip install 'superticks[plot]'`"
        ) from None
    return plt


def plot_bars(path: Path, title: str, ylabel: str, bars: Mapping[str, float]) -> Path:
    """Write a horizontal bar chart of named values (contenders' rates) to `path` (PNG)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.5 * len(bars)))
    try:
        names = list(bars)[::-1]
        values = [bars[n] for n in names]
        ax.barh(names, values)
        for y, v in enumerate(values):
            ax.annotate(f" {v:,.0f}", (v, y), va="center", fontsize=8)
        ax.set_title(title)
        ax.set_xlabel(ylabel)
        ax.grid(True, axis="x", alpha=0.3)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def plot_lines(
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    marks: Sequence[tuple[float, str]] = (),
    log_y: bool = False,
    markers: bool = False,
) -> Path:
    """Write one line chart of named (xs, ys) series to `path` (PNG); `marks` draws labelled
    vertical lines (e.g. faults). Raises ConfigError when matplotlib is not installed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        for name, (xs, ys) in series.items():
            ax.plot(list(xs), list(ys), label=name, marker="o" if markers else None)
        for x, label in marks:
            ax.axvline(x, color="grey", linestyle="--", linewidth=0.8)
            ax.annotate(
                label, (x, 1), xycoords=("data", "axes fraction"), rotation=90, fontsize=7, va="top"
            )
        if log_y:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if series:
            ax.legend(fontsize=8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
