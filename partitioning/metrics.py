"""The producer's metrics for Prometheus, read from `Producer.metrics` at scrape time.

A custom collector: nothing is added to the producer's hot path. Names:

===========================================  =============================================
metric                                       meaning
===========================================  =============================================
``superticks_producer_sent_total``           ticks handed to the producer
``superticks_producer_confirmed_total``      ticks the broker confirmed
``superticks_producer_resent_total``         ticks re-sent after a lost connection
``superticks_producer_reconnects_total``     reconnections to a partition leader
``superticks_producer_in_flight``            ticks sent and not yet confirmed
``superticks_producer_stall_seconds``        how long the longest-waiting partition waits
``superticks_producer_max_stall_seconds``    the longest confirm stall since the start
``superticks_producer_confirm_seconds``      confirm latency quantiles (0.5, 0.99) per call
===========================================  =============================================
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from partitioning.producer import Producer

__all__ = ["ProducerCollector", "serve_producer_metrics"]


class ProducerCollector(Collector):
    """Exposes one producer's `ProducerMetrics` (labelled with its super stream and name)."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer

    def collect(self) -> Iterator[Metric]:
        p = self._producer
        m = p.metrics
        labels = ["super_stream", "producer"]
        values = [p.config.super_stream, p.config.name]
        for name, doc, value in (
            ("sent", "Ticks handed to the producer.", m.sent),
            ("confirmed", "Ticks the broker confirmed.", m.confirmed),
            ("resent", "Ticks re-sent after a lost connection.", m.resent),
            ("reconnects", "Reconnections to a partition leader.", m.reconnects),
        ):
            counter = CounterMetricFamily(f"superticks_producer_{name}", doc, labels=labels)
            counter.add_metric(values, value)
            yield counter
        gauges: tuple[tuple[str, str, float], ...] = (
            ("in_flight", "Ticks sent and not yet confirmed.", m.in_flight),
            ("stall_seconds", "How long the longest-waiting partition waits.", p.stall_s()),
            (
                "max_stall_seconds",
                "The longest a partition waited for a confirm since the start.",
                max(m.max_stall_s, p.stall_s()),
            ),
        )
        for name, doc, level in gauges:
            gauge = GaugeMetricFamily(f"superticks_producer_{name}", doc, labels=labels)
            gauge.add_metric(values, level)
            yield gauge
        latency = GaugeMetricFamily(
            "superticks_producer_confirm_seconds",
            "Confirm latency of send/send_batch calls (quantile, over the producer's life).",
            labels=[*labels, "quantile"],
        )
        for q in (0.5, 0.99):
            latency.add_metric([*values, str(q)], m.latency_quantile(q))
        yield latency


def serve_producer_metrics(producer: Producer, port: int) -> CollectorRegistry:
    """Serve the producer's metrics on 127.0.0.1:`port` (/metrics); returns the registry."""
    registry = CollectorRegistry()
    registry.register(ProducerCollector(producer))
    start_http_server(port, addr="127.0.0.1", registry=registry)
    return registry
