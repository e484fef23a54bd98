"""Where the dashboard's figures come from: its settings (`DashboardConfig`) and `Sources`, which
reads Prometheus' API and the `/metrics` pages read directly (the lag exporter's, and any
worker's or producer's given with `--scrape`) and remembers, per source, when it last answered.

The dashboard reads Prometheus and the exporter, never a worker's memory. A page read directly
is fresher than Prometheus (which scrapes every 15 s) and works before Prometheus has any
history; a metric found on such a page is taken from there and not from Prometheus
(`panels.merge_current`). A source that does not answer is recorded with the time it last did,
and the others are still read: nothing here raises.
"""

from __future__ import annotations

import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitoring.panels import HISTORY_NAMES, merge_current
from monitoring.promql import Alert, MetricSample, PrometheusClient, Series, scrape
from superticks.errors import SourceUnavailable

__all__ = ["ENV_VAR", "DashboardConfig", "Reading", "SourceState", "Sources", "history_query"]

ENV_VAR = "SUPERTICKS_DASHBOARD"
"""The environment variable that carries a `DashboardConfig` (JSON) to the Streamlit script."""

INSTANT_QUERY = '{__name__=~"superticks_.+|up|rabbitmq_identity_info|rabbitmq_alarms_.+"}'
"""One instant query for every current figure the panels use."""


def _http_url(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL such as http://127.0.0.1:9090")
    return value


def history_query(config: DashboardConfig) -> str:
    """The range query that seeds the charts: the charted metrics, of the shown super stream
    only when there is one (metrics without a `super_stream` label, the workers', included)."""
    names = "|".join(sorted(HISTORY_NAMES))
    if config.super_stream is None:
        return f'{{__name__=~"{names}"}}'
    pattern = re.escape(config.super_stream).replace("\\", "\\\\")
    return f'{{__name__=~"{names}",super_stream=~"{pattern}|"}}'


class DashboardConfig(BaseModel):
    """What the dashboard reads and how often."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prometheus: str = "http://127.0.0.1:9090"
    """Prometheus' base URL (its HTTP API is under /api/v1)."""
    exporter: str | None = "http://127.0.0.1:9110/metrics"
    """The lag exporter's /metrics page, read directly every refresh (None: Prometheus only)."""
    scrape: tuple[str, ...] = ()
    """More /metrics pages to read directly (workers, producers), e.g. before Prometheus
    scrapes them or when Prometheus does not know them."""
    super_stream: str | None = None
    """Show this super stream's partitions and groups only (None: every super stream)."""
    refresh_s: float = Field(default=1.0, gt=0, le=3600)
    """Seconds between two refreshes of the figures."""
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    """How long one request may take before its source counts as not answering."""
    history_s: float = Field(default=600.0, gt=0, le=86400)
    """How far back the charts go (Prometheus' history seeds them at start)."""

    @field_validator("prometheus", "exporter")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("scrape")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_http_url(v) for v in value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardConfig:
        """The config in `ENV_VAR` (JSON), or the defaults when it is not set."""
        text = (os.environ if environ is None else environ).get(ENV_VAR)
        return cls() if not text else cls.model_validate_json(text)


@dataclass(slots=True)
class SourceState:
    """One source and when it last answered (`last_ok`; None: never) or why it did not."""

    name: str
    url: str
    last_ok: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """Everything read in one refresh."""

    at: float
    current: list[MetricSample]
    """The merged current samples (`panels.merge_current`)."""
    alerts: list[Alert] | None
    """Pending and firing alerts, None when Prometheus did not answer."""
    failing: list[SourceState] = field(default_factory=list)
    """The sources that did not answer this time."""


class Sources:
    """Reads every source of `config` concurrently, at most `config.timeout_s` each."""

    def __init__(self, config: DashboardConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self.started = clock()
        self.prometheus = PrometheusClient(config.prometheus, config.timeout_s)
        self.states: dict[str, SourceState] = {"prometheus": SourceState("Prometheus", "")}
        self.states["prometheus"].url = config.prometheus
        pages = ([config.exporter] if config.exporter else []) + list(config.scrape)
        for url in pages:
            name = "the exporter" if url == config.exporter else url
            self.states[url] = SourceState(name, url)

    def _ok(self, key: str) -> None:
        state = self.states[key]
        state.last_ok = self._clock()
        state.error = None

    def _failed(self, key: str, exc: SourceUnavailable) -> None:
        self.states[key].error = exc.reason

    def _page(self, url: str) -> list[MetricSample]:
        samples = scrape(url, self.states[url].name, self.config.timeout_s)
        return [
            s
            if "instance" in s.labels
            else MetricSample(s.name, {**s.labels, "instance": url}, s.value)
            for s in samples
        ]

    def read(self) -> Reading:
        """One refresh: every source at once; one that fails is recorded, never raised."""
        pages = [k for k in self.states if k != "prometheus"]
        with ThreadPoolExecutor(max_workers=2 + len(pages)) as pool:
            instant = pool.submit(self.prometheus.query, INSTANT_QUERY)
            alerts_future = pool.submit(self.prometheus.alerts)
            page_futures = {url: pool.submit(self._page, url) for url in pages}
            live: list[MetricSample] = []
            for url, future in page_futures.items():
                try:
                    live += future.result()
                    self._ok(url)
                except SourceUnavailable as exc:
                    self._failed(url, exc)
            prometheus: list[MetricSample] = []
            alerts: list[Alert] | None = None
            try:
                prometheus = instant.result()
                alerts = alerts_future.result()
                self._ok("prometheus")
            except SourceUnavailable as exc:
                self._failed("prometheus", exc)
        failing = [s for s in self.states.values() if s.error is not None]
        return Reading(self._clock(), merge_current(live, prometheus), alerts, failing)

    def history(self) -> list[Series]:
        """Prometheus' series of the charted metrics over the last `history_s` (empty when it
        does not answer: the charts then start with the dashboard)."""
        end = self._clock()
        start = end - self.config.history_s
        step = max(15.0, self.config.history_s / 600)  # Prometheus scrapes every 15 s
        try:
            return self.prometheus.query_range(history_query(self.config), start, end, step)
        except SourceUnavailable as exc:
            self._failed("prometheus", exc)
            return []

    def since(self, state: SourceState) -> float:
        """When `state`'s source last answered, or when the dashboard started if never."""
        return state.last_ok if state.last_ok is not None else self.started
