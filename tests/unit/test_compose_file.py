"""Where the compose file comes from, and a clear error when it is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.compose import Cluster
from superticks.errors import ClusterError
from superticks.settings import (
    ClusterBackend,
    ClusterSettings,
    ConnectionSettings,
    default_compose_file,
)


def test_a_checkout_uses_its_own_compose_file() -> None:
    assert default_compose_file() == Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_a_missing_compose_file_is_a_clear_error_before_anything_starts(tmp_path: Path) -> None:
    settings = ClusterSettings(cluster=ClusterBackend.COMPOSE, compose_file=tmp_path / "x.yml")
    with pytest.raises(ClusterError, match="SUPERTICKS_COMPOSE_FILE"):
        Cluster(settings, ConnectionSettings()).up()
