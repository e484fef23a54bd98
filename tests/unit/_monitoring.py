# ruff: noqa: E501  (exposition lines are as long as the exporter writes them)
"""Canned monitoring answers shared by the dashboard's unit tests: a lag exporter's /metrics
page (metric names of the exporter's contract) and Prometheus API answers."""

from __future__ import annotations

from typing import Any

EXPORTER_PAGE = """\
# TYPE superticks_partition_end_offset gauge
superticks_partition_end_offset{super_stream="ticks",partition="0",stream="ticks-0"} 1000
superticks_partition_end_offset{super_stream="ticks",partition="1",stream="ticks-1"} 2000
superticks_partition_end_offset{super_stream="ticks",partition="2",stream="ticks-2"} 3000
superticks_partition_end_offset{super_stream="other",partition="0",stream="other-0"} 5
# TYPE superticks_partition_leader gauge
superticks_partition_leader{super_stream="ticks",partition="0",stream="ticks-0",node="rabbit@rabbit1"} 1
superticks_partition_leader{super_stream="ticks",partition="1",stream="ticks-1",node="rabbit@rabbit2"} 1
superticks_partition_leader{super_stream="ticks",partition="2",stream="ticks-2",node="rabbit@rabbit3"} 1
superticks_partition_leader{super_stream="other",partition="0",stream="other-0",node="rabbit@rabbit1"} 1
# TYPE superticks_partition_replicas gauge
superticks_partition_replicas{super_stream="ticks",partition="0",stream="ticks-0"} 3
superticks_partition_replicas{super_stream="ticks",partition="1",stream="ticks-1"} 3
superticks_partition_replicas{super_stream="ticks",partition="2",stream="ticks-2"} 3
# TYPE superticks_partition_replicas_in_sync gauge
superticks_partition_replicas_in_sync{super_stream="ticks",partition="0",stream="ticks-0"} 3
superticks_partition_replicas_in_sync{super_stream="ticks",partition="1",stream="ticks-1"} 3
superticks_partition_replicas_in_sync{super_stream="ticks",partition="2",stream="ticks-2"} 2
# TYPE superticks_group_stored_offset gauge
superticks_group_stored_offset{super_stream="ticks",group="g1",partition="0"} 999
superticks_group_stored_offset{super_stream="ticks",group="g1",partition="1"} 1500
superticks_group_stored_offset{super_stream="ticks",group="g1",partition="2"} 100
# TYPE superticks_group_lag_ticks gauge
superticks_group_lag_ticks{super_stream="ticks",group="g1",partition="0"} 0
superticks_group_lag_ticks{super_stream="ticks",group="g1",partition="1"} 499
superticks_group_lag_ticks{super_stream="ticks",group="g1",partition="2"} 2899
# TYPE superticks_group_lag_seconds gauge
superticks_group_lag_seconds{super_stream="ticks",group="g1",partition="0"} 0
superticks_group_lag_seconds{super_stream="ticks",group="g1",partition="1"} 1.5
superticks_group_lag_seconds{super_stream="ticks",group="g1",partition="2"} 42
# TYPE superticks_group_active_consumer gauge
superticks_group_active_consumer{super_stream="ticks",group="g1",partition="0",consumer="worker-1"} 1
superticks_group_active_consumer{super_stream="ticks",group="g1",partition="1",consumer="worker-2"} 1
# TYPE superticks_group_partition_status gauge
superticks_group_partition_status{super_stream="ticks",group="g1",partition="0",status="OK"} 1
superticks_group_partition_status{super_stream="ticks",group="g1",partition="0",status="WARN"} 0
superticks_group_partition_status{super_stream="ticks",group="g1",partition="1",status="WARN"} 1
superticks_group_partition_status{super_stream="ticks",group="g1",partition="2",status="STOP"} 1
# TYPE superticks_node_running gauge
superticks_node_running{node="rabbit@rabbit1"} 1
superticks_node_running{node="rabbit@rabbit2"} 1
superticks_node_running{node="rabbit@rabbit3"} 0
# TYPE superticks_exporter_up gauge
superticks_exporter_up{source="management"} 1
superticks_exporter_up{source="stream"} 0
"""

NODES: list[tuple[str, str, str]] = [
    ("127.0.0.1:15692", "rabbit@rabbit1", "1"),
    ("127.0.0.1:15693", "rabbit@rabbit2", "0"),
    ("127.0.0.1:15694", "rabbit@rabbit3", "1"),
]


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    """A Prometheus instant-query answer holding `samples` (labels with __name__, value)."""
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1764491000.0, v]} for m, v in samples],
        },
    }


INSTANT = vector(
    *(({"__name__": "up", "job": "rabbitmq", "instance": i}, up) for i, _, up in NODES),
    *(
        ({"__name__": "rabbitmq_identity_info", "instance": i, "rabbitmq_node": n}, "1")
        for i, n, _ in NODES
    ),
)

ALERTS = {
    "status": "success",
    "data": {
        "alerts": [
            {
                "labels": {"alertname": "SuperticksNoActiveConsumer", "group": "g1"},
                "annotations": {"summary": "partition 2 of ticks has no active consumer"},
                "state": "firing",
                "activeAt": "2026-11-30T08:00:00Z",
            }
        ]
    },
}

EMPTY_MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": []}}
