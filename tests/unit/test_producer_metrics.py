"""What the producer exports for Prometheus, read from its metrics at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from partitioning.metrics import ProducerCollector
from partitioning.producer import Producer, ProducerConfig


def _scrape(producer: Producer) -> str:
    registry = CollectorRegistry()
    registry.register(ProducerCollector(producer))
    return generate_latest(registry).decode()


def test_the_longest_stall_is_exported() -> None:
    producer = Producer(ProducerConfig(name="feed"))
    producer.metrics.max_stall_s = 2.5
    text = _scrape(producer)
    assert 'superticks_producer_max_stall_seconds{producer="feed",super_stream="ticks"} 2.5' in text
    assert 'superticks_producer_stall_seconds{producer="feed",super_stream="ticks"} 0.0' in text


def test_confirm_latency_quantiles_follow_every_confirm_not_the_first_100000() -> None:
    producer = Producer(ProducerConfig(name="feed"))
    producer.metrics.confirm_latency.record(0.001, count=100_000)
    producer.metrics.confirm_latency.record(0.2, count=150_000)
    text = _scrape(producer)
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("superticks_producer_confirm_seconds") and 'quantile="0.5"' in line
    )
    assert abs(float(line.rsplit(" ", 1)[1]) - 0.2) < 0.001
