"""What the dashboard shows, as pure functions of samples: the partition map, lag, rates, node
health, the producer's confirm latency and the per-symbol figures.

Inputs are `MetricSample`s (from Prometheus or read directly from an exporter's `/metrics`) and a
`History` of timestamped snapshots the dashboard keeps while it runs; outputs are plain rows and
series, so each panel is pinned by unit tests with canned samples and the Streamlit script only
draws them. Metric names are the lag exporter's (`superticks_partition_*`, `superticks_group_*`,
`superticks_exporter_*`), the workers' (`superticks_consumed_total`, `superticks_partition_active`,
`superticks_consumer_lag_*`, `superticks_symbol_*`), the producer's (`superticks_producer_*`) and
RabbitMQ's (`up{job="rabbitmq"}`, `rabbitmq_identity_info`, `rabbitmq_alarms_*`).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitoring.promql import Alert, MetricSample, Series

__all__ = [
    "STATUS_COLOURS",
    "GroupCell",
    "History",
    "LagRow",
    "Lines",
    "NodeRow",
    "PartitionRow",
    "ProducerRow",
    "SymbolRow",
    "alert_rows",
    "clock",
    "consumer_names",
    "gauge_series",
    "handled_total",
    "lag_rows",
    "lag_series",
    "merge_current",
    "node_names",
    "node_rows",
    "partition_map",
    "price_series",
    "producer_rows",
    "rate_series",
    "symbol_rows",
    "worst_status",
]

STATUSES = ("OK", "WARN", "STALL", "STOP", "ERR")
"""The exporter's statuses, mildest first (a row's colour is its worst group's)."""

STATUS_COLOURS = {
    "OK": "#c8e6c9",
    "WARN": "#fff3b0",
    "STALL": "#ffcc80",
    "STOP": "#ef9a9a",
    "ERR": "#e57373",
    "": "#e0e0e0",
}
"""Background colour of each status ("" for unknown: no group, no exporter data)."""

HISTORY_NAMES = frozenset(
    {
        "superticks_group_lag_ticks",
        "superticks_group_lag_seconds",
        "superticks_consumer_lag_messages",
        "superticks_consumer_lag_seconds",
        "superticks_partition_end_offset",
        "superticks_group_stored_offset",
        "superticks_consumed_total",
        "superticks_partition_active",
        "superticks_producer_confirmed_total",
        "superticks_producer_confirm_seconds",
        "superticks_producer_stall_seconds",
        "superticks_symbol_last_price",
        "superticks_symbol_vwap",
    }
)
"""The metrics a `History` keeps (what the charts over time draw)."""


def worst_status(statuses: Iterable[str]) -> str:
    """The most severe of `statuses` ("" when none is a known status)."""
    known = [STATUSES.index(s) for s in statuses if s in STATUSES]
    return STATUSES[max(known)] if known else ""


def merge_current(
    live: Sequence[MetricSample], prometheus: Sequence[MetricSample]
) -> list[MetricSample]:
    """The current samples: for each metric name, the ones read directly (`live`, fresher) when
    there are any, else Prometheus' (so a series is never counted twice)."""
    live_names = {s.name for s in live}
    return [*live, *(s for s in prometheus if s.name not in live_names)]


def _in(sample: MetricSample, super_stream: str | None) -> bool:
    return super_stream is None or sample.label("super_stream") == super_stream


def _partition(sample: MetricSample) -> int | None:
    text = sample.label("partition")
    return int(text) if text.isdigit() else None


# --- the partition map -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupCell:
    """One group on one partition: its active consumer (None: nobody is active) and status."""

    group: str
    consumer: str | None
    status: str
    lag_ticks: float | None
    lag_seconds: float | None


@dataclass(frozen=True, slots=True)
class PartitionRow:
    """One partition of a super stream as the exporter sees it."""

    super_stream: str
    partition: int
    stream: str
    leader: str | None
    replicas: int | None
    in_sync: int | None
    end_offset: float | None
    groups: tuple[GroupCell, ...]

    @property
    def status(self) -> str:
        """The worst status of the partition's groups ("" when it has none)."""
        return worst_status(g.status for g in self.groups)


