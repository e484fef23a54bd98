"""The trading commands refuse bad input with exit status 2, naming it, before connecting."""

from __future__ import annotations

import pytest

from superticks.cli.main import main


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["audit", "replay", "--until", "3:47 PM"], "argument --until"),
        (["audit", "replay", "--since", "2026-11-25"], "argument --since"),
        (["audit", "replay", "--stream", "a b"], "argument --stream"),
        (["audit", "replay", "--timeout", "0"], "argument --timeout"),
        (["audit", "tail", "--count", "0"], "argument --count"),
        (["aggregate", "--venues", " , "], "argument --venues"),
        (["aggregate", "--venues", "NYSE,NYSE"], "names a venue twice"),
        (["aggregate", "--venues", "NYSE", "--target", ""], "argument --target"),
        (["aggregate", "--venues", "NYSE", "--store-every-ms", "0"], "argument --store-every-ms"),
        (["aggregate", "--venues", "NYSE", "--linger-ms", "2000"], "argument --linger-ms"),
        (["bench", "aggregate", "--linger-ms", "-1"], "argument --linger-ms"),
        (["worker", "--group", "g", "--handler", "strategy", "--window", "0"], "argument --window"),
        (["worker", "--group", "g", "--exit-when-idle", "0"], "argument --exit-when-idle"),
        (["produce", "--count", "5", "--start-time", "today"], "argument --start-time"),
        (["bench", "audit", "--count", "0"], "argument --count"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            [
                "audit",
                "replay",
                "--since",
                "2026-11-25T16:00:00Z",
                "--until",
                "2026-11-25T15:00:00Z",
            ],
            "--since must not be after --until",
        ),
        (["aggregate", "--venues", "NYSE", "--source", "CBOE=x"], "--source 'CBOE=x'"),
        (
            ["worker", "--group", "g", "--handler", "strategy", "--window", "20000"],
            "invalid strategy options: --window",
        ),
    ],
)
def test_bad_combinations_exit_2_before_connecting(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert says in capsys.readouterr().err
