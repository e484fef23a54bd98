"""Bench reports: aligned tables, strict JSON with the machine and versions, quiet progress."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.report import (
    CpuTimes,
    Progress,
    Report,
    cpu_shares,
    cpu_times,
    plot_lines,
    strict,
    strict_json,
    table,
)


@dataclass(frozen=True)
class _Row:
    name: str
    rate: float


def test_table_aligns_columns_and_formats_numbers() -> None:
    text = table(["contender", "ticks", "ticks/s"], [["a", 1000, 12345.6], ["bb", 5, None]])
    lines = text.splitlines()
    assert lines[0].split() == ["contender", "ticks", "ticks/s"]
    assert lines[2].split() == ["a", "1,000", "12,346"]
    assert lines[3].split() == ["bb", "5", "-"]
    assert len({len(line) for line in (lines[0], lines[1], lines[2])}) == 1


def test_strict_turns_dataclasses_and_non_finite_floats_into_json_values() -> None:
    value = strict({"rows": [_Row("a", math.inf)], "nan": math.nan, "t": (1, 2)})
    assert value == {"rows": [{"name": "a", "rate": None}], "nan": None, "t": [1, 2]}


def test_strict_json_writes_null_for_a_non_finite_float_rather_than_fail_or_write_infinity() -> (
    None
):
    text = strict_json({"unavailable_s": math.inf, "rows": (_Row("a", math.nan),)})
    assert "Infinity" not in text
    assert "NaN" not in text
    assert json.loads(text) == {"unavailable_s": None, "rows": [{"name": "a", "rate": None}]}


def test_report_json_is_strict_and_carries_machine_versions_and_parameters() -> None:
    report = Report("consume", {"count": 10}, {"rate": math.inf}, broker="4.3.6")
    data = json.loads(report.to_json())
    assert data["bench"] == "consume"
    assert data["parameters"] == {"count": 10}
    assert data["results"] == {"rate": None}
    assert data["machine"]["cores"] >= 1
    assert data["versions"]["rabbitmq"] == "4.3.6"
    assert data["versions"]["rstream"]
    assert data["machine"]["cpu_during_run"] is None  # none given


def test_report_json_says_how_the_machines_cpu_went_during_the_run() -> None:
    shares = {"busy": 0.9, "idle": 0.05, "iowait": 0.0, "steal": 0.05}
    report = Report("latency", {}, {}, cpu=shares)
    assert json.loads(report.to_json())["machine"]["cpu_during_run"] == shares


def test_progress_draws_nothing_when_stderr_is_not_a_terminal() -> None:
    out = io.StringIO()
    with Progress("x", 10, stream=out) as progress:
        progress.update(5)
    assert out.getvalue() == ""


def test_progress_draws_a_bar_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with Progress("load", 10, stream=out) as progress:
        progress.update(10)
    assert "load [" in out.getvalue()
    assert "100%" in out.getvalue()


def test_a_closed_progress_bar_is_erased_once_and_draws_no_more() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    progress = Progress("load", 10, stream=out)
    progress.update(10)
    progress.close()
    erased = out.getvalue()
    assert erased.endswith("\r")
    progress.close()
    progress.update(10)
    assert out.getvalue() == erased


def test_plot_lines_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = plot_lines(
        tmp_path / "p.png", "t", "x", "y", {"a": ([0, 1], [1, 2])}, marks=[(0.5, "kill")]
    )
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_cpu_times_reads_the_machine_line_of_proc_stat() -> None:
    line = "cpu  100 5 50 800 20 3 2 40 0 0\n"  # user nice system idle iowait irq softirq steal
    assert cpu_times(line) == CpuTimes(busy=160, idle=800, iowait=20, steal=40)
    assert cpu_times("cpu0 1 2 3 4 5 6 7 8") is None  # a core's line, not the machine's
    assert cpu_times("") is None


def test_cpu_shares_split_the_time_between_two_readings() -> None:
    before = CpuTimes(busy=1_000, idle=1_000, iowait=10, steal=100)
    after = CpuTimes(busy=1_500, idle=1_150, iowait=110, steal=350)  # 500, 150, 100, 250
    assert cpu_shares(before, after) == {"busy": 0.5, "idle": 0.15, "iowait": 0.1, "steal": 0.25}


def test_cpu_shares_are_none_without_both_readings_or_time_between() -> None:
    reading = CpuTimes(busy=1, idle=2, iowait=0, steal=3)
    assert cpu_shares(None, reading) is None
    assert cpu_shares(reading, None) is None
    assert cpu_shares(reading, reading) is None
