"""`superticks cluster status` with SUPERTICKS_CLUSTER=external describes the cluster it points
at, from that cluster's management API (node names as the cluster reports them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import cluster as cl

pytestmark = pytest.mark.cluster

CLI = "import sys; from superticks.cli.main import main; sys.exit(main())"


def test_status_of_an_external_cluster_lists_its_own_running_nodes(cluster: cl.Cluster) -> None:
    listed = sorted(n.name for n in cluster.management.nodes())
    done = subprocess.run(
        [sys.executable, "-c", CLI, "cluster", "status", "--json"],
        env={**os.environ, "SUPERTICKS_CLUSTER": "external"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["backend"] == "external"
    assert status["state"] == "formed"
    assert sorted(n["node"] for n in status["nodes"]) == listed
    assert len(listed) == 3
    assert all(n["in_cluster"] for n in status["nodes"])
