"""`superticks produce` as a deploy stops it: SIGTERM/SIGINT stop intake, drain what was sent
(confirms awaited up to --drain-timeout), print the summary and exit 0; nothing sent is lost."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import pytest

from superticks.settings import ConnectionSettings
from superticks.streams import Admin

pytestmark = pytest.mark.cluster

CLI = "import sys; from superticks.cli.main import main; sys.exit(main())"


async def _stored(connection: ConnectionSettings, super_stream: str) -> int:
    async with Admin(connection) as admin:
        return sum([await admin.last_offset(s) + 1 for s in await admin.partitions(super_stream)])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_drains_the_feed_prints_the_summary_and_exits_0(
    connection: ConnectionSettings, super_stream: str, sig: signal.Signals
) -> None:
    command = [
        sys.executable, "-c", CLI, "produce", "--super-stream", super_stream,
        "--rate", "5000", "--duration", "120", "--json",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        try:
            assert run.stderr is not None
            first_progress = run.stderr.readline()  # after ~2 s of feed
            assert first_progress.startswith("sent "), first_progress
            signalled = time.monotonic()
            run.send_signal(sig)
            out, err = run.communicate(timeout=30)
        finally:
            run.kill()
    assert run.returncode == 0, err
    assert time.monotonic() - signalled < 15
    assert f"{sig.name}: intake stopped" in err
    summary = json.loads(out.splitlines()[-1])
    assert summary["stopped"] is True
    assert summary["unconfirmed"] == 0
    assert summary["sent"] > 0
    assert summary["confirmed"] == summary["sent"]
    assert asyncio.run(_stored(connection, super_stream)) == summary["confirmed"]
