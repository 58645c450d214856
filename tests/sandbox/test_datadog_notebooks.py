"""The Datadog notebooks through the runner on the sandbox, their records checked against the raw API.

The PoC cost projection is recomputed here from the emulator's usage data (requests) and
the prices in params, without importing opsbook.datadog.poc_cost.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from opsbook.params import load_params

from tests.notebook_runs import run_passing
from tests.sandbox.test_datadog_emulator import TIMEOUT, base, contract, emulator_log, keys  # noqa: F401


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datadog-runs")


def run(name: str, params, runs_root: Path, **overrides) -> dict:
    return run_passing(name, runs_root, params, overrides).records


def test_monitors_runbook_applies_then_plans_nothing(sandbox, sandbox_params, runs_root) -> None:
    applied = run("datadog-monitors", sandbox_params, runs_root, apply=True)["summary"]
    assert applied["in_sync"] and applied["still_pending"] == 0
    again = run("datadog-monitors", sandbox_params, runs_root)["summary"]
    assert again == {"planned_changes": 0, "applied": 0, "still_pending": 0, "in_sync": True}


# --- the PoC cost, recomputed -----------------------------------------------------------------------


def last_full_month(now: datetime) -> datetime:
    return (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)).replace(day=1)


def usage(base: str, keys: dict, first: datetime) -> tuple[list[int], list[int], int]:  # noqa: F811
    """Hourly hosts and containers, and billable custom metrics, straight from the usage API."""
    following = (first + timedelta(days=32)).replace(day=1)
    rows = requests.get(f"{base}/api/v1/usage/hosts", headers=keys, timeout=TIMEOUT, params={
        "start_hr": first.strftime("%Y-%m-%dT%H"), "end_hr": following.strftime("%Y-%m-%dT%H")}).json()["usage"]
    metrics, cursor = [], None
    while True:
        page = requests.get(f"{base}/api/v1/usage/top_avg_metrics", headers=keys, timeout=TIMEOUT, params={
            "month": first.strftime("%Y-%m"), **({"next_record_id": cursor} if cursor else {})}).json()
        metrics += page["usage"]
        cursor = page["metadata"]["pagination"]["next_record_id"]
        if cursor is None:
            break
    custom = sum(m["avg_metric_hour"] for m in metrics if m["metric_category"] == "custom")
    return [r["host_count"] for r in rows], [r["container_count"] for r in rows], custom


def expected_bill(hosts: list[int], containers: list[int], custom: float, price) -> dict:
    """Datadog's rules in this test's own words: drop the busiest 1% of hours, bill the busiest left."""
    busiest_first = sorted(hosts, reverse=True)
    billed = busiest_first[len(hosts) // 100]
    over_containers = sum(max(0, c - price.containers_per_host * h) for c, h in zip(containers, hosts, strict=True))
    over_containers /= len(hosts)
    over_custom = max(0, custom - price.custom_metrics_per_host * billed)
    monthly = (billed * price.host_month + over_containers * price.container_month
               + over_custom * price.custom_metric_month)
    return {"billed_hosts": billed, "extra_containers": over_containers, "extra_custom_metrics": over_custom,
            "monthly": monthly}


def test_poc_cost_projection_recomputed_from_the_usage_data(sandbox, sandbox_params, runs_root, base, keys) -> None:  # noqa: F811
    first = last_full_month(datetime.now(UTC))
    records = run("datadog-poc-cost", sandbox_params, runs_root, month=first.strftime("%Y-%m"))
    target = load_params(sandbox_params.datadog.poc_target_env)
    hosts, containers, custom = usage(base, keys, first)
    assert len(hosts) == 24 * ((first + timedelta(days=32)).replace(day=1) - first).days

    factor = sum(g.desired_size for g in target.eks.node_groups) / sum(
        g.desired_size for g in sandbox_params.eks.node_groups)
    scopes = {
        f"{sandbox_params.env} (measured)": (hosts, containers, custom),
        f"{target.env} (projected x{factor:g})": ([math.ceil(h * factor) for h in hosts],
                                                 [math.ceil(c * factor) for c in containers],
                                                 math.ceil(custom * factor)),
    }
    rows = {(r["scope"], r["plan"], r["billing"]): r for r in records["projection"]}
    prices = sandbox_params.datadog.pricing.plans
    assert len(rows) == len(scopes) * len(prices)
    for scope, (h, c, m) in scopes.items():
        for price in prices:
            want = expected_bill(h, c, m, price)
            got = rows[(scope, price.plan, price.billing)]
            for key, value in want.items():
                assert got[key] == pytest.approx(value, abs=0.01), (scope, price.plan, price.billing, key)
    # the headline compares the same monthly figures for the target environment
    for price in prices:
        option = f"Datadog {price.plan} ({price.billing})"
        assert records["summary"][option] == pytest.approx(
            expected_bill(*scopes[f"{target.env} (projected x{factor:g})"], price)["monthly"], abs=0.01)


def test_incident_notebook_finds_the_seeded_incident(sandbox, sandbox_params, runs_root, base, keys) -> None:  # noqa: F811
    summary = run("incident-analysis", sandbox_params, runs_root)["summary"]
    start = datetime.fromisoformat(summary["window_start"])
    end = datetime.fromisoformat(summary["window_end"])
    raw = requests.get(f"{base}/api/v1/events", headers=keys, timeout=TIMEOUT, params={
        "start": int(start.timestamp()), "end": int(end.timestamp()), "tags": "monitor"}).json()["events"]
    names = {e["title"].split("] ", 1)[1] for e in raw if e["title"].startswith("[Triggered")}
    assert names and summary["monitors_fired"] == len(names)
    rds = sandbox_params.rds[0].identifier
    cpu = requests.get(f"{base}/api/v1/query", headers=keys, timeout=TIMEOUT, params={
        "from": int(start.timestamp()), "to": int(end.timestamp()),
        "query": f"avg:aws.rds.cpuutilization{{dbinstanceidentifier:{rds}}}"}).json()
    assert summary["peaks"]["rds_cpu_percent"] == pytest.approx(max(v for _, v in cpu["series"][0]["pointlist"]))
