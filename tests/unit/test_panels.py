"""Specification of monitoring.panels: what each dashboard panel shows, from canned samples."""

from __future__ import annotations

import pytest
from _monitoring import EXPORTER_PAGE, INSTANT

from monitoring.panels import (
    History,
    merge_current,
    node_rows,
    partition_map,
    producer_rows,
    rate_series,
    symbol_rows,
    worst_status,
)
from monitoring.panels import lag_rows as lag_rows_of
from monitoring.panels import lag_series as lag_series_of
from monitoring.promql import MetricSample, Series, parse_exposition, parse_vector

EXPORTER = parse_exposition(EXPORTER_PAGE)


def test_the_partition_map_shows_each_partition_with_leader_replicas_consumer_and_status() -> None:
    rows = partition_map(EXPORTER, "ticks")

    assert [(r.partition, r.stream, r.leader) for r in rows] == [
        (0, "ticks-0", "rabbit@rabbit1"),
        (1, "ticks-1", "rabbit@rabbit2"),
        (2, "ticks-2", "rabbit@rabbit3"),
    ]
    assert [(r.replicas, r.in_sync, r.end_offset) for r in rows] == [
        (3, 3, 1000.0),
        (3, 3, 2000.0),
        (3, 2, 3000.0),
    ]
    assert [[(c.group, c.consumer, c.status) for c in r.groups] for r in rows] == [
        [("g1", "worker-1", "OK")],
        [("g1", "worker-2", "WARN")],
        [("g1", None, "STOP")],
    ]
    assert rows[2].groups[0].lag_ticks == 2899.0
    assert [r.status for r in rows] == ["OK", "WARN", "STOP"]


def test_the_partition_map_of_every_super_stream_lists_them_in_order() -> None:
    rows = partition_map(EXPORTER)
    assert [(r.super_stream, r.partition) for r in rows] == [
        ("other", 0),
        ("ticks", 0),
        ("ticks", 1),
        ("ticks", 2),
    ]
    assert rows[0].groups == ()
    assert rows[0].status == ""


def test_a_partition_takes_its_worst_groups_colour() -> None:
    assert worst_status(["OK", "STALL", "WARN"]) == "STALL"
    assert worst_status(["OK", "ERR", "STOP"]) == "ERR"
    assert worst_status([]) == ""


def test_lag_comes_from_the_exporter_when_it_reports_the_group() -> None:
    worker_says = MetricSample(
        "superticks_consumer_lag_messages", {"group": "g1", "partition": "0"}, 77.0
    )
    rows = lag_rows_of([*EXPORTER, worker_says], "ticks")
    assert [
        (r.group, r.partition, r.lag_ticks, r.lag_seconds, r.status, r.source) for r in rows
    ] == [
        ("g1", 0, 0.0, 0.0, "OK", "exporter"),
        ("g1", 1, 499.0, 1.5, "WARN", "exporter"),
        ("g1", 2, 2899.0, 42.0, "STOP", "exporter"),
    ]


def test_lag_falls_back_on_the_workers_gauges_for_a_group_the_exporter_does_not_report() -> None:
    samples = [
        MetricSample("superticks_consumer_lag_messages", {"group": "w", "partition": "1"}, 5.0),
        MetricSample("superticks_consumer_lag_messages", {"group": "w", "partition": "1"}, 9.0),
        MetricSample("superticks_consumer_lag_seconds", {"group": "w", "partition": "1"}, 0.25),
    ]
    (row,) = lag_rows_of(samples)
    assert (row.group, row.partition, row.lag_ticks, row.lag_seconds, row.source) == (
        "w",
        1,
        9.0,
        0.25,
        "worker",
    )


def counter(value: float, **labels: str) -> MetricSample:
    return MetricSample("superticks_consumed_total", labels, value)


def test_rates_are_increases_over_the_trailing_window_summed_per_key() -> None:
    history = History()
    history.add(
        100.0, [counter(0, group="g", partition="0"), counter(10, group="g", partition="1")]
    )
    history.add(
        105.0, [counter(50, group="g", partition="0"), counter(20, group="g", partition="1")]
    )
    history.add(
        110.0, [counter(70, group="g", partition="0"), counter(40, group="g", partition="1")]
    )

    rates = rate_series(history, "superticks_consumed_total", lambda s: s.label("group"), 6.0)

    assert rates == {"g": [(105.0, 12.0), (110.0, 8.0)]}


def test_a_counter_that_went_down_was_reset_and_counts_from_zero() -> None:
    history = History()
    history.add(100.0, [counter(1000, group="g")])
    history.add(110.0, [counter(30, group="g")])

    rates = rate_series(history, "superticks_consumed_total", lambda s: s.label("group"))

    assert rates == {"g": [(110.0, 3.0)]}


