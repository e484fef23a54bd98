"""What the stream adapter lets through of rstream's logging."""

from __future__ import annotations

import logging

import pytest

import superticks.streams  # noqa: F401  (importing the adapter installs its log filter)


def test_what_the_adapter_handles_itself_is_not_logged_twice_but_rstreams_other_warnings_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rstream_log = logging.getLogger("rstream.client")
    with caplog.at_level(logging.DEBUG, logger="rstream.client"):
        rstream_log.error("Connection Closed Error", exc_info=ConnectionResetError())
        rstream_log.warning("Leader not yet elected for stream %s, retrying...", "ticks-0")
        rstream_log.warning("Heartbeats from server missing, last heartbeat: %s", 1.5)
    assert [r.getMessage() for r in caplog.records] == [
        "Heartbeats from server missing, last heartbeat: 1.5"
    ]
