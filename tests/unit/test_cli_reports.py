"""Every bench's `--json` is one report of the same shape: the bench, when it started, the
machine (with how its CPU went while the bench ran), versions, its parameters and its results.
The benches' runs are replaced by fakes: what is pinned here is the command line's plumbing."""

from __future__ import annotations

import asyncio
import importlib
import json
from types import SimpleNamespace
from typing import Any

import pytest

from superticks.cli import reporting
from superticks.cli.main import main

RESULTS: dict[str, Any] = {"figure": 1.5, "rows": [1, 2]}
FAKES = [
    (["filter", "--count", "500"], "bench.filter", "run_filter_bench", {"count": 500}),
    (["monitor", "--groups", "2"], "bench.monitor", "run_monitor_bench", {"groups": 2}),
    (["audit", "--count", "700"], "bench.trading", "bench_rebuild", {"count": 700}),
    (["aggregate", "--venues", "2"], "bench.trading", "bench_aggregate", {"venues": 2}),
]


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report asks the cluster for the broker's version; not here."""
    monkeypatch.setattr(reporting, "_broker_version", lambda: "4.3.6")
    for name in ("NODES", "USERNAME", "VHOST", "CLUSTER"):
        monkeypatch.delenv(f"SUPERTICKS_{name}", raising=False)


@pytest.mark.parametrize(("argv", "module", "function", "given"), FAKES, ids=lambda v: str(v))
def test_a_bench_json_is_one_report_with_machine_versions_parameters_and_results(
    argv: list[str],
    module: str,
    function: str,
    given: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def fake(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(0.05)  # a few of the kernel's clock ticks: CPU shares to report
        if function.startswith("run_"):  # these return a result object
            return SimpleNamespace(to_dict=lambda: RESULTS)
        return RESULTS

    monkeypatch.setattr(importlib.import_module(module), function, fake)

    assert main(["bench", *argv, "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert list(report) == ["bench", "started", "machine", "versions", "parameters", "results"]
    assert report["bench"] == argv[0]
    assert report["results"] == RESULTS
    assert given.items() <= report["parameters"].items()
    assert report["versions"]["rabbitmq"] == "4.3.6"
    shares = report["machine"]["cpu_during_run"]  # read as the bench started and at its end
    assert set(shares) == {"busy", "idle", "iowait", "steal"}


def test_the_machine_cpu_is_read_as_the_bench_starts_not_as_the_command_line_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bench.report

    reads: list[str] = []
    monkeypatch.setattr(bench.report, "cpu_times", lambda stat=None: reads.append("read"))

    def handler(args: Any) -> int:
        reads.append("ran")
        return 0

    wrapped = reporting.measured(handler)
    assert reads == []
    assert wrapped(SimpleNamespace()) == 0
    assert reads == ["read", "ran"]


def test_every_bench_reads_the_machine_cpu_as_it_starts() -> None:
    """A bench added later gets the report's CPU shares too: its handler is wrapped."""
    import argparse

    from superticks.cli.main import build_parser

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    benches = subcommands(subcommands(build_parser())["bench"])
    known = [
        "publish",
        "consume",
        "latency",
        "scaling",
        "filter",
        "failover",
        "monitor",
        "audit",
        "aggregate",
    ]
    assert set(known) <= set(benches)
    for name, bench in benches.items():
        assert bench.get_default("handler").__name__ == "run_measured", name