def partition_map(
    samples: Sequence[MetricSample], super_stream: str | None = None
) -> list[PartitionRow]:
    """Every partition the exporter reports (of `super_stream`, or of all), in order, with its
    leader, replica counts, end offset and each group's active consumer and status."""
    keys: set[tuple[str, int]] = set()
    streams: dict[tuple[str, int], str] = {}
    leader: dict[tuple[str, int], str] = {}
    replicas: dict[tuple[str, int], float] = {}
    in_sync: dict[tuple[str, int], float] = {}
    end: dict[tuple[str, int], float] = {}
    groups: dict[tuple[str, int], set[str]] = defaultdict(set)
    consumer: dict[tuple[str, int, str], str] = {}
    status: dict[tuple[str, int, str], str] = {}
    lag_ticks: dict[tuple[str, int, str], float] = {}
    lag_seconds: dict[tuple[str, int, str], float] = {}
    for s in samples:
        if not s.name.startswith(("superticks_partition_", "superticks_group_")):
            continue
        if not _in(s, super_stream) or not s.label("super_stream"):
            continue
        p = _partition(s)
        if p is None:
            continue
        key = (s.label("super_stream"), p)
        keys.add(key)
        if s.label("stream"):
            streams[key] = s.label("stream")
        group = s.label("group")
        gkey = (*key, group)
        if group:
            groups[key].add(group)
        match s.name:
            case "superticks_partition_leader" if s.value == 1:
                leader[key] = s.label("node")
            case "superticks_partition_replicas":
                replicas[key] = s.value
            case "superticks_partition_replicas_in_sync":
                in_sync[key] = s.value
            case "superticks_partition_end_offset":
                end[key] = s.value
            case "superticks_group_active_consumer" if s.value == 1:
                consumer[gkey] = s.label("consumer")
            case "superticks_group_partition_status" if s.value == 1:
                status[gkey] = s.label("status")
            case "superticks_group_lag_ticks":
                lag_ticks[gkey] = s.value
            case "superticks_group_lag_seconds":
                lag_seconds[gkey] = s.value
    rows = []
    for key in sorted(keys):
        ss, p = key
        cells = tuple(
            GroupCell(
                group=g,
                consumer=consumer.get((ss, p, g)),
                status=status.get((ss, p, g), ""),
                lag_ticks=lag_ticks.get((ss, p, g)),
                lag_seconds=lag_seconds.get((ss, p, g)),
            )
            for g in sorted(groups[key])
        )
        rows.append(
            PartitionRow(
                super_stream=ss,
                partition=p,
                stream=streams.get(key, f"{ss}-{p}"),
                leader=leader.get(key),
                replicas=int(replicas[key]) if key in replicas else None,
                in_sync=int(in_sync[key]) if key in in_sync else None,
                end_offset=end.get(key),
                groups=cells,
            )
        )
    return rows


# --- lag -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LagRow:
    """A group's lag on one partition. `source` says who measured it: "exporter" (the broker's
    stored offsets) or "worker" (the worker's own gauges, when no exporter figures exist)."""

    group: str
    partition: int
    lag_ticks: float | None
    lag_seconds: float | None
    status: str
    source: str


def lag_rows(samples: Sequence[MetricSample], super_stream: str | None = None) -> list[LagRow]:
    """Lag per group and partition: the exporter's where it reports the group, else the
    workers' own `superticks_consumer_lag_*` (the largest a worker reports)."""
    exporter: dict[tuple[str, int], dict[str, float | str]] = defaultdict(dict)
    worker: dict[tuple[str, int], dict[str, float | str]] = defaultdict(dict)
    for s in samples:
        p = _partition(s)
        group = s.label("group")
        if p is None or not group:
            continue
        if s.name.startswith("superticks_group_") and _in(s, super_stream):
            row = exporter[(group, p)]
            if s.name == "superticks_group_lag_ticks":
                row["ticks"] = s.value
            elif s.name == "superticks_group_lag_seconds":
                row["seconds"] = s.value
            elif s.name == "superticks_group_partition_status" and s.value == 1:
                row["status"] = s.label("status")
        elif s.name in ("superticks_consumer_lag_messages", "superticks_consumer_lag_seconds"):
            field = "ticks" if s.name.endswith("messages") else "seconds"
            row = worker[(group, p)]
            previous = row.get(field)
            row[field] = max(s.value, previous) if isinstance(previous, float) else s.value
    exporter_groups = {g for g, _ in exporter}
    rows = []
    for source, table in (("exporter", exporter), ("worker", worker)):
        for (group, p), row in table.items():
            if source == "worker" and group in exporter_groups:
                continue
            ticks, seconds = row.get("ticks"), row.get("seconds")
            rows.append(
                LagRow(
                    group=group,
                    partition=p,
                    lag_ticks=ticks if isinstance(ticks, float) else None,
                    lag_seconds=seconds if isinstance(seconds, float) else None,
                    status=str(row.get("status", "")),
                    source=source,
                )
            )
    rows.sort(key=lambda r: (r.group, r.partition))
    return rows


