"""superticks installed from its wheel into a fresh virtualenv, outside any checkout: the
command answers, ships its type information, and finds the compose file and the configs it
mounts (packaged in the wheel)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh virtualenv (outside the checkout) with the wheel installed."""
    uv = shutil.which("uv")
    assert uv is not None, "uv builds and installs the wheel"
    where = tmp_path_factory.mktemp("installed")
    subprocess.run([uv, "build", "--wheel", "-q", "-o", str(where / "dist")], cwd=ROOT, check=True)
    wheel = next((where / "dist").glob("superticks-*.whl"))
    subprocess.run([uv, "venv", "-q", str(where / "venv")], cwd=where, check=True)
    python = where / "venv" / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), str(wheel)], cwd=where, check=True
    )
    return where / "venv" / "bin"


def _env() -> dict[str, str]:
    """This environment without what would point back into a checkout (the compose file,
    the checkout's virtualenv), driving the compose cluster (reads only, here)."""
    drop = ("SUPERTICKS_COMPOSE_FILE", "SUPERTICKS_CLUSTER", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=bin_dir.parent.parent,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_installed_command_answers_help(installed: Path) -> None:
    done = _run(installed, "superticks", "--help")
    assert done.returncode == 0, done.stderr
    assert "produce" in done.stdout


def test_the_installed_package_finds_its_compose_file_and_configs(installed: Path) -> None:
    probe = (
        "import json, superticks.settings as s; f = s.ClusterSettings().compose_file; "
        "print(json.dumps([str(f), str(f.parent)]))"
    )
    done = _run(installed, "python", "-c", probe)
    assert done.returncode == 0, done.stderr
    compose_file, folder = map(Path, json.loads(done.stdout))
    assert compose_file.is_file()
    assert not compose_file.is_relative_to(ROOT)
    for mounted in (
        "cluster/config/rabbitmq.conf",
        "cluster/config/rabbit1.conf",
        "cluster/config/enabled_plugins",
        "cluster/scripts/make-certs.sh",
        "monitoring/prometheus.yml",
    ):
        assert (folder / mounted).is_file(), mounted


def test_the_installed_packages_ship_py_typed(installed: Path) -> None:
    probe = (
        "import importlib, pathlib; print(all((pathlib.Path(importlib.import_module(p).__file__)"
        ".parent / 'py.typed').is_file() for p in "
        "('superticks', 'cluster', 'partitioning', 'workers', 'bench', 'monitoring')))"
    )
    done = _run(installed, "python", "-c", probe)
    assert done.stdout.strip() == "True", done.stderr


@pytest.mark.cluster
def test_the_installed_command_reads_the_cluster_status(installed: Path) -> None:
    deadline = time.monotonic() + 60  # other tests' chaos may have a node restarting
    while True:
        done = _run(installed, "superticks", "cluster", "status", "--json")
        status = json.loads(done.stdout)
        if status["formed"] or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert done.returncode == 0, done.stderr
    assert [n["container_state"] for n in status["nodes"]] == ["running"] * 3
