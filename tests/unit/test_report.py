"""Bench reports: aligned tables, strict JSON with the machine and versions, quiet progress."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.report import Progress, Report, plot_lines, strict, table


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


def test_report_json_is_strict_and_carries_machine_versions_and_parameters() -> None:
    report = Report("consume", {"count": 10}, {"rate": math.inf}, broker="4.3.6")
    data = json.loads(report.to_json())
    assert data["bench"] == "consume"
    assert data["parameters"] == {"count": 10}
    assert data["results"] == {"rate": None}
    assert data["machine"]["cores"] >= 1
    assert data["versions"]["rabbitmq"] == "4.3.6"
    assert data["versions"]["rstream"]


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


def test_plot_lines_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = plot_lines(
        tmp_path / "p.png", "t", "x", "y", {"a": ([0, 1], [1, 2])}, marks=[(0.5, "kill")]
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
