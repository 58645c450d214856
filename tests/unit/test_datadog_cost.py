"""The PoC cost arithmetic on small hand-made months, and the windows notebooks take."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from opsbook.clients import Env
from opsbook.datadog import poc_cost, window
from opsbook.datadog.client import resolve_host
from opsbook.datadog.metrics import render
from opsbook.errors import UsageError
from opsbook.params import DatadogPricing, load_params


def test_high_water_mark_leaves_out_the_top_one_percent_of_hours() -> None:
    assert poc_cost.high_water_mark([3] * 99 + [40]) == 3  # 100 hours: the single spike is ignored
    assert poc_cost.high_water_mark([3] * 98 + [40]) == 40  # 99 hours: 1% is less than one hour
    assert poc_cost.high_water_mark([5] * 190 + [9, 9, 30]) == 9  # 193 hours: one hour left out
    assert poc_cost.high_water_mark([]) == 0


def pricing(**plan) -> DatadogPricing:
    price = {"plan": "Pro", "billing": "annual", "host_month": 10.0, "containers_per_host": 2,
             "container_month": 1.0, "custom_metrics_per_host": 100, "custom_metric_month": 0.05, **plan}
    return DatadogPricing.model_validate({
        "source": "https://example.test/prices", "as_of": "2025-01-01", "plans": [price],
        "cloudwatch": {"source": "https://example.test/cw", "as_of": "2025-01-01", "metric_month": 0.3,
                       "alarm_month": 0.1, "dashboard_month": 3.0, "container_insights_metrics_per_node": 10},
    })


def test_costs_of_a_four_hour_month_worked_by_hand() -> None:
    hours = pd.DataFrame({"host_count": [2, 2, 3, 4], "container_count": [3, 5, 9, 6]})
    (row,) = poc_cost.costs(hours, custom_metrics=450.0, pricing=pricing(), scope="s").to_dict("records")
    # 4 hours: 1% is no hour, so the billed hosts are the highest hour
    assert row["billed_hosts"] == 4 and row["host_cost"] == 40.0
    # allotment 2 per host each hour: excess 0, 1, 3, 0 -> 1.0 on average
    assert row["extra_containers"] == 1.0 and row["container_cost"] == 1.0
    # 450 custom metrics, 4 hosts x 100 included -> 50 over at 0.05
    assert row["extra_custom_metrics"] == 50.0 and row["custom_metric_cost"] == pytest.approx(2.5)
    assert row["monthly"] == pytest.approx(43.5) and row["yearly"] == pytest.approx(522.0)


def test_scaled_hours_round_up_to_whole_hosts() -> None:
    measured = poc_cost.MeasuredUsage(
        month=window.month("2025-01"),
        hours=pd.DataFrame({"hour": [0, 1], "host_count": [3, 5], "container_count": [10, 11]}),
        metrics=pd.DataFrame(columns=["metric", "category", "avg_per_hour", "max_per_hour"]), summary={},
    )
    scaled = poc_cost.scaled_hours(measured, 1.5)
    assert scaled["host_count"].tolist() == [5, 8] and scaled["container_count"].tolist() == [15, 17]
    assert poc_cost.scaled_hours(measured, 2.0)["host_count"].tolist() == [6, 10]


def test_node_scale_compares_desired_node_counts() -> None:
    sandbox, prod = load_params("sandbox"), load_params("prod-pl")
    expected = sum(g.desired_size for g in prod.eks.node_groups) / sum(g.desired_size for g in sandbox.eks.node_groups)
    assert poc_cost.node_scale(sandbox, prod) == expected


def test_month_windows() -> None:
    now = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert window.month("", now) == window.Window(datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))
    assert window.month("2024-12", now).end == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(UsageError, match="expected YYYY-MM"):
        window.month("March", now)
    with pytest.raises(UsageError, match="has not started"):
        window.month("2025-04", now)
    with pytest.raises(UsageError, match="start before end"):
        window.span("2025-03-14T10:00", "2025-03-14T09:00", now)
    assert window.span("2025-03-14T08:00", "", now).end == now


def test_render_fills_placeholders_and_keeps_datadog_braces() -> None:
    params = load_params("sandbox")
    text = render("avg:x{kube_cluster_name:$cluster,db:${rds}} by {host} > $env", params)
    assert text == (f"avg:x{{kube_cluster_name:{params.eks.cluster_name},db:{params.rds[0].identifier}}} "
                    f"by {{host}} > {params.env}")


@pytest.mark.parametrize("environ, api_host, expected", [
    ({"DD_HOST": "http://127.0.0.1:9/"}, "api.example.test", "http://127.0.0.1:9"),
    ({}, "api.example.test", "https://api.example.test"),
    ({}, "https://proxy.example.test/", "https://proxy.example.test"),
    ({"DD_SITE": "us5.datadoghq.com"}, None, "https://api.us5.datadoghq.com"),
    ({}, None, "https://api.datadoghq.eu"),
])
def test_api_host_resolution(monkeypatch, environ, api_host, expected) -> None:
    for var in ("DD_HOST", "DD_SITE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    params = load_params("prod-pl")
    params = params.model_copy(update={"datadog": params.datadog.model_copy(update={"api_host": api_host})})
    assert resolve_host(Env(params=params, run_id="unit")) == expected


def test_an_explicit_incident_window_is_used_as_given() -> None:
    from opsbook.datadog.incident import resolve_window

    params = load_params("sandbox")
    got = resolve_window(None, params, "2025-03-14T09:30", "2025-03-14T11:00")  # no API call is needed
    assert got == window.Window(datetime(2025, 3, 14, 9, 30, tzinfo=UTC), datetime(2025, 3, 14, 11, tzinfo=UTC))
