"""The dashboard script, run headless (`streamlit.testing.v1.AppTest`) against a local HTTP
server that answers like Prometheus and the lag exporter (canned answers), and against sources
that do not answer."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _monitoring import ALERTS, EMPTY_MATRIX, EXPORTER_PAGE, INSTANT
from streamlit.testing.v1 import AppTest

from monitoring.sources import ENV_VAR, DashboardConfig

SCRIPT = Path(__file__).resolve().parents[2] / "monitoring" / "dashboard.py"


class Canned(ThreadingHTTPServer):
    """Answers /api/v1/query, /query_range, /alerts and /metrics; `down` makes every answer an
    HTTP 503."""

    down = False


class _Handler(BaseHTTPRequestHandler):
    server: Canned

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        answers: dict[str, tuple[str, bytes]] = {
            "/api/v1/query": ("application/json", json.dumps(INSTANT).encode()),
            "/api/v1/query_range": ("application/json", json.dumps(EMPTY_MATRIX).encode()),
            "/api/v1/alerts": ("application/json", json.dumps(ALERTS).encode()),
            "/metrics": ("text/plain; version=0.0.4", EXPORTER_PAGE.encode()),
        }
        if self.server.down or path not in answers:
            self.send_error(503 if self.server.down else 404)
            return
        kind, body = answers[path]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def canned() -> Iterator[Canned]:
    server = Canned(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _app(monkeypatch: pytest.MonkeyPatch, config: DashboardConfig) -> AppTest:
    monkeypatch.setenv(ENV_VAR, config.model_dump_json())
    return AppTest.from_file(str(SCRIPT), default_timeout=120)


def _partition_map(at: AppTest) -> str:
    (table,) = [h.proto.body for h in at.get("html") if "partition-map" in h.proto.body]
    return str(table)


def test_the_partition_map_shows_the_three_partitions_with_their_leaders(
    canned: Canned, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{canned.server_port}"
    config = DashboardConfig(prometheus=url, exporter=f"{url}/metrics", super_stream="ticks")
    at = _app(monkeypatch, config)

    at.run()

    assert not at.exception
    assert not at.error
    table = _partition_map(at)
    rows = re.findall(r'<tr data-partition="(\d)".*?</tr>', table)
    assert rows == ["0", "1", "2"]
    for leader in ("rabbit@rabbit1", "rabbit@rabbit2", "rabbit@rabbit3"):
        assert leader in table
    assert "worker-1" in table
    assert "no active consumer" in table
    assert {m.label: m.value for m in at.metric}["partitions"] == "3"
    assert {m.label: m.value for m in at.metric}["alerts firing"] == "1"


def test_a_prometheus_that_stops_answering_shows_no_data_since_its_last_answer(
    canned: Canned, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{canned.server_port}"
    at = _app(monkeypatch, DashboardConfig(prometheus=url, exporter=None))
    at.run()
    assert not at.error
    answered = re.search(r"updated (\d\d:\d\d:\d\d UTC)", at.caption[1].value)
    assert answered is not None

    canned.down = True
    at.run()

    assert not at.exception
    (error,) = at.error
    assert error.value.startswith(f"no data from Prometheus ({url}) since {answered[1]}")
    assert "HTTP 503" in error.value


def test_sources_that_never_answered_show_no_data_since_the_start_and_no_stack_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = _app(
        monkeypatch,
        DashboardConfig(
            prometheus="http://127.0.0.1:9",
            exporter="http://127.0.0.1:9/metrics",
            timeout_s=1,
        ),
    )

    at.run()

    assert not at.exception
    messages = sorted(e.value for e in at.error)
    assert len(messages) == 2
    assert re.match(
        r"no data from Prometheus \(http://127.0.0.1:9\) since .* \(never answered\)", messages[0]
    )
    assert messages[1].startswith("no data from the exporter (http://127.0.0.1:9/metrics) since")
    assert [i.value for i in at.info] == [
        "no partition of any super stream reported by the exporter yet"
    ]
