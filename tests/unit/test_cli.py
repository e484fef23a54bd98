"""Bad input fails before anything starts, with a message that names what was wrong."""

from __future__ import annotations

import socket

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
        (["monitor", "--port", "0"], "argument --port: expected a TCP port (1-65535)"),
        (["monitor", "--interval", "soon"], "argument --interval: expected a number > 0"),
        (["monitor", "--management", "localhost:15672"], "expected http://HOST:PORT URLs"),
        (["monitor", "--group", ","], "expected one or more names"),
        (["--cluster", "swarm", "cluster", "status"], "invalid choice: 'swarm'"),
        (["bench", "publish", "--count", "0"], "argument --count: expected a number > 0"),
        (["bench", "publish", "--warmup", "-1"], "argument --warmup"),
        (["bench", "consume", "--symbols", "0"], "argument --symbols"),
        (["bench", "filter", "--batch", "0"], "argument --batch"),
        (["bench", "failover", "--rate", "0"], "argument --rate"),
        (["produce", "--count", "5", "--metrics-port", "70000"], "argument --metrics-port"),
        (["produce", "--count", "5", "--super-stream", ""], "argument --super-stream"),
        (["produce", "--count", "5", "--name", "two words"], "argument --name"),
        (["produce", "--count", "5", "--name", ""], "argument --name"),
        (["produce", "--duration", "0"], "argument --duration: expected a number > 0"),
        (["produce", "--duration", "nan"], "argument --duration"),
        (["produce", "--count", "5", "--drain-timeout", "-1"], "argument --drain-timeout"),
        (["produce", "--count", "5", "--name-wait", "0"], "argument --name-wait"),
        (["worker", "--group", ""], "argument --group"),
        (["worker", "--group", "g", "--name", "a/b"], "argument --name"),
        (["worker", "--group", "g", "--metrics-port", "0"], "argument --metrics-port"),
        (["worker", "--group", "g", "--super-stream", ""], "argument --super-stream"),
        (["worker", "--group", "g", "--credits", "0"], "argument --credits"),
        (["consume", "--count", "0"], "argument --count"),
        (["consume", "--duration", "-2"], "argument --duration"),
        (["consume", "--super-stream", ""], "argument --super-stream"),
        (["replay", "--timeout", "0"], "argument --timeout"),
        (["replay", "--super-stream", ""], "argument --super-stream"),
        (["topology", "create", "--partitions", "0"], "argument --partitions"),
        (["topology", "create", "--max-age-hours", "0"], "argument --max-age-hours"),
        (["topology", "create", "--max-length-bytes", "0"], "argument --max-length-bytes"),
        (["topology", "describe", "--super-stream", ""], "argument --super-stream"),
        (["topology", "delete", "--super-stream", " "], "argument --super-stream"),
        (["cluster", "logs", "rabbit1", "--tail", "-3"], "argument --tail"),
        (["dashboard", "--port", "0"], "argument --port: expected a TCP port (1-65535)"),
        (["dashboard", "--prometheus", "localhost:9090"], "is not an http(s) URL"),
        (["dashboard", "--scrape", "ftp://x/metrics"], "is not an http(s) URL"),
        (["dashboard", "--refresh", "0"], "expected seconds in (0, 3600]"),
        (["bench", "scaling", "--workers", "0"], "expected numbers >= 1"),
        (["bench", "scaling", "--partitions", "3,x"], "expected numbers like 1,2,3"),
        (["bench", "latency", "--duration", "0"], "--duration: expected a number > 0"),
        (["bench", "latency", "--rate", "0"], "--rate: expected a number > 0"),
        (["bench", "latency", "--linger-ms", "-1"], "--linger-ms: expected milliseconds from 0"),
        (["produce", "--linger-ms", "soon"], "--linger-ms: expected milliseconds from 0"),
        (["bench", "latency", "--linger-ms", "2000"], "--linger-ms: expected milliseconds"),
        (["bench", "latency", "--sub-entry-size", "0"], "--sub-entry-size: expected a number > 0"),
        (["bench", "publish", "--count", "-5"], "expected a number > 0"),
        (["bench", "aggregate", "--feed-linger-ms", "2000"], "--feed-linger-ms: expected milli"),
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
    ("flag", "value", "says"),
    [
        ("--sub-entry-size", "1001", "--sub-entry-size: at most 1000"),
        ("--feed-sub-entry-size", "65536", "--feed-sub-entry-size: at most 65535"),
    ],
)
def test_bench_aggregate_refuses_batches_too_big_before_connecting(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "aggregate", flag, value]) == 2
    assert says in capsys.readouterr().err


def test_bench_latency_refuses_a_sub_entry_size_over_65535_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "latency", "--sub-entry-size", "65536"]) == 2
    assert "--sub-entry-size: at most 65535" in capsys.readouterr().err


def test_bench_aggregate_refuses_compressed_feeds_without_batches_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "aggregate", "--feed-sub-entry-size", "1", "--feed-compression", "zstd"]
    assert main(argv) == 2
    assert "--feed-compression: applies to sub-entry batches" in capsys.readouterr().err


def test_an_aggregator_sub_entry_size_over_1000_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["aggregate", "--venues", "NYSE", "--sub-entry-size", "5000"]) == 2
    assert (
        "invalid aggregate option --sub-entry-size: Input should be less than or equal to 1000"
        in capsys.readouterr().err
    )


def test_compression_without_sub_entries_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["produce", "--count", "10", "--compression", "zstd"]) == 2
    assert "sub_entry_size > 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["topology", "create", "--partitions", "65"], "invalid topology"),
        (["--username", "", "topology", "describe"], "SUPERTICKS_USERNAME"),
        (["--vhost", "", "topology", "describe"], "SUPERTICKS_VHOST"),
        (["worker", "--group", "g", "--credits", "1001"], "--credits: Input should be less"),
    ],
)
def test_bad_combinations_exit_2_before_connecting(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert says in capsys.readouterr().err


def test_the_dashboard_refuses_a_port_in_use_before_starting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--port", str(port)]) == 2
    assert f"--port {port}: 127.0.0.1:{port} is already in use" in capsys.readouterr().err
