"""Where a drained node's stream leaders go (`cluster.drain_plan`)."""

from __future__ import annotations

import pytest

from cluster import drain_plan
from cluster.management import QueueInfo

R1, R2, R3 = "rabbit@rabbit1", "rabbit@rabbit2", "rabbit@rabbit3"
NODES = (R1, R2, R3)


def led(stream: str, leader: str, vhost: str = "/", online: tuple[str, ...] = NODES) -> QueueInfo:
    return QueueInfo(stream, "stream", leader, NODES, online, 0, vhost)


def test_only_the_streams_the_node_leads_move_and_never_to_itself() -> None:
    placements = [led("t-0", R1), led("t-1", R2), led("t-2", R3)]
    assert drain_plan(placements, R1, NODES) == [("/", "t-0", R2)]


def test_moved_leaders_go_to_the_node_leading_the_fewest_and_spread_evenly() -> None:
    placements = [led(f"a-{i}", R1) for i in range(4)] + [led("b-0", R2)]
    plan = drain_plan(placements, R1, NODES)
    assert [target for _, _, target in plan] == [R3, R2, R3, R2]


def test_every_vhost_is_drained() -> None:
    placements = [led("t-0", R2), led("t-0", R2, vhost="prod")]
    assert drain_plan(placements, R2, NODES) == [("/", "t-0", R1), ("prod", "t-0", R3)]


def test_a_leader_moves_only_to_a_member_that_runs() -> None:
    placements = [led("t-0", R1, online=(R1, R3)), led("t-1", R3)]
    assert drain_plan(placements, R1, NODES) == [("/", "t-0", R3)]


def test_a_stream_with_no_other_member_running_is_left_where_it_is() -> None:
    placements = [led("t-0", R1, online=(R1,)), led("t-1", R1)]
    assert drain_plan(placements, R1, NODES) == [("/", "t-1", R2)]


def test_a_placement_without_running_members_listed_may_go_to_any_node() -> None:
    assert drain_plan([led("t-0", R1, online=())], R1, NODES) == [("/", "t-0", R2)]


def test_a_node_leading_nothing_has_nothing_to_move() -> None:
    assert drain_plan([led("t-0", R2)], R1, NODES) == []


def test_a_lone_node_cannot_be_drained() -> None:
    with pytest.raises(ValueError, match="no node but"):
        drain_plan([led("t-0", R1)], R1, (R1,))


class _FakeManagement:
    def __init__(self, streams: list[QueueInfo]) -> None:
        self._streams = streams

    def streams(self) -> list[QueueInfo]:
        return self._streams


class _FakeCluster:
    """Just what `drain` asks of a cluster: the streams and their leaders, as the management
    API would list them (here they never change: every transfer was refused)."""

    def __init__(self, streams: list[QueueInfo]) -> None:
        self.management = _FakeManagement(streams)

    def refuse_external(self, _what: str) -> None:
        return None


def test_a_drain_that_the_broker_refuses_reports_the_stream_stuck_with_the_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cluster.chaos as chaos

    asked: list[list[str]] = []

    def refuse(container: str, plan: list[tuple[str, str, str]]) -> list[str | None]:
        asked.append([stream for _, stream, _ in plan])
        return ["{error,not_found}"] * len(plan)

    monkeypatch.setattr(chaos, "_transfer", refuse)
    monkeypatch.setattr(chaos, "_DRAIN_S", 0.5)
    fake = _FakeCluster([led("a", R1), led("b", R2)])

    result = chaos.drain(fake, "rabbit1")  # type: ignore[arg-type]

    assert result.moves == ()
    assert result.stuck == (("/", "a"),)
    assert result.refused == (("/", "a", "{error,not_found}"),)
    assert len(asked) >= 2, "a refused transfer is asked again until the deadline"
    assert all(call == ["a"] for call in asked)


class _Rejoining(_FakeCluster):
    """A stream led by rabbit1 whose other members run only from the third listing on (a
    node that just rejoined); a transfer to a running member moves the leader."""

    def __init__(self) -> None:
        super().__init__([])
        self.listings = 0
        self.leader = R1
        self.management = self  # type: ignore[assignment]

    def streams(self) -> list[QueueInfo]:
        self.listings += 1
        online = NODES if self.listings >= 3 else (R1,)
        return [led("a", self.leader, online=online)]


def test_a_drain_waits_for_the_other_members_of_a_stream_to_run_and_then_moves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cluster.chaos as chaos

    fake = _Rejoining()

    def transfer(container: str, plan: list[tuple[str, str, str]]) -> list[str | None]:
        for _, _, target in plan:
            fake.leader = target
        return [None] * len(plan)

    monkeypatch.setattr(chaos, "_transfer", transfer)
    monkeypatch.setattr(chaos.time, "sleep", lambda _s: None)

    result = chaos.drain(fake, "rabbit1")  # type: ignore[arg-type]

    assert result.stuck == ()
    assert [target for _, _, target in result.moves] == [R2]
    assert fake.listings >= 3


def test_a_stream_with_no_other_member_is_left_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import cluster.chaos as chaos

    lone = QueueInfo("solo", "stream", R1, (R1,), (R1,), 0)
    fake = _FakeCluster([lone])
    monkeypatch.setattr(chaos, "_transfer", lambda *_a: pytest.fail("nothing to transfer"))

    result = chaos.drain(fake, "rabbit1")  # type: ignore[arg-type]

    assert result.stuck == (("/", "solo"),)
    assert result.moves == ()


def test_await_members_returns_the_streams_still_missing_a_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cluster.chaos as chaos

    monkeypatch.setattr(chaos.time, "sleep", lambda _s: None)
    fake = _FakeCluster([led("a", R1), led("b", R2, online=(R2, R3))])

    assert chaos.await_members(fake, timeout_s=0.05) == ["b"]  # type: ignore[arg-type]


def test_one_eval_asks_for_every_transfer_and_reads_each_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cluster.chaos as chaos

    calls: list[tuple[str, ...]] = []

    def docker(*args: str, timeout_s: float | None = None) -> str:
        calls.append(args)
        return (
            "superticks-transfer 0 {ok,'rabbit@rabbit2'}\n"
            "superticks-transfer 1 {error,not_found}\n"
            "ok\n"
        )

    monkeypatch.setattr(chaos, "_docker", docker)
    plan = [("/", "t-0", R2), ("/", 'odd "name"', R3), ("prod", "t-9", R2)]

    assert chaos._transfer("superticks-rabbit1", plan) == [
        None,
        "{error,not_found}",
        "no answer",
    ]
    [call] = calls
    assert call[:4] == ("exec", "superticks-rabbit1", "rabbitmqctl", "eval")
    # names travel as their bytes: no quoting to get wrong
    assert "<<" + ",".join(str(b) for b in b'odd "name"') + ">>" in call[4]
    assert 'odd "name"' not in call[4]


def test_a_transfer_the_node_cannot_be_asked_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cluster.chaos as chaos
    from superticks.errors import ClusterError

    def down(*_args: str, timeout_s: float | None = None) -> str:
        raise ClusterError("`docker exec ...` failed: container is not running")

    monkeypatch.setattr(chaos, "_docker", down)

    assert (
        chaos._transfer("c", [("/", "a", R2), ("/", "b", R3)])
        == ["`docker exec ...` failed: container is not running"] * 2
    )
