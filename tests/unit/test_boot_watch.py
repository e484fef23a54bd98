"""`cluster up` waits out the transient states of containers being recreated (another
checkout's `up`, a concurrent `up`) and fails only on a container that stays stopped."""

from __future__ import annotations

from cluster.compose import BootWatch

RECREATION = [  # (seconds, rabbit1's state) as `docker compose up` recreates it
    (0.0, "running"),
    (0.5, "exited"),
    (3.0, "exited"),
    (3.5, "missing"),
    (4.0, "created"),
    (4.5, "running"),
]


def _states(rabbit1: str) -> dict[str, str]:
    return {"rabbit1": rabbit1, "rabbit2": "running", "rabbit3": "running"}


def test_a_recreated_container_is_not_a_boot_failure() -> None:
    watch = BootWatch(grace_s=15)
    assert [watch.observe(t, _states(s)) for t, s in RECREATION] == [None] * len(RECREATION)


def test_a_container_that_stays_exited_fails_after_the_grace_period() -> None:
    watch = BootWatch(grace_s=15)
    assert watch.observe(0.0, _states("exited")) is None
    assert watch.observe(14.9, _states("exited")) is None
    assert watch.observe(15.0, _states("exited")) == "rabbit1"


def test_the_grace_period_restarts_when_the_container_runs_again() -> None:
    watch = BootWatch(grace_s=15)
    watch.observe(0.0, _states("exited"))
    watch.observe(10.0, _states("running"))
    assert watch.observe(11.0, _states("exited")) is None
    assert watch.observe(25.0, _states("exited")) is None
    assert watch.observe(26.0, _states("dead")) == "rabbit1"


def test_missing_created_and_restarting_are_waited_out() -> None:
    watch = BootWatch(grace_s=15)
    for t, state in ((0, "missing"), (60, "created"), (120, "restarting"), (180, "missing")):
        assert watch.observe(float(t), _states(state)) is None
