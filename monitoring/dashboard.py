"""The superticks dashboard: a Streamlit script (`superticks dashboard` runs it, loopback only).

Reads Prometheus' HTTP API and the lag exporter's `/metrics` (plus any page given with
`--scrape`) through `monitoring.sources`, turns the answers into rows with `monitoring.panels`,
and draws them; the figures refresh every `refresh_s` (`st.fragment(run_every=...)`). Its
settings come in the environment variable `SUPERTICKS_DASHBOARD` (JSON of a `DashboardConfig`).
A source that does not answer shows "no data from X since T" and every other panel goes on.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from monitoring.panels import (
    STATUS_COLOURS,
    History,
    Lines,
    PartitionRow,
    alert_rows,
    clock,
    consumer_names,
    gauge_series,
    handled_total,
    lag_rows,
    lag_series,
    node_names,
    node_rows,
    partition_map,
    price_series,
    producer_rows,
    rate_series,
    symbol_rows,
)
from monitoring.promql import MetricSample
from monitoring.sources import DashboardConfig, Reading, Sources

__all__ = ["main", "partition_map_html"]

TOP_SYMBOLS = 20
TREND_SYMBOLS = 5


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def partition_map_html(rows: Sequence[PartitionRow]) -> str:
    """The partition map as an HTML table (class ``partition-map``, one row per partition, each
    row and group cell coloured by its status)."""
    groups = sorted({c.group for r in rows for c in r.groups})
    head = "".join(
        f"<th>{html.escape(h)}</th>"
        for h in [
            "super stream",
            "partition",
            "leader",
            "replicas (in sync)",
            "end offset",
            *(f"group {g}" for g in groups),
            "status",
        ]
    )
    body = []
    for r in rows:
        cells = {c.group: c for c in r.groups}
        replicas = "-" if r.replicas is None else f"{r.replicas} ({_number(r.in_sync)})"
        tds = [
            html.escape(r.super_stream),
            f"{r.partition} <small>{html.escape(r.stream)}</small>",
            html.escape(r.leader or "unknown"),
            replicas,
            _number(r.end_offset),
        ]
        row = "".join(f"<td>{td}</td>" for td in tds)
        for g in groups:
            c = cells.get(g)
            if c is None:
                row += "<td>-</td>"
                continue
            who = html.escape(c.consumer) if c.consumer else "<b>no active consumer</b>"
            lag = f"lag {_number(c.lag_ticks)} ticks / {_number(c.lag_seconds, 1)} s"
            colour = STATUS_COLOURS.get(c.status, STATUS_COLOURS[""])
            row += (
                f'<td style="background:{colour}">{who}<br>'
                f"<small>{html.escape(c.status or '?')} · {lag}</small></td>"
            )
        status = r.status or "no group"
        colour = STATUS_COLOURS.get(r.status, STATUS_COLOURS[""])
        body.append(
            f'<tr data-partition="{r.partition}" style="background:{colour}">{row}'
            f"<td><b>{html.escape(status)}</b></td></tr>"
        )
    return (
        '<table class="partition-map" style="width:100%;border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _seen(flag: bool | None) -> str:
    return "-" if flag is None else ("up" if flag else "down")


def _frame(series: Lines) -> pd.DataFrame:
    """Chart data in long form: one row per point (`time` in UTC, `line`, `value`)."""
    rows = [(t, name, v) for name, points in series.items() for t, v in points]
    frame = pd.DataFrame(rows, columns=["time", "line", "value"])
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    return frame


# Plain Vega-Lite specs (not Altair objects, whose validation cost a second per refresh).
def _line_spec(zero: bool) -> dict[str, object]:
    return {
        "mark": {"type": "line", "interpolate": "monotone"},
        "height": 220,
        "encoding": {
            "x": {"field": "time", "type": "temporal", "title": None},
            "y": {"field": "value", "type": "quantitative", "title": None, "scale": {"zero": zero}},
            "color": {"field": "line", "type": "nominal", "title": None},
            "tooltip": [{"field": "line"}, {"field": "value", "format": ",.4~g"}],
        },
    }


def _bars(values: dict[str, float], height: int) -> None:
    frame = pd.DataFrame(list(values.items()), columns=["name", "value"])
    spec = {
        "mark": {"type": "bar"},
        "height": height,
        "encoding": {
            "x": {"field": "name", "type": "nominal", "title": None, "sort": "-y"},
            "y": {"field": "value", "type": "quantitative", "title": None},
            "tooltip": [{"field": "name"}, {"field": "value", "format": ",.0f"}],
        },
    }
    st.vega_lite_chart(frame, spec, width="stretch")


def _chart(title: str, series: Lines, empty: str, zero: bool = True) -> None:
    st.markdown(f"**{title}**")
    if any(series.values()):
        st.vega_lite_chart(_frame(series), _line_spec(zero), width="stretch")
    else:
        st.caption(empty)


def _latest(series: Lines) -> dict[str, float]:
    return {k: points[-1][1] for k, points in series.items() if points}


def _session(config: DashboardConfig) -> tuple[Sources, History]:
    """This browser session's sources and history (Prometheus' history seeds it once)."""
    if "superticks_sources" not in st.session_state:
        sources = Sources(config)
        ss = config.super_stream
        history = History(
            limit=min(3600, max(60, int(config.history_s / config.refresh_s))),
            keep=lambda s: ss is None or s.label("super_stream") in ("", ss),
        )
        history.seed(sources.history())
        st.session_state["superticks_sources"] = sources
        st.session_state["superticks_history"] = history
    return st.session_state["superticks_sources"], st.session_state["superticks_history"]


def _sources_banner(sources: Sources, reading: Reading) -> None:
    for state in reading.failing:
        where = "" if state.name == state.url else f" ({state.url})"
        st.error(
            f"no data from {state.name}{where} since {clock(sources.since(state))}"
            f"{'' if state.last_ok else ' (never answered)'}: {state.error}"
        )


def _overview(reading: Reading, rows: Sequence[PartitionRow], publish: Lines) -> None:
    firing = sum(1 for a in reading.alerts or () if a.state == "firing")
    a, b, c, d = st.columns(4)
    a.metric("partitions", len(rows))
    b.metric("ticks handled", _number(handled_total(reading.current)))
    c.metric("publish rate (ticks/s)", _number(sum(_latest(publish).values())))
    d.metric("alerts firing", "?" if reading.alerts is None else firing)


def _partitions(rows: Sequence[PartitionRow], super_stream: str | None) -> None:
    st.subheader("Partition map")
    if rows:
        st.html(partition_map_html(rows))
    else:
        where = f"super stream {super_stream!r}" if super_stream else "any super stream"
        st.info(f"no partition of {where} reported by the exporter yet")


def _lag(reading: Reading, history: History, super_stream: str | None) -> None:
    st.subheader("Lag per group and partition")
    left, right = st.columns(2)
    with left:
        _chart("lag (ticks)", lag_series(history, "ticks", super_stream), "no lag figures yet")
    with right:
        _chart("lag (seconds)", lag_series(history, "seconds", super_stream), "no lag figures yet")
    rows = lag_rows(reading.current, super_stream)
    if rows:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "group": r.group,
                        "partition": r.partition,
                        "lag (ticks)": r.lag_ticks,
                        "lag (s)": r.lag_seconds,
                        "status": r.status,
                        "measured by": r.source,
                    }
                    for r in rows
                ]
            ),
            hide_index=True,
        )


def _rates(publish: Lines, handle: Lines) -> None:
    st.subheader("Publish and handle rates")
    left, right = st.columns(2)
    with left:
        _chart("published (ticks/s per partition)", publish, "no end offsets yet")
    with right:
        _chart("handled (ticks/s per group)", handle, "no handled ticks yet")


def _alerts_and_nodes(reading: Reading) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Alerts")
        if reading.alerts is None:
            st.caption("unknown: Prometheus does not answer")
        elif reading.alerts:
            st.dataframe(pd.DataFrame(alert_rows(reading.alerts)), hide_index=True)
        else:
            st.success("no alert firing or pending")
    with right:
        st.subheader("Nodes")
        known: dict[str, str] = st.session_state.setdefault("superticks_node_names", {})
        known.update(node_names(reading.current))
        nodes = node_rows(reading.current, known)
        if nodes:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "node": n.name,
                            "target": n.target,
                            "health": "up" if n.up else "DOWN",
                            "Prometheus scrape": _seen(n.scraped),
                            "management API": _seen(n.running),
                            "alarms": ", ".join(n.alarms) or "none",
                        }
                        for n in nodes
                    ]
                ),
                hide_index=True,
            )
        else:
            st.caption("no node figures (Prometheus scrapes the nodes)")


def _producer(reading: Reading, history: History) -> None:
    st.subheader("Producer")
    rows = producer_rows(reading.current)
    if not rows:
        st.caption("no producer reports metrics (`superticks produce --metrics-port P`)")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "producer": r.producer,
                    "super stream": r.super_stream,
                    "confirm p50 (ms)": None if r.p50_s is None else r.p50_s * 1000,
                    "confirm p99 (ms)": None if r.p99_s is None else r.p99_s * 1000,
                    "stall (s)": r.stall_s,
                    "in flight": r.in_flight,
                    "re-sent": r.resent,
                }
                for r in rows
            ]
        ),
        hide_index=True,
    )
    left, right = st.columns(2)
    quantiles = {"0.5": "p50", "0.99": "p99"}
    with left:
        latency = gauge_series(
            history,
            "superticks_producer_confirm_seconds",
            lambda s: f"{s.label('producer')} {quantiles.get(s.label('quantile'), '?')}",
            reduce="max",
        )
        _chart("confirm latency (s)", latency, "no latency figures yet")
    with right:
        stall = gauge_series(
            history, "superticks_producer_stall_seconds", lambda s: s.label("producer"), "max"
        )
        _chart("longest confirm wait (s)", stall, "no stall figures yet")


def _symbols(reading: Reading, history: History) -> None:
    st.subheader("Symbols")
    rows = symbol_rows(reading.current, top=TOP_SYMBOLS)
    if not rows:
        st.caption("no per-symbol figures (workers with `--handler vwap` export them)")
        return
    table = pd.DataFrame(
        [
            {"symbol": r.symbol, "ticks": r.ticks, "vwap": r.vwap, "last price": r.last_price}
            for r in rows
        ]
    )
    left, right = st.columns(2)
    with left:
        st.markdown(f"**tick counts and VWAP (top {len(rows)})**")
        st.dataframe(table, hide_index=True)
    with right:
        st.markdown("**tick counts**")
        _bars({r.symbol: r.ticks for r in rows}, height=300)
    top = [r.symbol for r in rows[:TREND_SYMBOLS]]
    trends = price_series(history, top)
    _chart(f"price trends (last price of the top {len(top)})", trends, "", zero=False)


def _consumers(reading: Reading, history: History) -> None:
    st.subheader("Per-consumer throughput")
    names = consumer_names(reading.current)

    def who(s: MetricSample) -> str:
        instance = s.label("instance") or s.label("job")
        return f"{s.label('group')} {names.get(instance, instance)}"

    throughput = rate_series(history, "superticks_consumed_total", who)
    latest = _latest(throughput)
    if not latest:
        st.caption("no worker reports metrics yet (`superticks worker --metrics-port P`)")
        return
    left, right = st.columns(2)
    with left:
        st.markdown("**now (ticks/s)**")
        _bars(latest, height=220)
    with right:
        _chart("over time (ticks/s)", throughput, "")


def _refresh(config: DashboardConfig) -> None:
    sources, history = _session(config)
    started = time.monotonic()
    reading = sources.read()
    history.add(reading.at, reading.current)
    ss = config.super_stream
    took_ms = (time.monotonic() - started) * 1000
    st.caption(
        f"updated {clock(reading.at)} (sources read in {took_ms:.0f} ms), "
        f"every {config.refresh_s:g} s"
    )
    _sources_banner(sources, reading)
    rows = partition_map(reading.current, ss)

    def partition_key(s: MetricSample) -> str | None:
        if ss is not None and s.label("super_stream") != ss:
            return None
        return f"{s.label('super_stream')} p{s.label('partition')}"

    publish = rate_series(history, "superticks_partition_end_offset", partition_key)
    handle = rate_series(
        history,
        "superticks_group_stored_offset",
        lambda s: s.label("group") if ss is None or s.label("super_stream") == ss else None,
    ) or rate_series(history, "superticks_consumed_total", lambda s: s.label("group"))
    _overview(reading, rows, publish)
    _partitions(rows, ss)
    _lag(reading, history, ss)
    _rates(publish, handle)
    _alerts_and_nodes(reading)
    _producer(reading, history)
    _symbols(reading, history)
    _consumers(reading, history)


def main() -> None:
    """Draw the page; the figures re-draw every `refresh_s` seconds."""
    st.set_page_config(page_title="superticks", layout="wide")
    st.title("superticks")
    try:
        config = DashboardConfig.from_env()
    except ValidationError as exc:
        st.error(f"bad dashboard settings in SUPERTICKS_DASHBOARD: {exc}")
        return
    what = f"super stream {config.super_stream}" if config.super_stream else "every super stream"
    pages = [p for p in (config.exporter, *config.scrape) if p]
    st.caption(
        f"{what} · Prometheus {config.prometheus} · read directly: {', '.join(pages) or 'none'}"
    )
    live: Any = st.fragment(run_every=config.refresh_s)(_refresh)
    live(config)


if __name__ == "__main__":
    main()
