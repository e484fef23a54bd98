"""The lag exporter's image is rebuilt only when what it is built from changed, and the compose
cluster's `down` also removes the exporter (a service of the `monitoring` profile)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cluster import Cluster
from cluster.compose import MONITORING_PROFILE
from cluster.image import exporter_source_hash

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    for pkg in ("monitoring", "tests"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "x.py").write_text("A = 1\n")
    return tmp_path


def test_a_changed_source_file_changes_the_hash(repo: Path) -> None:
    before = exporter_source_hash(repo)
    (repo / "monitoring" / "x.py").write_text("A = 2\n")
    assert exporter_source_hash(repo) != before


def test_a_changed_lock_file_changes_the_hash(repo: Path) -> None:
    before = exporter_source_hash(repo)
    (repo / "uv.lock").write_text("changed\n")
    assert exporter_source_hash(repo) != before


def test_tests_do_not_change_the_hash(repo: Path) -> None:
    before = exporter_source_hash(repo)
    (repo / "tests" / "x.py").write_text("A = 2\n")
    assert exporter_source_hash(repo) == before


@pytest.mark.parametrize("exporter", [True, False])
def test_down_names_the_exporters_profile(exporter: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(
        "cluster.compose.subprocess.run", lambda cmd, **_: commands.append(list(cmd))
    )
    Cluster(exporter=exporter).down()
    assert commands
    down = commands[-1]
    assert down[down.index("down") - 2 : down.index("down")] == ["--profile", MONITORING_PROFILE]
