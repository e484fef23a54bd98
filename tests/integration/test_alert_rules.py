"""The alert rules (monitoring/alerts.yml) pass their promtool unit tests (alerts_test.yml:
firing and not-firing cases for every rule), and promtool accepts the rules and prometheus.yml.

promtool runs from the compose file's Prometheus image (the official one, or the one built
from Debian's packages), with no network.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cluster.image import ensure_images
from superticks.settings import ClusterSettings

pytestmark = pytest.mark.docker

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"


@pytest.fixture(scope="module")
def promtool() -> list[str]:
    image = ensure_images(ClusterSettings())["SUPERTICKS_PROMETHEUS_IMAGE"]
    return [
        *("docker", "run", "--rm", "--network", "none", "--entrypoint", "promtool"),
        *("-v", f"{MONITORING}:/w:ro", image),
    ]


def _run(promtool: list[str], *args: str) -> str:
    result = subprocess.run(
        [*promtool, *args], capture_output=True, text=True, check=False, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_every_alert_rule_passes_its_firing_and_not_firing_cases(promtool: list[str]) -> None:
    assert "SUCCESS" in _run(promtool, "test", "rules", "/w/alerts_test.yml")


def test_every_alert_rule_has_a_test() -> None:
    rules = set(re.findall(r"- alert: (\w+)", (MONITORING / "alerts.yml").read_text()))
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "alerts_test.yml").read_text()))
    assert len(rules) == 15
    assert rules <= tested


def test_promtool_accepts_the_rules_and_the_prometheus_config(promtool: list[str]) -> None:
    assert "SUCCESS: 15 rules found" in _run(promtool, "check", "rules", "/w/alerts.yml")
    assert "is valid prometheus config" in _run(promtool, "check", "config", "/w/prometheus.yml")
