"""Whether a node fault took effect, as the failover harness judges it from the leaders it
sees (scripted here): a restarted node's partitions count as having lost their leader when
they were seen led by another node or by none, even if the node leads them again after."""

from __future__ import annotations

from bench import failover


class _Run:
    """`FaultRun.leaders_or_none`, answering from a script (its last answer repeats)."""

    def __init__(self, *answers: dict[int, str | None]) -> None:
        self.answers = list(answers)

    async def leaders_or_none(self) -> dict[int, str | None]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


async def _left(run: _Run, led: list[int]) -> bool:
    return await failover._leader_left(run, "rabbit1", led, 1.0)  # type: ignore[arg-type]


async def test_a_partition_leaderless_while_its_node_restarted_lost_its_leader() -> None:
    run = _Run({0: "rabbit1"}, {}, {0: None, 1: "rabbit2"}, {0: "rabbit1", 1: "rabbit2"})
    assert await _left(run, [0])


async def test_a_partition_led_by_another_node_lost_its_leader() -> None:
    assert await _left(_Run({0: "rabbit1"}, {0: "rabbit3"}), [0])


async def test_a_restart_whose_partitions_never_lost_their_leader_did_not_take_effect() -> None:
    # an answer without the partition (the cluster not asked) is no evidence either way
    assert not await _left(_Run({0: "rabbit1"}, {}, {0: "rabbit1"}), [0])


async def test_every_partition_the_node_led_must_lose_its_leader() -> None:
    assert not await _left(_Run({0: None, 1: "rabbit1"}), [0, 1])


async def test_a_node_that_led_nothing_is_no_fault_that_took_effect() -> None:
    assert not await _left(_Run({0: None}), [])