# --- history and series over time ---------------------------------------------------------------

_Snapshot = dict[str, tuple[MetricSample, ...]]


class History:
    """The snapshots a dashboard session has seen: `(unix time, samples by metric name)`, the
    metrics of `HISTORY_NAMES` only, and of those the ones `keep` accepts (e.g. one super
    stream's), at most `limit` snapshots (oldest dropped). Indexed by name, so drawing one chart
    costs the samples of its metric only."""

    def __init__(
        self, limit: int = 600, keep: Callable[[MetricSample], bool] | None = None
    ) -> None:
        self._snapshots: deque[tuple[float, _Snapshot]] = deque(maxlen=limit)
        self._keep = keep

    def _index(self, samples: Iterable[MetricSample]) -> _Snapshot:
        by_name: dict[str, list[MetricSample]] = defaultdict(list)
        keep = self._keep
        for s in samples:
            if s.name in HISTORY_NAMES and (keep is None or keep(s)):
                by_name[s.name].append(s)
        return {name: tuple(group) for name, group in by_name.items()}

    def add(self, at: float, samples: Iterable[MetricSample]) -> None:
        """Append a snapshot taken at `at` (a time at or before the last is ignored)."""
        if self._snapshots and at <= self._snapshots[-1][0]:
            return
        self._snapshots.append((at, self._index(samples)))

    def seed(self, series: Iterable[Series]) -> None:
        """Prepend Prometheus history (range-query series) older than the first snapshot."""
        first = self._snapshots[0][0] if self._snapshots else float("inf")
        by_time: dict[float, list[MetricSample]] = defaultdict(list)
        for one in series:
            for at, value in one.points:
                if at < first:
                    by_time[at].append(MetricSample(one.name, one.labels, value))
        indexed = ((at, self._index(by_time[at])) for at in sorted(by_time))
        old = [(at, snapshot) for at, snapshot in indexed if snapshot]
        room = (self._snapshots.maxlen or len(old)) - len(self._snapshots)
        self._snapshots.extendleft(reversed(old[-room:] if room > 0 else []))

    def of(self, name: str) -> list[tuple[float, tuple[MetricSample, ...]]]:
        """Every snapshot's samples of metric `name` (empty tuples where it had none)."""
        return [(at, snapshot.get(name, ())) for at, snapshot in self._snapshots]

    @property
    def times(self) -> list[float]:
        return [at for at, _ in self._snapshots]

    def __len__(self) -> int:
        return len(self._snapshots)


Lines = dict[str, list[tuple[float, float]]]
"""Chart data: a line name to its `(unix time, value)` points."""


def gauge_series(
    history: History, name: str, key: Callable[[MetricSample], str | None], reduce: str = "sum"
) -> Lines:
    """Metric `name` over time, one line per `key` (samples whose key is None are left out),
    the values of one key summed (`reduce="sum"`) or their maximum (`"max"`)."""
    out: Lines = defaultdict(list)
    for at, samples in history.of(name):
        values: dict[str, list[float]] = defaultdict(list)
        for s in samples:
            k = key(s)
            if k is not None:
                values[k].append(s.value)
        for k, vs in values.items():
            out[k].append((at, sum(vs) if reduce == "sum" else max(vs)))
    return dict(out)


def lag_series(history: History, unit: str, super_stream: str | None = None) -> Lines:
    """Lag over time per `group p<partition>`, in "ticks" or "seconds": the exporter's series
    when it has any, else the workers' own gauges."""
    exporter_name = f"superticks_group_lag_{unit}"
    worker_name = (
        "superticks_consumer_lag_messages" if unit == "ticks" else "superticks_consumer_lag_seconds"
    )

    def key(s: MetricSample) -> str | None:
        if s.name == exporter_name and not _in(s, super_stream):
            return None
        return f"{s.label('group')} p{s.label('partition')}"

    series = gauge_series(history, exporter_name, key)
    return series or gauge_series(history, worker_name, key, reduce="max")


