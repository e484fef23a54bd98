"""The node table agrees with docker-compose.yml, and node names are checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cluster.node import NODES, node_named
from superticks.errors import PortInUse, UnknownNode

COMPOSE = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()


def test_every_published_port_is_on_loopback_and_matches_the_node_table() -> None:
    published = re.findall(r'"(\d+\.\d+\.\d+\.\d+):(\d+):(\d+)"', COMPOSE)
    assert {host for host, _, _ in published} == {"127.0.0.1"}
    expected = {
        (str(port), str(target))
        for n in NODES
        for port, target in zip(n.ports.values(), (5552, 5672, 15672, 15692, 5551), strict=True)
    }
    assert {(p, t) for _, p, t in published} == expected


def test_node_names_resolve_in_every_spelling() -> None:
    assert node_named("rabbit2") is NODES[1]
    assert node_named("rabbit@rabbit2") is NODES[1]
    assert node_named("2") is NODES[1]
    assert node_named("superticks-rabbit2") is NODES[1]


def test_unknown_node_names_the_known_ones() -> None:
    with pytest.raises(UnknownNode, match="rabbit1, rabbit2, rabbit3"):
        node_named("rabbit4")


def test_port_in_use_says_which_port_and_what_to_do() -> None:
    message = str(PortInUse(5553, "rabbit2 stream"))
    assert "127.0.0.1:5553" in message
    assert "rabbit2 stream" in message
    assert "superticks cluster down" in message
