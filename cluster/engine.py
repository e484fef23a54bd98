"""The Docker engine and Compose v2 that the cluster runs on: found, or installed and started.

The shell scripts in `cluster/scripts/` do the host work (apt, dockerd); this module runs them and
turns their failures into `EngineUnavailable` with the script's own explanation.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from superticks.errors import EngineUnavailable

__all__ = ["engine_answers", "ensure_engine", "stop_started_engine"]

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def engine_answers() -> bool:
    """True when `docker info` and `docker compose version` both work."""
    if shutil.which("docker") is None:
        return False
    for cmd in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            subprocess.run(cmd, capture_output=True, check=True, timeout=20)
        except (subprocess.SubprocessError, OSError):
            return False
    return True


def ensure_engine() -> None:
    """Make an engine with Compose v2 answer, installing/starting it where we may (see script)."""
    if engine_answers():
        return
    result = subprocess.run(
        ["bash", str(SCRIPTS / "ensure-engine.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-6:]
        raise EngineUnavailable("\n".join(detail) or "no Docker engine answers")


def stop_started_engine() -> None:
    """Stop a dockerd that `ensure_engine` started (never one that something else runs)."""
    subprocess.run(["bash", str(SCRIPTS / "stop-engine.sh")], check=False, timeout=60)
