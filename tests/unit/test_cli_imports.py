"""`superticks --help` and every command's `--help` answer without importing what the commands
need when they run (pydantic, pydantic-settings, rstream, testcontainers, the cluster driver,
the producer, the workers, the benches): each command imports those only when it runs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from superticks.cli.main import build_parser

HEAVY = (
    "bench",
    "cluster",
    "docker",
    "hdrh",
    "monitoring",
    "partitioning",
    "prometheus_client",
    "pydantic",
    "pydantic_settings",
    "rstream",
    "testcontainers",
    "uvloop",
    "workers",
)

PROBE = """
import json, sys
from superticks.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(argv: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def _commands() -> list[str]:
    """Every command registered on the parser (new command modules are covered too)."""
    actions = build_parser()._subparsers._group_actions  # type: ignore[union-attr]
    commands = next(a for a in actions if isinstance(a, argparse._SubParsersAction))
    return sorted(commands.choices)


@pytest.mark.parametrize(
    "argv",
    [["--help"], *([command, "--help"] for command in _commands())],
    ids=lambda argv: " ".join(argv),
)
def test_help_imports_none_of_the_heavy_modules(argv: list[str]) -> None:
    loaded = _modules_after(argv)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []


def test_the_probe_sees_heavy_imports_when_a_command_runs() -> None:
    """The check can fail: a command that runs (here: refused for a bad setting, after
    reading the settings) has pydantic loaded."""
    loaded = _modules_after(["--nodes", "nonsense", "topology", "describe"])
    assert "pydantic" in loaded
