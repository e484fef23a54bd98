"""Our streams are a public contract: the official RabbitMQ stream client for JavaScript
(`rabbitmq-stream-js-client`, pinned in tests/interop/js) reads every tick our producer writes,
in order, and its super stream publisher puts every symbol in the partition ours does, where
our reader decodes what it wrote. Node.js runs the scripts of tests/interop/js; the client is
installed there from the npm registry on first use (`npm ci`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _streams import publish_ticks

from partitioning.codec import Tick, decode_body
from partitioning.model import check_symbol
from partitioning.router import Router
from partitioning.simulator import MarketSimulator
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, Offset
from workers.reader import TickReader

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]

JS = Path(__file__).parents[1] / "interop" / "js"
VECTORS = Path(__file__).parents[1] / "data" / "routing_vectors.json"
ENSURE_NODE = Path(__file__).parents[2] / "cluster" / "scripts" / "ensure-node.sh"


def _valid(symbol: str) -> bool:
    try:
        check_symbol(symbol)
    except ValueError:
        return False
    return True


# the routing vectors' symbols that are valid tick symbols: ASCII, and letters of 8 scripts
SYMBOLS = [v["symbol"] for v in json.loads(VECTORS.read_text()) if _valid(v["symbol"])]


@pytest.fixture(scope="session")
def js_client() -> Path:
    """tests/interop/js with its pinned client installed: what `make node` does
    (cluster/scripts/ensure-node.sh), for a pytest run started without make."""
    ensure = subprocess.run(
        ["bash", str(ENSURE_NODE)], capture_output=True, text=True, check=False, timeout=600
    )
    if ensure.returncode != 0:
        pytest.fail(f"the interop tests' client could not be installed: {ensure.stderr.strip()}")
    return JS


async def _node(
    js: Path, script: str, args: Sequence[str], connection: ConnectionSettings, stdin: bytes = b""
) -> list[dict[str, Any]]:
    """Run a script of tests/interop/js against the cluster; its JSON output lines."""
    node = connection.nodes[0]
    env = {
        **os.environ,
        "STREAM_HOST": node.host,
        "STREAM_PORT": str(node.port),
        "STREAM_USER": connection.username,
        "STREAM_PASSWORD": connection.password.get_secret_value(),
    }
    process = await asyncio.create_subprocess_exec(
        "node", script, *args, cwd=js, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(90):
        out, err = await process.communicate(stdin)
    assert process.returncode == 0, f"node {script} exited {process.returncode}: {err.decode()}"
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def _partitions(connection: ConnectionSettings, super_stream: str) -> list[str]:
    async with Admin(connection) as admin:
        return await admin.partitions(super_stream)


async def test_the_js_client_reads_every_tick_our_producer_writes_in_order(
    connection: ConnectionSettings, super_stream: str, js_client: Path
) -> None:
    items = MarketSimulator(SYMBOLS, seed=5, zipf_s=0.0).batch(3_000)
    await publish_ticks(connection, super_stream, items)

    rows = await _node(js_client, "read.mjs", [super_stream, str(len(items))], connection)

    partitions = await _partitions(connection, super_stream)
    router = Router(len(partitions))
    assert len(rows) == len(items)
    read: dict[str, list[Tick]] = {}  # partition -> its ticks in the order the client gave
    for row in rows:
        tick = decode_body(row["body"])
        assert row["properties"] == {"symbol": tick.symbol, "schema_version": "1"}
        assert row["content_type"] == "application/json"
        assert row["stream"] == partitions[router.route(tick.symbol)]
        read.setdefault(row["stream"], []).append(tick)
    for stream in read:
        offsets = [row["offset"] for row in rows if row["stream"] == stream]
        assert offsets == sorted(set(offsets))  # each message once, in offset order
    sent = [decode_body(body) for _, body in items]
    keys = sorted((t.symbol, t.sequence_number) for ticks in read.values() for t in ticks)
    assert keys == sorted((t.symbol, t.sequence_number) for t in sent)
    for symbol in SYMBOLS:  # per-symbol order: a symbol's ticks in the order they were sent
        got = [t.sequence_number for t in read.get(partitions[router.route(symbol)], [])
               if t.symbol == symbol]  # fmt: skip
        assert got == [t.sequence_number for t in sent if t.symbol == symbol]


async def test_the_js_client_puts_every_symbol_in_the_partition_ours_does(
    connection: ConnectionSettings, super_stream: str, js_client: Path
) -> None:
    items = MarketSimulator(SYMBOLS, seed=6, zipf_s=0.0).batch(len(SYMBOLS) * 5)
    lines = "".join(json.dumps({"symbol": s, "body": b.decode()}) + "\n" for s, b in items)

    said = await _node(js_client, "publish.mjs", [super_stream], connection, lines.encode())

    assert said == [{"sent": len(items)}]
    got: dict[str, set[str]] = {}  # symbol -> the partitions our reader found it in
    arrived = asyncio.Event()
    count = 0

    async def on_ticks(partition: str, _offsets: list[int], ticks: list[Tick]) -> None:
        nonlocal count
        for tick in ticks:
            got.setdefault(tick.symbol, set()).add(partition)
        count += len(ticks)
        if count >= len(items):
            arrived.set()

    reader = TickReader(connection, on_ticks, offset=Offset.first(), super_stream=super_stream)
    async with reader:
        async with asyncio.timeout(30):
            await arrived.wait()
    assert reader.metrics.undecodable == 0
    assert count == len(items)
    partitions = await _partitions(connection, super_stream)
    router = Router(len(partitions))
    assert got == {symbol: {partitions[router.route(symbol)]} for symbol in SYMBOLS}
