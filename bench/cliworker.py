"""`superticks worker` as a separate process, started the way a user starts it.

The benches measure the worker a user runs, not a tuned copy: `CliWorker` starts
``python -m superticks worker --group G ...`` with the connection settings passed
through the same ``SUPERTICKS_*`` environment variables a user sets, and no other option than
the ones given (so every `WorkerConfig` default applies). `stop()` sends SIGTERM (the worker
drains, stores its offsets and prints its JSON summary) and returns that summary.

`stored_offsets` reads what the group stored on each partition from the broker: how the benches
follow a worker's progress without asking the worker anything (no extra work in its process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from superticks.errors import ConnectionFailed, StreamUnavailable
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

__all__ = [
    "CliWorker",
    "active_partitions",
    "broker_cpu_seconds",
    "cpu_seconds",
    "free_port",
    "settings_env",
    "stored_offsets",
]


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by process `pid` (None: this one)."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_cpu_seconds() -> float | None:
    """CPU seconds used so far by every RabbitMQ node process (``beam.smp``) on this host (the
    compose cluster's nodes run here); None when there is none. Other clients' traffic on the
    same nodes counts too: meaningful on a quiet cluster."""
    total = 0.0
    found = False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="ascii") as f:
                if f.read().strip() != "beam.smp":
                    continue
            total += cpu_seconds(int(entry))
            found = True
        except (OSError, ValueError):
            continue
    return total if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def settings_env(settings: ConnectionSettings) -> dict[str, str]:
    """The environment that makes a `superticks` process load `settings`."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        key = f"SUPERTICKS_{name.upper()}"
        if name == "nodes":
            env[key] = ",".join(f"{n['host']}:{n['port']}" for n in value)
        elif name == "password":
            env[key] = settings.password.get_secret_value()
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class CliWorker:
    """One `superticks worker` process of group `group` on `super_stream`."""

    def __init__(
        self,
        settings: ConnectionSettings,
        super_stream: str,
        group: str,
        name: str,
        *,
        handler: str = "vwap",
        extra: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.args = [
            "worker", "--group", group, "--name", name, "--super-stream", super_stream,
            "--handler", handler, "--json", *extra,
        ]  # fmt: skip
        self.name = name
        self.process: asyncio.subprocess.Process | None = None
        self.summary: dict[str, Any] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "superticks",
            *self.args,
            env=settings_env(self.settings),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self, timeout_s: float = 30.0) -> dict[str, Any] | None:
        """SIGTERM, wait for the exit (SIGKILL after `timeout_s`), return the JSON summary
        (None if the worker printed none). Safe to call twice."""
        process = self.process
        if process is None:
            return self.summary
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout_s):
                out, _ = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            out, _ = await process.communicate()
        self.process = None
        lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
        if lines:
            with contextlib.suppress(json.JSONDecodeError):
                self.summary = json.loads(lines[-1])
        return self.summary

    async def __aenter__(self) -> CliWorker:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


async def stored_offsets(
    admin: Admin, streams: Sequence[str], group: str, *, retry_s: float = 60.0
) -> list[int]:
    """The offset group `group` stored on each stream (-1: none yet).

    A node that restarts under a bench (the shared cluster's chaos runs) drops the admin's
    connection or leaves a call unanswered: the admin then reconnects through another node and
    asks again, for up to `retry_s`, after which the last error is raised."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            found = []
            for stream in streams:
                async with asyncio.timeout(5):
                    offset = await admin.stored_offset(stream, group)
                found.append(-1 if offset is None else offset)
        except (ConnectionFailed, StreamUnavailable, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
            with contextlib.suppress(ConnectionFailed):
                await admin.reconnect()
        else:
            return found


def active_partitions(port: int) -> int:
    """How many partitions the worker serving metrics on `port` is active on (0: no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.5) as r:
            text = r.read().decode()
    except OSError:
        return 0
    return sum(
        1
        for line in text.splitlines()
        if line.startswith("superticks_partition_active{") and line.rsplit(" ", 1)[1] == "1.0"
    )
