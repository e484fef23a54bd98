"""The stream protocol over TLS (each node's TLS port, 5562-5564): produce and consume, the
server's certificate checked against the cluster's CA, and the same ticks as plain clients."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _streams import read_messages

from partitioning.codec import format_body, split_message
from partitioning.producer import Producer, ProducerConfig
from partitioning.topology import describe_topology
from superticks.errors import ConnectionFailed, TlsError
from superticks.settings import TLS_NODES, ClusterSettings, ConnectionSettings
from superticks.streams import Admin

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]

COUNT = 3_000
SCRIPTS = Path(__file__).resolve().parents[2] / "cluster" / "scripts"


def _certs() -> Path:
    """The certificates the cluster's compose file made (its `certs` service)."""
    return ClusterSettings().compose_file.parent / "cluster" / "certs"


@pytest.fixture(scope="module")
def tls(compose_cluster: object) -> ConnectionSettings:
    ca = _certs() / "ca.pem"
    assert ca.is_file(), f"{ca} is missing: `superticks cluster up` makes it"
    return ConnectionSettings(tls=True, ca_file=ca)


def _ticks(count: int) -> list[tuple[str, bytes]]:
    out = []
    for seq in range(count):
        symbol = f"T{seq % 30:02d}"
        price = f"{100 + seq % 7}.{seq % 100:02d}"
        ts = 1_790_000_000_000_000 + seq
        body = format_body(symbol, "XNAS", price, "10", price, "10", price, "5", str(seq), ts, seq)
        out.append((symbol, body))
    return out


def test_tls_settings_default_to_the_tls_ports(tls: ConnectionSettings) -> None:
    assert tls.nodes == TLS_NODES
    assert [n.port for n in tls.nodes] == [5562, 5563, 5564]


async def test_metadata_over_tls_advertises_the_tls_ports(
    tls: ConnectionSettings, super_stream: str
) -> None:
    info = await describe_topology(tls, super_stream)
    ports = {int(p.leader.rsplit(":", 1)[1]) for p in info.partitions}
    assert ports <= {5562, 5563, 5564}


async def test_produce_and_consume_over_tls_read_what_plain_clients_read(
    tls: ConnectionSettings, connection: ConnectionSettings, super_stream: str
) -> None:
    items = _ticks(COUNT)
    config = ProducerConfig(connection=tls, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        await producer.send_batch(items)
        await producer.flush(30)
        assert producer.metrics.confirmed == COUNT
        partitions = [f"{super_stream}-{i}" for i in range(producer.partitions)]
        expected: dict[str, list[bytes]] = {p: [] for p in partitions}
        for symbol, body in items:
            expected[partitions[producer.partition_for(symbol)]].append(body)
    for stream in partitions:
        count = len(expected[stream])
        over_tls = await read_messages(tls, stream, count)
        plain = await read_messages(connection, stream, count)
        assert over_tls == plain  # the same bytes, whichever the transport
        # every tick of the partition (a batch is written grouped by symbol, so compare sets)
        assert sorted(bytes(split_message(m)[1]) for m in over_tls) == sorted(expected[stream])


async def test_a_client_certificate_signed_by_the_cluster_ca_is_accepted(
    tls: ConnectionSettings,
) -> None:
    client = _certs() / "client"
    settings = tls.model_copy(
        update={"cert_file": client / "cert.pem", "key_file": client / "key.pem"}
    )
    async with Admin(settings) as admin:
        assert not await admin.stream_exists("superticks-no-such-stream")


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """Another CA, made like the cluster's: it signed none of the nodes' certificates."""
    subprocess.run(
        ["sh", str(SCRIPTS / "make-certs.sh"), str(tmp_path), "other"],
        check=True,
        capture_output=True,
    )
    return tmp_path / "ca.pem"


async def test_a_wrong_ca_is_refused_with_the_ca_file_named(other_ca: Path) -> None:
    wrong = ConnectionSettings(tls=True, ca_file=other_ca)
    with pytest.raises(TlsError) as refused:
        await Admin(wrong).start()
    message = str(refused.value)
    assert f"SUPERTICKS_CA_FILE={other_ca}" in message
    assert "certificate was refused" in message
    assert "CA that signed the cluster's certificates" in message
    print(message)


async def test_a_plain_client_cannot_use_the_tls_port_nor_tls_the_plain_port(
    tls: ConnectionSettings,
) -> None:
    plain_on_tls = ConnectionSettings(nodes="localhost:5562", connect_timeout_s=3)
    with pytest.raises(Exception, match="localhost:5562"):
        await Admin(plain_on_tls).start()
    tls_on_plain = tls.model_copy(update={"nodes": ConnectionSettings().nodes[:1]})
    with pytest.raises(ConnectionFailed, match="the nodes must be TLS ports"):
        await Admin(tls_on_plain).start()