def test_history_keeps_charted_metrics_only_and_is_seeded_with_older_prometheus_points() -> None:
    history = History(limit=3)
    history.add(200.0, [*EXPORTER, MetricSample("up", {}, 1.0)])
    history.seed(
        [
            Series("superticks_group_lag_ticks", {"group": "g1", "partition": "9"}, ((150, 4),)),
            Series("superticks_group_lag_ticks", {"group": "g1", "partition": "9"}, ((250, 5),)),
            Series("up", {}, ((160, 1),)),
        ]
    )
    history.add(190.0, [])  # older than the last snapshot: ignored

    assert history.times == [150.0, 200.0]
    assert history.of("up") == [(150.0, ()), (200.0, ())]
    lines = lag_series_of(history, "ticks")
    assert lines["g1 p9"] == [(150.0, 4.0)]
    assert lines["g1 p2"] == [(200.0, 2899.0)]


def test_live_pages_win_over_prometheus_for_the_metrics_they_have() -> None:
    live = [MetricSample("superticks_group_lag_ticks", {"instance": "x"}, 1.0)]
    prometheus = [
        MetricSample("superticks_group_lag_ticks", {"instance": "y"}, 2.0),
        MetricSample("up", {}, 1.0),
    ]
    assert merge_current(live, prometheus) == [live[0], prometheus[1]]


def test_symbols_sum_ticks_over_workers_and_weigh_vwap_by_volume() -> None:
    def s(name: str, instance: str, symbol: str, value: float) -> MetricSample:
        return MetricSample(name, {"group": "g", "symbol": symbol, "instance": instance}, value)

    samples = [
        s("superticks_symbol_ticks_total", "w1", "AAPL", 30),
        s("superticks_symbol_volume_total", "w1", "AAPL", 100),
        s("superticks_symbol_vwap", "w1", "AAPL", 10.0),
        s("superticks_symbol_last_price", "w1", "AAPL", 10.5),
        s("superticks_symbol_ticks_total", "w2", "AAPL", 10),
        s("superticks_symbol_volume_total", "w2", "AAPL", 300),
        s("superticks_symbol_vwap", "w2", "AAPL", 12.0),
        s("superticks_symbol_last_price", "w2", "AAPL", 12.5),
        s("superticks_symbol_ticks_total", "w2", "MSFT", 50),
    ]
    rows = symbol_rows(samples, top=5)
    assert [(r.symbol, r.ticks, r.vwap, r.last_price) for r in rows] == [
        ("MSFT", 50.0, None, None),
        ("AAPL", 40.0, pytest.approx(11.5), 10.5),
    ]
    assert len(symbol_rows(samples, top=1)) == 1


def test_a_node_is_down_when_prometheus_or_the_management_api_says_so() -> None:
    rows = node_rows([*parse_vector(INSTANT), *EXPORTER])
    assert [(r.name, r.target, r.scraped, r.running, r.up) for r in rows] == [
        ("rabbit@rabbit1", "127.0.0.1:15692", True, True, True),
        ("rabbit@rabbit2", "127.0.0.1:15693", False, True, False),
        ("rabbit@rabbit3", "127.0.0.1:15694", True, False, False),
        ("exporter: management", "", None, True, True),
        ("exporter: stream", "", None, False, False),
    ]


def test_nodes_show_the_exporters_view_when_prometheus_has_none() -> None:
    rows = node_rows(EXPORTER)
    assert [(r.name, r.scraped, r.running) for r in rows[:3]] == [
        ("rabbit@rabbit1", None, True),
        ("rabbit@rabbit2", None, True),
        ("rabbit@rabbit3", None, False),
    ]


def test_the_producer_row_has_its_confirm_quantiles_and_stall() -> None:
    labels = {"super_stream": "ticks", "producer": "p1"}
    samples = [
        MetricSample("superticks_producer_confirm_seconds", {**labels, "quantile": "0.5"}, 0.002),
        MetricSample("superticks_producer_confirm_seconds", {**labels, "quantile": "0.99"}, 0.04),
        MetricSample("superticks_producer_stall_seconds", labels, 0.5),
        MetricSample("superticks_producer_in_flight", labels, 120),
        MetricSample("superticks_producer_resent_total", labels, 3),
    ]
    (row,) = producer_rows(samples)
    assert (row.producer, row.p50_s, row.p99_s, row.stall_s, row.in_flight, row.resent) == (
        "p1",
        0.002,
        0.04,
        0.5,
        120,
        3,
    )


def test_history_keeps_only_what_its_filter_accepts() -> None:
    history = History(keep=lambda s: s.label("super_stream") in ("", "ticks"))
    history.add(1.0, EXPORTER)

    ((_, samples),) = history.of("superticks_partition_end_offset")

    assert sorted(s.label("stream") for s in samples) == ["ticks-0", "ticks-1", "ticks-2"]


def test_a_down_node_keeps_the_name_it_was_known_by() -> None:
    down = [MetricSample("up", {"job": "rabbitmq", "instance": "127.0.0.1:15693"}, 0.0)]
    (unnamed,) = node_rows(down)
    (named,) = node_rows(down, {"127.0.0.1:15693": "rabbit@rabbit2"})
    assert (unnamed.name, named.name, named.up) == ("127.0.0.1:15693", "rabbit@rabbit2", False)
