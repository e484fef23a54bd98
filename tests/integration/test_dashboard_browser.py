"""The dashboard in a real browser (Debian's chromium driven by Playwright) against the live
cluster: a new super stream with a running feed, a worker group and the lag exporter, each a
real `superticks` process; the page must show the three partitions with the leaders the broker
reports, and figures that move while the feed runs."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from monitoring.promql import scrape
from superticks.errors import SourceUnavailable
from superticks.settings import ConnectionSettings

pytestmark = pytest.mark.cluster

CHROMIUM = os.environ.get("SUPERTICKS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _leaders(connection: ConnectionSettings, super_stream: str) -> list[str]:
    """Each partition's leader as the broker's management API reports it (any node's)."""
    auth = f"{connection.username}:{connection.password.get_secret_value()}"
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    failures = []
    for port in (15672, 15673, 15674):
        try:
            leaders = []
            for p in range(3):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/queues/%2F/{super_stream}-{p}", headers=headers
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    leaders.append(str(json.load(response)["leader"]))
        except OSError as exc:
            failures.append(f"{port}: {exc}")
            continue
        return leaders
    pytest.fail(f"no management API answered: {failures}")


class Processes:
    """`superticks` commands run for one test, stopped (SIGTERM, then SIGKILL) at its end."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str) -> None:
        with (self._logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("superticks")), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._running.append((name, process))

    def check(self) -> None:
        """Fail (with its log) if a process has exited already."""
        for name, process in self._running:
            if process.poll() is not None:
                log = (self._logs / f"{name}.log").read_text()[-2000:]
                pytest.fail(f"{name} exited with {process.returncode}:\n{log}")

    def stop(self) -> None:
        for _, process in self._running:
            if process.poll() is None:
                process.terminate()
        for _, process in self._running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _partition_rows(page: Page) -> list[list[str]]:
    rows = page.locator("table.partition-map tbody tr")
    return [
        [cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()]
        for i in range(rows.count())
    ]


def _metric(page: Page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label)
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_the_browser_shows_the_partitions_leaders_and_moving_figures_of_a_live_feed(
    super_stream: str,
    connection: ConnectionSettings,
    processes: Processes,
    unique: str,
    tmp_path: Path,
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    exporter, worker, producer, dashboard = (_free_port() for _ in range(4))
    exporter_url = f"http://127.0.0.1:{exporter}/metrics"
    processes.start(
        "dashboard", "dashboard", "--port", str(dashboard), "--super-stream", super_stream,
        "--exporter", exporter_url,
        "--scrape", f"http://127.0.0.1:{worker}/metrics",
        "--scrape", f"http://127.0.0.1:{producer}/metrics",
    )  # fmt: skip
    processes.start(
        "exporter", "monitor", "--port", str(exporter), "--super-stream", super_stream,
        "--interval", "1",
    )  # fmt: skip
    processes.start(
        "worker", "worker", "--group", f"{unique}-g", "--name", f"{unique}-w1",
        "--super-stream", super_stream, "--handler", "vwap", "--metrics-port", str(worker),
    )  # fmt: skip
    processes.start(
        "producer", "produce", "--super-stream", super_stream, "--symbols", "30",
        "--rate", "500", "--duration", "600", "--metrics-port", str(producer),
    )  # fmt: skip
    url = f"http://127.0.0.1:{dashboard}/"
    began = time.monotonic()
    timeline: list[str] = []

    def mark(what: str) -> None:
        timeline.append(f"{time.monotonic() - began:5.1f} s {what}")

    deadline = time.monotonic() + 60
    while not _answers(url):
        processes.check()
        assert time.monotonic() < deadline, "the dashboard did not answer within 60 s"
        time.sleep(0.3)
    mark("dashboard answers")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})

        def until(ready: Callable[[], bool], seconds: float, what: str) -> None:
            deadline = time.monotonic() + seconds
            while not ready():
                processes.check()
                if time.monotonic() > deadline:
                    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
                    text = page.inner_text("body")[:3000]
                    pytest.fail(f"{what} within {seconds} s; {timeline}; the page says:\n{text}")
                page.wait_for_timeout(500)

        def exporter_ready() -> bool:
            try:
                samples = scrape(exporter_url, timeout=2)
            except SourceUnavailable:
                return False
            leaders = [s for s in samples if s.name == "superticks_partition_leader"]
            return sum(s.label("super_stream") == super_stream for s in leaders) == 3

        def complete(rows: list[list[str]]) -> bool:
            if not any("exporter" in t for t in timeline) and exporter_ready():
                mark("exporter reports the leaders")
            return len(rows) == 3 and all(r[2] != "unknown" and r[4] != "-" for r in rows)

        try:
            page.goto(url)
            mark("page loaded")
            until(lambda: complete(_partition_rows(page)), 90, "no complete partition map")
            rows = _partition_rows(page)
            mark("partition map complete")
            first = (_metric(page, "ticks handled"), [r[4] for r in rows])

            def moved() -> bool:
                now = (_metric(page, "ticks handled"), [r[4] for r in _partition_rows(page)])
                return now[0] != first[0] and now[1] != first[1]

            until(moved, 20, "ticks handled and end offsets did not both change")
            second = (_metric(page, "ticks handled"), [r[4] for r in _partition_rows(page)])
            mark("figures moved")
        finally:
            browser.close()
    expected = _leaders(connection, super_stream)
    print(f"partition map: {rows}\nfigures: {first} then {second}\ntimeline: {timeline}")

    assert [re.split(r"\s+", r[1])[0] for r in rows] == ["0", "1", "2"]
    assert [r[2] for r in rows] == expected
