"""Bad input fails before anything starts, with a message that names what was wrong."""

from __future__ import annotations

import pytest

from superticks.cli.main import main


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() writes connection flags into os.environ; keep each test's to itself."""
    for name in ("NODES", "USERNAME", "VHOST", "CLUSTER"):
        monkeypatch.setenv(f"SUPERTICKS_{name}", "placeholder")
        monkeypatch.delenv(f"SUPERTICKS_{name}")


def test_a_bad_node_address_is_refused_before_any_command_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--nodes", "localhost", "cluster", "status"]) == 2
    assert "SUPERTICKS_NODES" in capsys.readouterr().err


def test_a_bad_environment_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUPERTICKS_HEARTBEAT_S", "0")
    assert main(["topology", "describe"]) == 2
    assert "SUPERTICKS_HEARTBEAT_S" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["produce", "--rate", "-5", "--count", "10"], "--rate must be > 0"),
        (["produce", "--rate", "fast", "--count", "10"], "--rate takes a number or 'max'"),
        (["produce", "--count", "10", "--duration", "5"], "not allowed with argument"),
        (["produce"], "one of the arguments --count --duration is required"),
        (["replay", "--from", "yesterday"], "expected an ISO-8601 UTC time"),
        (["cluster", "kill"], "the following arguments are required: node"),
        (["produce", "--count", "10", "--clock", "atomic"], "invalid choice: 'atomic'"),
        (["monitor", "--port", "0"], "expected a number > 0"),
        (["monitor", "--interval", "soon"], "expected a number of seconds > 0"),
        (["monitor", "--management", "localhost:15672"], "expected http://HOST:PORT URLs"),
        (["monitor", "--group", ","], "expected one or more names"),
        (["--cluster", "swarm", "cluster", "status"], "invalid choice: 'swarm'"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_compression_without_sub_entries_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["produce", "--count", "10", "--compression", "zstd"]) == 2
    assert "sub_entry_size > 1" in capsys.readouterr().err
