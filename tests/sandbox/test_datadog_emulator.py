"""The Datadog API emulator over HTTP (requests), every response checked against the public spec.

Pins what the real API does: keys required (403 without or with wrong ones), monitor
validation answered with 400 and a list of errors, events, downtimes, metric queries and
the usage endpoints with their own content type. The autouse `contract` fixture checks
each response the emulator gave during a test against the vendored spec (lib/opsbook/contracts/datadog/).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import requests
from opsbook.sandbox.datadog import running
from opsbook.sandbox.datadog.contract import ResponseLog, load_contract

TIMEOUT = 30


@pytest.fixture(scope="module")
def emulator_log(sandbox):
    found = running()
    assert found, "the Datadog emulator is not running in this process"
    log = ResponseLog()
    found[0].observers.append(log)
    yield log
    found[0].observers.remove(log)


@pytest.fixture(autouse=True)
def contract(emulator_log):
    """Every response given during the test conforms to the spec (and there was at least one)."""
    spec = load_contract()
    mark = len(emulator_log.responses)
    yield
    assert len(emulator_log.responses) > mark, "the test made no request to the emulator"
    problems = emulator_log.problems(spec, mark)
    assert not problems, "responses that break the Datadog OpenAPI spec:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="module")
def keys(sandbox, sandbox_params) -> dict[str, str]:
    """The keys the AWS seed wrote to SSM, read with boto3 like any SSM client would."""
    ssm = boto3.client("ssm", region_name=sandbox_params.region)
    dd = sandbox_params.datadog

    def value(name: str) -> str:
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]

    return {"DD-API-KEY": value(dd.api_key_ssm), "DD-APPLICATION-KEY": value(dd.app_key_ssm)}


@pytest.fixture(scope="module")
def base() -> str:
    return os.environ["DD_HOST"]


def get(base: str, path: str, headers: dict, **params) -> requests.Response:
    return requests.get(base + path, params=params, headers=headers, timeout=TIMEOUT)


# --- keys -------------------------------------------------------------------------------------


def test_requests_without_or_with_wrong_keys_get_403(base, keys) -> None:
    wrong = {"DD-API-KEY": "0" * 32, "DD-APPLICATION-KEY": keys["DD-APPLICATION-KEY"]}
    api_only = {"DD-API-KEY": keys["DD-API-KEY"]}
    for headers in ({}, wrong, api_only, {**keys, "DD-APPLICATION-KEY": "x"}):
        response = get(base, "/api/v1/monitor", headers)
        assert response.status_code == 403, headers.keys()
        assert response.json() == {"errors": ["Forbidden"]}
    assert get(base, "/api/v1/usage/hosts", {}, start_hr="2024-01-01T00").status_code == 403
    assert get(base, "/api/v1/monitor", keys).status_code == 200


def test_the_api_key_alone_validates_and_posts_events(base, keys) -> None:
    api_only = {"DD-API-KEY": keys["DD-API-KEY"]}
    assert get(base, "/api/v1/validate", api_only).json() == {"valid": True}
    assert get(base, "/api/v1/validate", {"DD-API-KEY": "nope"}).status_code == 403
    posted = requests.post(base + "/api/v1/events", json={"title": "contract", "text": "api key only"},
                           headers=api_only, timeout=TIMEOUT)
    assert posted.status_code == 202
    refused = requests.post(base + "/api/v1/events", json={"title": "x", "text": "y"}, timeout=TIMEOUT)
    assert refused.status_code == 403


# --- monitors ---------------------------------------------------------------------------------


def monitor_body(**changes) -> dict:
    body = {
        "name": "contract: rds cpu", "type": "query alert",
        "query": "avg(last_5m):avg:aws.rds.cpuutilization{dbinstanceidentifier:contract} > 90",
        "message": "test", "tags": ["team:contract"], "priority": 3,
        "options": {"thresholds": {"critical": 90, "warning": 80}, "notify_no_data": False},
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("changes, message", [
    ({"type": "nonsense alert"}, "Invalid monitor type"),
    ({"query": "avg(last_5m):avg:aws.rds.cpuutilization{*}"}, "parameter 'query' is invalid"),
    ({"query": "avg(last_5m):aws.rds.cpuutilization > 90"}, "parameter 'query' is invalid"),
    ({"options": {"thresholds": {"critical": 80}}}, "does not match that used in the query"),
    ({"options": {"thresholds": {"critical": 90, "warning": 95}}}, "must be less than the alert threshold"),
    ({"options": {}}, "Alert threshold (critical) is required"),
    ({"priority": 9}, "priority must be an integer between 1 and 5"),
])
def test_invalid_monitors_are_refused_with_400(base, keys, changes, message) -> None:
    for path in ("/api/v1/monitor", "/api/v1/monitor/validate"):
        response = requests.post(base + path, json=monitor_body(**changes), headers=keys, timeout=TIMEOUT)
        assert response.status_code == 400
        assert any(message in error for error in response.json()["errors"]), response.json()


def test_monitor_crud(base, keys) -> None:
    assert requests.post(base + "/api/v1/monitor/validate", json=monitor_body(), headers=keys,
                         timeout=TIMEOUT).json() == {}
    created = requests.post(base + "/api/v1/monitor", json=monitor_body(), headers=keys, timeout=TIMEOUT).json()
    path = f"/api/v1/monitor/{created['id']}"
    assert get(base, path, keys).json()["query"] == monitor_body()["query"]
    listed = get(base, "/api/v1/monitor", keys, monitor_tags="team:contract").json()
    assert [m["id"] for m in listed] == [created["id"]]

    changed = monitor_body(query=monitor_body()["query"].replace("> 90", "> 95"),
                           options={"thresholds": {"critical": 95}})
    updated = requests.put(base + path, json=changed, headers=keys, timeout=TIMEOUT)
    assert updated.status_code == 200 and updated.json()["options"]["thresholds"] == {"critical": 95}
    bad = requests.put(base + path, json={"options": {"thresholds": {"critical": 1}}}, headers=keys, timeout=TIMEOUT)
    assert bad.status_code == 400 and get(base, path, keys).json()["options"]["thresholds"]["critical"] == 95

    assert requests.delete(base + path, headers=keys, timeout=TIMEOUT).json() == {"deleted_monitor_id": created["id"]}
    assert get(base, path, keys).status_code == 404
    assert requests.delete(base + path, headers=keys, timeout=TIMEOUT).status_code == 404


# --- events and downtimes ---------------------------------------------------------------------


def test_events_posted_are_listed_by_window_and_tags(base, keys) -> None:
    now = int(time.time())
    tag = f"contract-run:{now}"
    body = {"title": "Deploy sms-sender 2.3.1", "text": "helm upgrade", "tags": [tag, "deploy"],
            "alert_type": "info", "date_happened": now - 60}
    event = requests.post(base + "/api/v1/events", json=body, headers=keys, timeout=TIMEOUT).json()["event"]
    listed = get(base, "/api/v1/events", keys, start=now - 120, end=now, tags=tag).json()["events"]
    assert [e["id"] for e in listed] == [event["id"]]
    assert get(base, "/api/v1/events", keys, start=now - 30, end=now, tags=tag).json()["events"] == []
    assert get(base, f"/api/v1/events/{event['id']}", keys).json()["event"]["title"] == body["title"]
    bad = requests.post(base + "/api/v1/events", json={"title": "x", "text": "y", "alert_type": "panic"},
                        headers=keys, timeout=TIMEOUT)
    assert bad.status_code == 400
    too_long = requests.post(base + "/api/v1/events", json={"title": "x", "text": "y" * 4001}, headers=keys,
                             timeout=TIMEOUT)
    assert too_long.status_code == 400 and "4000" in too_long.json()["errors"][0]
    assert get(base, "/api/v1/events", keys, start=now).status_code == 400


def test_autoscaler_events_follow_the_node_count(base, keys) -> None:
    end = int(time.time())
    start = end - 86400
    events = get(base, "/api/v1/events", keys, start=start, end=end, tags="kube_deployment:cluster-autoscaler")
    resizes = events.json()["events"]
    query = "sum:kubernetes_state.node.count{*} by {nodegroup}"
    series = get(base, "/api/v1/query", keys, **{"from": start, "to": end, "query": query + ".rollup(max, 600)"})
    # every change of a node group's count between 10-minute points has its event
    changes = sum(
        1 for s in series.json()["series"]
        for (_, before), (_, after) in zip(s["pointlist"], s["pointlist"][1:], strict=False) if before != after
    )
    # (an event at the window's first slot compares with the count before the window)
    assert changes > 0 and changes <= len(resizes) <= changes + len(series.json()["series"])


def test_downtimes_are_scheduled_and_cancelled(base, keys) -> None:
    monitor = requests.post(base + "/api/v1/monitor", json=monitor_body(name="contract: downtime"), headers=keys,
                            timeout=TIMEOUT).json()
    now = int(time.time())
    body = {"scope": ["*"], "monitor_id": monitor["id"], "start": now, "end": now + 600, "message": "drill"}
    downtime = requests.post(base + "/api/v1/downtime", json=body, headers=keys, timeout=TIMEOUT).json()
    assert downtime["active"] and downtime["monitor_id"] == monitor["id"]
    assert downtime["id"] in [d["id"] for d in get(base, "/api/v1/downtime", keys, current_only="true").json()]
    cancelled = requests.delete(base + f"/api/v1/downtime/{downtime['id']}", headers=keys, timeout=TIMEOUT)
    assert cancelled.status_code == 204
    assert get(base, f"/api/v1/downtime/{downtime['id']}", keys).json()["active"] is False
    assert downtime["id"] not in [d["id"] for d in get(base, "/api/v1/downtime", keys, current_only="true").json()]
    for bad in ({**body, "scope": []}, {**body, "end": now - 10}, {**body, "monitor_id": 1}):
        assert requests.post(base + "/api/v1/downtime", json=bad, headers=keys, timeout=TIMEOUT).status_code == 400
    requests.delete(base + f"/api/v1/monitor/{monitor['id']}", headers=keys, timeout=TIMEOUT)


# --- metrics ----------------------------------------------------------------------------------


def test_queries_are_deterministic_and_scoped_to_the_estate(base, keys, sandbox_params) -> None:
    end = int(time.time()) // 3600 * 3600
    window = {"from": end - 6 * 3600, "to": end}
    rds = sandbox_params.rds[0].identifier
    query = f"avg:aws.rds.cpuutilization{{dbinstanceidentifier:{rds}}}"
    first, second = (get(base, "/api/v1/query", keys, query=query, **window).json() for _ in range(2))
    assert first["series"] and first["series"] == second["series"]
    assert all(0 <= value <= 100 for _, value in first["series"][0]["pointlist"])
    other = get(base, "/api/v1/query", keys, query=query.replace(rds, "not-ours"), **window).json()
    assert other["status"] == "ok" and other["series"] == []
    assert get(base, "/api/v1/query", keys, query="avg:nonexistent.metric{*}", **window).json()["series"] == []
    assert get(base, "/api/v1/query", keys, query="cpu > 3", **window).status_code == 400
    assert get(base, "/api/v1/query", keys, query=query, **{"from": end, "to": end - 60}).status_code == 400


def test_node_count_stays_within_the_node_groups(base, keys, sandbox_params) -> None:
    end = int(time.time())
    query = f"sum:kubernetes_state.node.count{{kube_cluster_name:{sandbox_params.eks.cluster_name}}}"
    points = get(base, "/api/v1/query", keys, query=query, **{"from": end - 2 * 86400, "to": end}).json()
    values = [v for _, v in points["series"][0]["pointlist"]]
    groups = sandbox_params.eks.node_groups
    assert sum(g.desired_size for g in groups) <= min(values)
    assert max(values) <= sum(g.max_size for g in groups)
    assert max(values) > min(values), "the autoscaler should follow the daily SMS pattern"


def test_as_count_integrates_the_per_second_rate(base, keys, sandbox_params) -> None:
    day_end = int(time.time()) // 86400 * 86400
    window = {"from": day_end - 86400, "to": day_end}
    metric = f"sum:smsapi.sms.sent{{kube_cluster_name:{sandbox_params.eks.cluster_name}}}"
    rates = get(base, "/api/v1/query", keys, query=metric + ".as_rate().rollup(avg, 60)", **window).json()
    counts = get(base, "/api/v1/query", keys, query=metric + ".as_count().rollup(sum, 3600)", **window).json()
    per_second = rates["series"][0]
    by_minutes = sum(v * per_second["interval"] for _, v in per_second["pointlist"])
    by_hours = sum(v for _, v in counts["series"][0]["pointlist"])
    assert per_second["interval"] == 60 and len(counts["series"][0]["pointlist"]) == 24
    assert by_hours == pytest.approx(by_minutes, rel=0.01)


# --- usage ------------------------------------------------------------------------------------


def last_full_month() -> datetime:
    first = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1)


def test_usage_summary_agrees_with_the_hourly_usage(base, keys) -> None:
    month = last_full_month()
    following = (month + timedelta(days=32)).replace(day=1)
    hours = get(base, "/api/v1/usage/hosts", keys, start_hr=f"{month:%Y-%m-%dT%H}",
                end_hr=f"{following:%Y-%m-%dT%H}")
    assert hours.headers["content-type"].startswith("application/json;datetime-format=rfc3339")
    rows = hours.json()["usage"]
    assert len(rows) == (following - month).days * 24
    summary = get(base, "/api/v1/usage/summary", keys, start_month=f"{month:%Y-%m}").json()
    (usage,) = summary["usage"]
    counts = sorted((r["host_count"] for r in rows), reverse=True)
    assert usage["host_top99p"] == counts[len(counts) // 100]  # the top 1% of hours left out
    assert summary["host_top99p_sum"] == usage["host_top99p"]
    containers = [r["container_count"] for r in rows]
    assert usage["container_avg"] == round(sum(containers) / len(containers))
    metrics = get(base, "/api/v1/usage/top_avg_metrics", keys, month=f"{month:%Y-%m}").json()["usage"]
    assert usage["custom_ts_avg"] == sum(m["avg_metric_hour"] for m in metrics if m["metric_category"] == "custom")


def test_usage_pagination_and_bad_arguments(base, keys) -> None:
    month = f"{last_full_month():%Y-%m}"
    everything = get(base, "/api/v1/usage/top_avg_metrics", keys, month=month).json()
    total = everything["metadata"]["pagination"]["total_number_of_records"]
    pages, cursor = [], None
    while True:
        params = {"month": month, "limit": 4, **({"next_record_id": cursor} if cursor else {})}
        page = get(base, "/api/v1/usage/top_avg_metrics", keys, **params).json()
        pages.extend(page["usage"])
        cursor = page["metadata"]["pagination"]["next_record_id"]
        if not cursor:
            break
    assert pages == everything["usage"] and len(pages) == total
    assert get(base, "/api/v1/usage/top_avg_metrics", keys).status_code == 400
    assert get(base, "/api/v1/usage/top_avg_metrics", keys, month=month, day=f"{month}-02").status_code == 400
    assert get(base, "/api/v1/usage/hosts", keys, start_hr="yesterday").status_code == 400
    future = datetime.now(UTC) + timedelta(days=3)
    later = get(base, "/api/v1/usage/hosts", keys, start_hr=f"{future:%Y-%m-%dT%H}",
                end_hr=f"{future + timedelta(hours=5):%Y-%m-%dT%H}")
    assert later.json() == {"usage": []}  # hours that have not begun are not metered

