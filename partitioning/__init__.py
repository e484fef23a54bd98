"""Ticks on a RabbitMQ super stream: the model, the wire format, routing and a simulator.

* `partitioning.model`: `MarketData` (a validated tick) and `StreamConfig` (the super stream);
* `partitioning.codec`: the wire format (JSON body in an AMQP 1.0 message) and its fast paths;
* `partitioning.router`: the partition of a symbol, as the Java/Go/.NET/JS stream clients route;
* `partitioning.simulator`: `MarketSimulator`, deterministic realistic ticks;
* `partitioning.topology`: the super stream declared, described, deleted;
* `partitioning.producer`: `Producer`, every tick stored once, in order, in its partition;
* `partitioning.inflight`: the producer's unconfirmed records per partition, in id order;
* `partitioning.feed`: the simulator's ticks published by the producer, paced or flat out;
* `partitioning.metrics`: the producer's metrics for Prometheus (read at scrape time).

docs/wire-format.md is the contract for producers and consumers in other languages.
"""

from __future__ import annotations

from partitioning.codec import (
    CONTENT_TYPE,
    Tick,
    data_header,
    decode_body,
    decode_message,
    decode_messages,
    decode_numbered,
    encode_body,
    encode_message,
    format_body,
    frame_message,
    message_prefix,
    split_message,
)
from partitioning.feed import FeedResult, run_feed
from partitioning.model import (
    MAX_SEQUENCE_NUMBER,
    SCHEMA_VERSION,
    WIRE_FIELDS,
    MarketData,
    StreamConfig,
    format_timestamp_us,
    parse_timestamp_us,
)
from partitioning.producer import Producer, ProducerConfig, ProducerMetrics, ProducerState
from partitioning.router import ROUTING_SEED, Router, murmur3_32, partition_for
from partitioning.simulator import DEFAULT_EXCHANGES, LARGE_CAPS, MarketSimulator
from partitioning.topology import (
    PartitionInfo,
    TopologyInfo,
    create_topology,
    delete_topology,
    describe_topology,
)

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_EXCHANGES",
    "LARGE_CAPS",
    "MAX_SEQUENCE_NUMBER",
    "ROUTING_SEED",
    "SCHEMA_VERSION",
    "WIRE_FIELDS",
    "FeedResult",
    "MarketData",
    "MarketSimulator",
    "PartitionInfo",
    "Producer",
    "ProducerConfig",
    "ProducerMetrics",
    "ProducerState",
    "Router",
    "StreamConfig",
    "Tick",
    "TopologyInfo",
    "create_topology",
    "data_header",
    "decode_body",
    "decode_message",
    "decode_messages",
    "decode_numbered",
    "delete_topology",
    "describe_topology",
    "encode_body",
    "encode_message",
    "format_body",
    "format_timestamp_us",
    "frame_message",
    "message_prefix",
    "murmur3_32",
    "parse_timestamp_us",
    "partition_for",
    "run_feed",
    "split_message",
]
