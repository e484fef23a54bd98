"""A small typed client of Prometheus' HTTP API and of `/metrics` endpoints.

The parsing is pure (`parse_vector`, `parse_matrix`, `parse_alerts`, `parse_exposition`: an
answer in, typed samples out, vector-pinned by unit tests); `PrometheusClient` and `scrape` only
fetch. Anything that is not a well-formed answer (nothing listening, a timeout, an HTTP error,
JSON of another shape, `"status": "error"`) raises `SourceUnavailable` naming the source, so a
caller shows "no data from X" instead of a stack trace.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from superticks.errors import SourceUnavailable

__all__ = [
    "Alert",
    "MetricSample",
    "PrometheusClient",
    "Series",
    "parse_alerts",
    "parse_exposition",
    "parse_matrix",
    "parse_vector",
    "scrape",
]

DEFAULT_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One value of one series: its metric name, labels (without `__name__`) and value."""

    name: str
    labels: Mapping[str, str] = field(hash=False)
    value: float

    def label(self, key: str, default: str = "") -> str:
        return self.labels.get(key, default)


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range query: its name, labels and `(unix time, value)` points."""

    name: str
    labels: Mapping[str, str] = field(hash=False)
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of `/api/v1/alerts` (state `firing` or `pending`)."""

    name: str
    state: str
    labels: Mapping[str, str] = field(hash=False)
    annotations: Mapping[str, str] = field(hash=False)
    active_at: str


def _data(answer: object, source: str, kind: str | None = None) -> Any:
    """The `data` of a Prometheus API answer, checked for `status` and `resultType`."""
    if not isinstance(answer, dict):
        raise SourceUnavailable(source, "the answer is not a JSON object")
    if answer.get("status") != "success":
        error = answer.get("error") or answer.get("status")
        raise SourceUnavailable(source, f"the API answered {error!r}")
    data = answer.get("data")
    if kind is not None:
        if not isinstance(data, dict) or data.get("resultType") != kind:
            raise SourceUnavailable(source, f"expected a {kind} result")
        return data.get("result")
    return data


def _labels(metric: object, source: str) -> tuple[str, dict[str, str]]:
    if not isinstance(metric, dict):
        raise SourceUnavailable(source, "a result without its metric labels")
    labels = {str(k): str(v) for k, v in metric.items()}
    return labels.pop("__name__", ""), labels


def _number(text: object, source: str) -> float:
    try:
        return float(text)  # type: ignore[arg-type]  # "NaN", "+Inf" and numbers alike
    except (TypeError, ValueError):
        raise SourceUnavailable(source, f"{text!r} is not a sample value") from None


def parse_vector(answer: object, source: str = "Prometheus") -> list[MetricSample]:
    """The samples of an instant query's answer (`resultType` vector); NaN values dropped."""
    result = _data(answer, source, "vector")
    if not isinstance(result, list):
        raise SourceUnavailable(source, "a vector result that is not a list")
    samples = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("value"), list):
            raise SourceUnavailable(source, "a vector element without a value")
        name, labels = _labels(item.get("metric"), source)
        value = _number(item["value"][-1], source)
        if not math.isnan(value):
            samples.append(MetricSample(name, labels, value))
    return samples


def parse_matrix(answer: object, source: str = "Prometheus") -> list[Series]:
    """The series of a range query's answer (`resultType` matrix); NaN points dropped."""
    result = _data(answer, source, "matrix")
    if not isinstance(result, list):
        raise SourceUnavailable(source, "a matrix result that is not a list")
    series = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise SourceUnavailable(source, "a matrix element without values")
        name, labels = _labels(item.get("metric"), source)
        points = tuple(
            (float(t), v)
            for t, v in ((p[0], _number(p[1], source)) for p in item["values"])
            if not math.isnan(v)
        )
        series.append(Series(name, labels, points))
    return series


def parse_alerts(answer: object, source: str = "Prometheus") -> list[Alert]:
    """The alerts of `/api/v1/alerts`, firing ones first, then by name."""
    data = _data(answer, source)
    if not isinstance(data, dict) or not isinstance(data.get("alerts"), list):
        raise SourceUnavailable(source, "an alerts answer without `alerts`")
    alerts = []
    for item in data["alerts"]:
        if not isinstance(item, dict):
            raise SourceUnavailable(source, "an alert that is not an object")
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        annotations = {str(k): str(v) for k, v in (item.get("annotations") or {}).items()}
        alerts.append(
            Alert(
                name=labels.pop("alertname", "?"),
                state=str(item.get("state", "")),
                labels=labels,
                annotations=annotations,
                active_at=str(item.get("activeAt", "")),
            )
        )
    alerts.sort(key=lambda a: (a.state != "firing", a.name, sorted(a.labels.items())))
    return alerts


def parse_exposition(text: str, source: str = "exporter") -> list[MetricSample]:
    """The samples of a Prometheus text exposition (a `/metrics` page); NaN values dropped.
    Counters keep their `_total` names, as Prometheus stores them."""
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError) as exc:
        raise SourceUnavailable(source, f"not a Prometheus text page ({exc})") from None
    return [
        MetricSample(s.name, dict(s.labels), float(s.value))
        for family in families
        for s in family.samples
        if not math.isnan(s.value)
    ]


def _get(url: str, source: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        exc.close()
        raise SourceUnavailable(source, f"HTTP {exc.code} {exc.reason} from {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceUnavailable(source, str(reason)) from None


def scrape(
    url: str, source: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> list[MetricSample]:
    """The samples of the `/metrics` page at `url`."""
    name = source or url
    body = _get(url, name, timeout)
    return parse_exposition(body.decode("utf-8", "replace"), name)


class PrometheusClient:
    """Reads Prometheus' HTTP API at `base_url` (e.g. ``http://127.0.0.1:9090``)."""

    def __init__(
        self, base_url: str, timeout: float = DEFAULT_TIMEOUT_S, source: str = "Prometheus"
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.source = source

    def _call(self, path: str, params: Iterable[tuple[str, str]] = ()) -> object:
        query = urllib.parse.urlencode(list(params))
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        body = _get(url, self.source, self.timeout)
        try:
            answer: object = json.loads(body)
        except ValueError:
            raise SourceUnavailable(self.source, f"{url} did not answer JSON") from None
        return answer

    def query(self, expr: str) -> list[MetricSample]:
        """The samples of an instant query (now)."""
        return parse_vector(self._call("/api/v1/query", [("query", expr)]), self.source)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """The series of a range query from `start` to `end` (unix seconds) every `step`."""
        params = [("query", expr), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        params.append(("step", f"{step:g}"))
        return parse_matrix(self._call("/api/v1/query_range", params), self.source)

    def alerts(self) -> list[Alert]:
        """The pending and firing alerts."""
        return parse_alerts(self._call("/api/v1/alerts"), self.source)
