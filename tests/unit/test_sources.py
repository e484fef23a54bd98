"""Specification of monitoring.sources: the dashboard's settings and the query that seeds its
charts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitoring.panels import HISTORY_NAMES
from monitoring.sources import ENV_VAR, DashboardConfig, history_query


def test_the_history_of_one_super_stream_keeps_its_series_and_unlabelled_ones() -> None:
    query = history_query(DashboardConfig(super_stream="ticks-a.b"))
    assert query.endswith(r',super_stream=~"ticks\\-a\\.b|"}')
    assert all(name in query for name in HISTORY_NAMES)


def test_the_history_of_every_super_stream_filters_on_names_only() -> None:
    assert "super_stream" not in history_query(DashboardConfig())


def test_the_settings_travel_in_the_environment() -> None:
    config = DashboardConfig(exporter=None, scrape=("http://127.0.0.1:9101/metrics",))
    assert DashboardConfig.from_env({ENV_VAR: config.model_dump_json()}) == config
    assert DashboardConfig.from_env({}) == DashboardConfig()


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValidationError, match="is not an http"):
        DashboardConfig(prometheus="localhost:9090")
