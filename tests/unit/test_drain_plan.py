"""Where a drained node's stream leaders go (`cluster.drain_plan`)."""

from __future__ import annotations

import pytest

from cluster import drain_plan

R1, R2, R3 = "rabbit@rabbit1", "rabbit@rabbit2", "rabbit@rabbit3"
NODES = (R1, R2, R3)


def test_only_the_streams_the_node_leads_move_and_never_to_itself() -> None:
    leaders = [("/", "t-0", R1), ("/", "t-1", R2), ("/", "t-2", R3)]
    assert drain_plan(leaders, R1, NODES) == [("/", "t-0", R2)]


def test_moved_leaders_go_to_the_node_leading_the_fewest_and_spread_evenly() -> None:
    leaders = [("/", f"a-{i}", R1) for i in range(4)] + [("/", "b-0", R2)]
    plan = drain_plan(leaders, R1, NODES)
    assert [target for _, _, target in plan] == [R3, R2, R3, R2]


def test_every_vhost_is_drained() -> None:
    leaders = [("/", "t-0", R2), ("prod", "t-0", R2)]
    assert drain_plan(leaders, R2, NODES) == [("/", "t-0", R1), ("prod", "t-0", R3)]


def test_a_node_leading_nothing_has_nothing_to_move() -> None:
    assert drain_plan([("/", "t-0", R2)], R1, NODES) == []


def test_a_lone_node_cannot_be_drained() -> None:
    with pytest.raises(ValueError, match="no node but"):
        drain_plan([("/", "t-0", R1)], R1, (R1,))
