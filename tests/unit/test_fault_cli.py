"""`superticks verify`, `bench failover` and `chaos`: bad input exits 2 before anything starts,
and the CLI's names agree with the harnesses'."""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.chaos import FAULTS, describe_gap, draw
from bench.failover import SCENARIOS
from bench.phases import handled_timeline
from superticks.cli.chaos import FAULT_NAMES, duration_s
from superticks.cli.failover import SCENARIO_NAMES, plot_result
from superticks.cli.main import main
from workers.handled import Handled


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NODES", "USERNAME", "VHOST", "CLUSTER"):
        monkeypatch.setenv(f"SUPERTICKS_{name}", "placeholder")
        monkeypatch.delenv(f"SUPERTICKS_{name}")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["chaos", "--faults", "kill,meteor"], "unknown fault 'meteor'"),
        (["chaos", "--faults", ""], "unknown fault"),
        (["chaos", "--duration", "5 minutes"], "expected a duration > 0"),
        (["chaos", "--every", "0s"], "expected a duration > 0"),
        (["bench", "failover", "--scenario", "node-explode"], "unknown scenario 'node-explode'"),
        (["bench", "failover", "--rate", "0"], "expected a number > 0"),
        (["verify"], "the following arguments are required: --run"),
        (["worker", "--group", "g", "--handler", "shout"], "invalid choice: 'shout'"),
    ],
)
def test_bad_flags_exit_2_naming_what_was_wrong(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_the_verifying_handler_needs_a_record_dir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--group", "g", "--handler", "verify"]) == 2
    assert "--record-dir" in capsys.readouterr().err


def test_verify_of_a_directory_that_is_not_a_run_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--run", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["bench", "failover"], ["chaos"]])
def test_a_run_dir_that_holds_an_earlier_run_exits_2(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "handled").mkdir()  # its logs would be judged with the new run's
    assert main([*command, "--run-dir", str(tmp_path)]) == 2
    assert f"--run-dir {tmp_path} is not empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("20s", 20.0), ("5m", 300.0), ("1h", 3600.0), ("500ms", 0.5)],
)
def test_durations_read_with_their_unit(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


def test_a_duration_without_a_number_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration_s("m")


def test_the_cli_names_every_scenario_and_fault_of_the_harnesses() -> None:
    assert SCENARIO_NAMES == SCENARIOS
    assert FAULT_NAMES == FAULTS


def test_the_same_seed_draws_the_same_faults_on_the_same_targets() -> None:
    workers = ["w3", "w1", "w2"]

    def plan(seed: int) -> list[tuple[str, str]]:
        rng = random.Random(seed)
        return [draw(rng, list(FAULTS), workers) for _ in range(20)]

    assert plan(7) == plan(7)
    assert plan(7) != plan(8)
    kinds = {kind for kind, _ in plan(7)}
    assert kinds <= set(FAULTS)
    for kind, target in plan(7):
        assert target in (
            workers if kind.startswith("worker") else ["rabbit1", "rabbit2", "rabbit3"]
        )


def test_the_worst_gap_is_said_with_its_partition_times_and_faults() -> None:
    gap = {
        "partition": 1,
        "from_s": 261.84,
        "to_s": 293.99,
        "faults": [
            {"kind": "pause", "target": "rabbit1", "at_s": 261.705, "healed_after_s": 13.8},
            {"kind": "worker-hang", "target": "w3", "at_s": 281.86, "healed_after_s": 12.0},
        ],
    }
    assert describe_gap(gap) == (
        "partition 1, 261.8-294.0 s: pause rabbit1 at 261.7 s, worker-hang w3 at 281.9 s"
    )
    assert describe_gap({**gap, "faults": []}).endswith(": no fault held or healing")
    assert describe_gap({}) == ""


def test_bench_failover_plots_lag_and_handled_rate_per_scenario(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    second = 1_000_000_000
    handled = [
        Handled("w1", p, 0, "A", 0, t * 1_000_000, t * second) for p in (0, 1) for t in (1, 2)
    ]
    result = SimpleNamespace(
        scenario="node-kill",
        timeline=handled_timeline(handled, 0, 3 * second),
        marks=[(1.5, "node-kill rabbit2"), (2.5, "heal")],
    )

    paths = plot_result(result, tmp_path)

    assert [p.name for p in paths] == ["node-kill-lag.png", "node-kill-handled.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


async def test_a_scenario_named_twice_runs_in_a_directory_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.failover as failover

    dirs: list[Path] = []

    async def fake_run(*args: object) -> SimpleNamespace:
        dirs.append(args[3])  # type: ignore[arg-type]
        return SimpleNamespace()

    monkeypatch.setattr(failover, "run_scenario", fake_run)
    await failover.run_failover_bench(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        ["node-kill", "worker-kill", "node-kill", "node-kill"],
        tmp_path,
    )
    assert [d.name for d in dirs] == ["node-kill", "worker-kill", "node-kill-2", "node-kill-3"]