def _instance(s: MetricSample) -> str:
    return s.label("instance") or s.label("job")


def rate_series(
    history: History,
    name: str,
    key: Callable[[MetricSample], str | None],
    window_s: float = 20.0,
) -> Lines:
    """Per-second rate of counter (or offset) `name` over a trailing `window_s`, summed per
    `key`: each series' increase between the oldest snapshot in the window and the current one
    (a decrease is a reset: the current value is the increase)."""
    snaps: list[tuple[float, dict[tuple[tuple[str, str], ...], tuple[str, float]]]] = []
    for at, samples in history.of(name):
        keyed: dict[tuple[tuple[str, str], ...], tuple[str, float]] = {}
        for s in samples:
            k = key(s)
            if k is not None:
                keyed[tuple(sorted(s.labels.items()))] = (k, s.value)
        snaps.append((at, keyed))
    out: Lines = defaultdict(list)
    j = 0
    for i, (at, now) in enumerate(snaps):
        while j < i and snaps[j][0] < at - window_s:
            j += 1
        if j == i or not now:
            continue
        then, before = snaps[j]
        totals: dict[str, float] = defaultdict(float)
        for series, (k, value) in now.items():
            prior = before.get(series)
            if prior is not None:
                old = prior[1]
                totals[k] += (value - old if value >= old else value) / (at - then)
        for k, rate in totals.items():
            out[k].append((at, rate))
    return dict(out)


def consumer_names(samples: Sequence[MetricSample]) -> dict[str, str]:
    """Instance (or scraped URL) -> worker name, from the workers' `superticks_partition_active`
    gauge (`worker` label)."""
    return {
        _instance(s): s.label("worker")
        for s in samples
        if s.name == "superticks_partition_active" and s.label("worker")
    }


def handled_total(samples: Sequence[MetricSample]) -> float:
    """Ticks handed to handlers, summed over every worker reporting `superticks_consumed_total`."""
    return sum(s.value for s in samples if s.name == "superticks_consumed_total")


def price_series(history: History, symbols: Sequence[str]) -> Lines:
    """Last price over time of each of `symbols` (the highest any worker reports)."""
    wanted = set(symbols)
    return gauge_series(
        history,
        "superticks_symbol_last_price",
        lambda s: s.label("symbol") if s.label("symbol") in wanted else None,
        reduce="max",
    )


# --- per-symbol figures --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SymbolRow:
    """A symbol's figures summed over the workers that handled it."""

    symbol: str
    ticks: float
    vwap: float | None
    last_price: float | None


def symbol_rows(samples: Sequence[MetricSample], top: int = 20) -> list[SymbolRow]:
    """The `top` symbols by tick count: ticks summed over workers (each counts what it handled),
    VWAP weighted by each worker's volume, last price from the worker that handled most."""
    ticks: dict[str, dict[str, float]] = defaultdict(dict)
    volume: dict[tuple[str, str], float] = {}
    vwap: dict[tuple[str, str], float] = {}
    last: dict[tuple[str, str], float] = {}
    for s in samples:
        symbol = s.label("symbol")
        if not symbol or not s.name.startswith("superticks_symbol_"):
            continue
        who = f"{_instance(s)}|{s.label('group')}"
        match s.name:
            case "superticks_symbol_ticks_total":
                ticks[symbol][who] = s.value
            case "superticks_symbol_volume_total":
                volume[(symbol, who)] = s.value
            case "superticks_symbol_vwap":
                vwap[(symbol, who)] = s.value
            case "superticks_symbol_last_price":
                last[(symbol, who)] = s.value
    rows = []
    for symbol, by_worker in ticks.items():
        weights = [
            (vwap[(symbol, w)], volume.get((symbol, w), 0.0))
            for w in by_worker
            if (symbol, w) in vwap
        ]
        total_volume = sum(v for _, v in weights)
        mean = sum(p * v for p, v in weights) / total_volume if total_volume > 0 else None
        busiest = max(by_worker, key=lambda w: by_worker[w])
        rows.append(
            SymbolRow(
                symbol=symbol,
                ticks=sum(by_worker.values()),
                vwap=mean,
                last_price=last.get((symbol, busiest)),
            )
        )
    rows.sort(key=lambda r: (-r.ticks, r.symbol))
    return rows[:top]


