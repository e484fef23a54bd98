"""Specification of monitoring.promql: Prometheus API answers and /metrics pages in, typed
samples out; anything else is a `SourceUnavailable` naming the source, never a stack trace."""

from __future__ import annotations

import pytest

from monitoring.promql import (
    MetricSample,
    PrometheusClient,
    parse_alerts,
    parse_exposition,
    parse_matrix,
    parse_vector,
    scrape,
)
from superticks.errors import SourceUnavailable

VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {
                "metric": {"__name__": "up", "job": "rabbitmq", "instance": "127.0.0.1:15692"},
                "value": [1764491000.5, "1"],
            },
            {"metric": {"__name__": "x", "a": "b"}, "value": [1764491000.5, "NaN"]},
            {"metric": {"__name__": "y"}, "value": [1764491000.5, "+Inf"]},
        ],
    },
}


def test_a_vector_answer_gives_its_samples_without_nan() -> None:
    assert parse_vector(VECTOR) == [
        MetricSample("up", {"job": "rabbitmq", "instance": "127.0.0.1:15692"}, 1.0),
        MetricSample("y", {}, float("inf")),
    ]


def test_a_matrix_answer_gives_each_series_points() -> None:
    answer = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "superticks_group_lag_ticks", "group": "g"},
                    "values": [[100, "5"], [115, "NaN"], [130, "7.5"]],
                }
            ],
        },
    }
    (series,) = parse_matrix(answer)
    assert series.name == "superticks_group_lag_ticks"
    assert series.labels == {"group": "g"}
    assert series.points == ((100.0, 5.0), (130.0, 7.5))


def test_alerts_come_firing_first_with_their_name_apart_from_the_labels() -> None:
    answer = {
        "status": "success",
        "data": {
            "alerts": [
                {
                    "labels": {"alertname": "B", "severity": "warning"},
                    "annotations": {},
                    "state": "pending",
                    "activeAt": "2026-11-30T08:00:00Z",
                },
                {
                    "labels": {"alertname": "A", "group": "g"},
                    "annotations": {"summary": "lag"},
                    "state": "firing",
                    "activeAt": "2026-11-30T08:01:00Z",
                },
            ]
        },
    }
    alerts = parse_alerts(answer)
    assert [(a.name, a.state) for a in alerts] == [("A", "firing"), ("B", "pending")]
    assert alerts[0].labels == {"group": "g"}
    assert alerts[0].annotations == {"summary": "lag"}


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"status": "error", "error": "parse error"}, "parse error"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "vector"),
        ([1, 2], "not a JSON object"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"x": 1}]}}, "value"),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "a"]}]},
            },
            "not a sample value",
        ),
    ],
)
def test_an_answer_that_is_not_a_vector_names_the_source(answer: object, says: str) -> None:
    with pytest.raises(SourceUnavailable, match=says) as info:
        parse_vector(answer, "Prometheus")
    assert info.value.source == "Prometheus"
    assert str(info.value).startswith("no data from Prometheus")


def test_a_metrics_page_gives_its_samples_with_counters_named_as_prometheus_stores_them() -> None:
    page = (
        "# HELP superticks_consumed_total Ticks.\n"
        "# TYPE superticks_consumed_total counter\n"
        'superticks_consumed_total{group="g",partition="0"} 12.0\n'
        "# TYPE superticks_partition_leader gauge\n"
        'superticks_partition_leader{super_stream="s",partition="1",node="rabbit@rabbit2"} 1\n'
    )
    assert parse_exposition(page) == [
        MetricSample("superticks_consumed_total", {"group": "g", "partition": "0"}, 12.0),
        MetricSample(
            "superticks_partition_leader",
            {"super_stream": "s", "partition": "1", "node": "rabbit@rabbit2"},
            1.0,
        ),
    ]


def test_a_page_that_is_not_an_exposition_is_unavailable() -> None:
    with pytest.raises(SourceUnavailable, match="not a Prometheus text page"):
        parse_exposition("<html>oops {</html>\n", "the exporter")


def test_nothing_listening_is_unavailable_not_a_crash() -> None:
    with pytest.raises(SourceUnavailable) as info:
        scrape("http://127.0.0.1:9/metrics", "the exporter", timeout=1)
    assert info.value.source == "the exporter"
    with pytest.raises(SourceUnavailable):
        PrometheusClient("http://127.0.0.1:9", timeout=1).query("up")