# --- nodes, producer, alerts ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A node's health: whether Prometheus scrapes it (`up{job="rabbitmq"}`, named from
    `rabbitmq_identity_info`), whether the management API says it runs (the exporter's
    `superticks_node_running`), its resource alarms; or one source of the lag exporter
    (`superticks_exporter_up`). None: that source says nothing of it."""

    name: str
    target: str
    scraped: bool | None
    running: bool | None
    alarms: tuple[str, ...]

    @property
    def up(self) -> bool:
        """No source says it is down."""
        return self.scraped is not False and self.running is not False


def node_names(samples: Sequence[MetricSample]) -> dict[str, str]:
    """Scrape target (`instance`) -> RabbitMQ node name, from `rabbitmq_identity_info`."""
    return {
        s.label("instance"): s.label("rabbitmq_node")
        for s in samples
        if s.name == "rabbitmq_identity_info" and s.label("rabbitmq_node")
    }


def node_rows(
    samples: Sequence[MetricSample], known: Mapping[str, str] | None = None
) -> list[NodeRow]:
    """Each RabbitMQ node (from Prometheus' scrapes and the exporter's management view), then
    each source of the lag exporter. A node that is down has no `rabbitmq_identity_info`: its
    target is named from `known` (the names seen before) when it is there."""
    names = {**(known or {}), **node_names(samples)}
    alarms: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        if s.name.startswith("rabbitmq_alarms_") and s.value == 1:
            alarms[names.get(s.label("instance"), s.label("instance"))].append(
                s.name.removeprefix("rabbitmq_alarms_")
            )
    targets: dict[str, str] = {}
    scraped: dict[str, bool] = {}
    running: dict[str, bool] = {}
    for s in samples:
        if s.name == "up" and s.label("job") == "rabbitmq":
            name = names.get(s.label("instance"), s.label("instance"))
            targets[name] = s.label("instance")
            scraped[name] = s.value == 1
        elif s.name == "superticks_node_running" and s.label("node"):
            running[s.label("node")] = s.value == 1
    rows = [
        NodeRow(
            name=name,
            target=targets.get(name, ""),
            scraped=scraped.get(name),
            running=running.get(name),
            alarms=tuple(sorted(alarms[name])),
        )
        for name in sorted({*scraped, *running})
    ]
    rows += sorted(
        (
            NodeRow(
                name=f"exporter: {s.label('source')}",
                target="",
                scraped=None,
                running=s.value == 1,
                alarms=(),
            )
            for s in samples
            if s.name == "superticks_exporter_up"
        ),
        key=lambda r: r.name,
    )
    return rows


@dataclass(frozen=True, slots=True)
class ProducerRow:
    """One producer's confirm latency quantiles, current stall and unconfirmed ticks."""

    producer: str
    super_stream: str
    p50_s: float | None
    p99_s: float | None
    stall_s: float | None
    in_flight: float | None
    resent: float | None


def producer_rows(samples: Sequence[MetricSample]) -> list[ProducerRow]:
    """Each producer reporting `superticks_producer_*`."""
    figures: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for s in samples:
        if not s.name.startswith("superticks_producer_"):
            continue
        key = (s.label("producer"), s.label("super_stream"))
        field = s.name.removeprefix("superticks_producer_")
        if field == "confirm_seconds":
            field = {"0.5": "p50", "0.99": "p99"}.get(s.label("quantile"), "")
        if field:
            figures[key][field] = s.value
    return [
        ProducerRow(
            producer=producer,
            super_stream=super_stream,
            p50_s=f.get("p50"),
            p99_s=f.get("p99"),
            stall_s=f.get("stall_seconds"),
            in_flight=f.get("in_flight"),
            resent=f.get("resent_total"),
        )
        for (producer, super_stream), f in sorted(figures.items())
    ]


def alert_rows(alerts: Sequence[Alert]) -> list[dict[str, str]]:
    """Firing and pending alerts as table rows: alert, state, since, labels, summary."""
    return [
        {
            "alert": a.name,
            "state": a.state,
            "since": a.active_at[:19].replace("T", " "),
            "labels": ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items())),
            "summary": a.annotations.get("summary", a.annotations.get("description", "")),
        }
        for a in alerts
    ]


def clock(at: float) -> str:
    """`at` (unix seconds) as an UTC wall-clock time, e.g. ``08:41:07 UTC``."""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")
