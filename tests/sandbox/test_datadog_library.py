"""lib/opsbook/datadog against the emulator: the client, monitors as code, volume, incidents,
drill annotations. The emulator's responses are checked against the spec (the fixtures of
test_datadog_emulator); expected values come from the raw API (requests), not the library.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from opsbook.clients import Env, new_run_id
from opsbook.datadog import annotations, connect, incident, monitors_as_code, volume
from opsbook.datadog.window import Window, month
from opsbook.drills.events import DrillEvent, emit, remove_listener
from opsbook.errors import CredentialsError, GuardError, OpsbookError

from tests.sandbox.test_datadog_emulator import TIMEOUT, base, contract, emulator_log, keys  # noqa: F401

MANAGED = ["managed-by:opsbook", "env:sandbox"]


@pytest.fixture()
def dd(sandbox_env):
    with connect(sandbox_env) as client:
        yield client


@pytest.fixture()
def applied(dd, sandbox_params):
    """The wanted monitors exist (apply is idempotent); returns their ids by name."""
    monitors_as_code.plan(dd, sandbox_params).apply(apply=True, confirm="")
    return {m["name"]: m["id"] for m in raw_monitors(dd.host, dd_keys(sandbox_params), MANAGED)}


def dd_keys(params) -> dict[str, str]:
    import boto3

    ssm = boto3.client("ssm", region_name=params.region)
    value = lambda name: ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]  # noqa: E731
    return {"DD-API-KEY": value(params.datadog.api_key_ssm), "DD-APPLICATION-KEY": value(params.datadog.app_key_ssm)}


def raw_monitors(host: str, headers: dict, tags: list[str]) -> list[dict]:
    response = requests.get(f"{host}/api/v1/monitor", params={"monitor_tags": ",".join(tags)}, headers=headers,
                            timeout=TIMEOUT)
    return response.json()


def raw_create(host: str, headers: dict, name: str, tags: list[str], threshold: float = 90) -> dict:
    body = {"name": name, "type": "query alert", "message": "made by hand", "tags": tags,
            "query": f"avg(last_5m):avg:aws.rds.cpuutilization{{*}} > {threshold:g}",
            "options": {"thresholds": {"critical": threshold}}}
    return requests.post(f"{host}/api/v1/monitor", json=body, headers=headers, timeout=TIMEOUT).json()


# --- the client ---------------------------------------------------------------------------------


def test_connect_uses_the_ssm_keys_and_never_shows_them(dd, sandbox_params, keys) -> None:  # noqa: F811
    assert dd.key_sources == {"api": f"ssm:{sandbox_params.datadog.api_key_ssm}",
                              "app": f"ssm:{sandbox_params.datadog.app_key_ssm}"}
    shown = repr(dd) + str(dd)
    assert all(value not in shown for value in keys.values())


def without_ssm_keys(params):
    datadog = params.datadog.model_copy(update={"api_key_ssm": None, "app_key_ssm": None})
    return params.model_copy(update={"datadog": datadog})


def test_wrong_or_missing_keys_fail_clearly(sandbox, sandbox_params, monkeypatch) -> None:
    env = Env(params=without_ssm_keys(sandbox_params), run_id=new_run_id())
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    with pytest.raises(CredentialsError, match=r"no Datadog api key .*\nwhat to do: .* export DD_API_KEY"):
        connect(env)
    monkeypatch.setenv("DD_API_KEY", "0" * 32)
    monkeypatch.setenv("DD_APP_KEY", "1" * 40)
    with pytest.raises(CredentialsError, match="refused the keys .* env:DD_API_KEY"):
        connect(env)
    missing = sandbox_params.datadog.model_copy(update={"api_key_ssm": "/smsapi/sandbox/datadog/no-such-key"})
    with pytest.raises(OpsbookError, match="no-such-key does not exist"):
        connect(Env(params=sandbox_params.model_copy(update={"datadog": missing}), run_id=new_run_id()))


# --- monitors as code -----------------------------------------------------------------------------


def test_apply_converges_and_leaves_other_monitors_alone(dd, sandbox_params) -> None:
    headers = dd_keys(sandbox_params)
    wanted_name = monitors_as_code.wanted(sandbox_params)[0]["name"]
    # a hand-made monitor with a wanted name, and another environment's managed monitor
    hand_made = raw_create(dd.host, headers, wanted_name, ["team:platform", "env:sandbox"], threshold=77)
    other_env = raw_create(dd.host, headers, "[dev-pl] RDS CPU high", ["managed-by:opsbook", "env:dev-pl"])
    try:
        plan = monitors_as_code.plan(dd, sandbox_params)
        plan.apply(apply=True)
        assert monitors_as_code.plan(dd, sandbox_params).empty, "a second plan after apply must be empty"
        for before in (hand_made, other_env):
            after = requests.get(f"{dd.host}/api/v1/monitor/{before['id']}", headers=headers, timeout=TIMEOUT).json()
            assert after == before, f"{before['name']} was touched"
        names = sorted(m["name"] for m in raw_monitors(dd.host, headers, MANAGED))
        assert names == sorted(w["name"] for w in monitors_as_code.wanted(sandbox_params))
    finally:
        for made in (hand_made, other_env):
            requests.delete(f"{dd.host}/api/v1/monitor/{made['id']}", headers=headers, timeout=TIMEOUT)


def test_drift_is_planned_with_datadogs_values_and_fixed(dd, sandbox_params, applied) -> None:
    headers = dd_keys(sandbox_params)
    wanted = next(w for w in monitors_as_code.wanted(sandbox_params) if w["warning"] is not None)
    monitor_id = applied[wanted["name"]]
    drifted_query = wanted["query"].rsplit(" ", 1)[0] + f" {wanted['critical'] * 2:g}"
    requests.put(f"{dd.host}/api/v1/monitor/{monitor_id}", headers=headers, timeout=TIMEOUT, json={
        "query": drifted_query, "tags": [*wanted["tags"], "edited:by-hand"],
        "options": {"thresholds": {"critical": wanted["critical"] * 2}},
    }).raise_for_status()
    plan = monitors_as_code.plan(dd, sandbox_params)
    rows = plan.table()
    changed = rows[rows["action"] == "update"].set_index("attribute")
    assert set(changed.index) == {"query", "critical", "warning", "tags"}
    assert (changed["resource"] == wanted["name"]).all()
    assert changed.loc["query", "current"] == drifted_query and changed.loc["query", "desired"] == wanted["query"]
    assert changed.loc["warning", "current"] == "—"  # the hand edit dropped the warning threshold

    untouched = monitors_as_code.apply(plan, apply=False)
    assert set(untouched["result"]) == {"not applied: plan only (set apply=True)"}
    still = requests.get(f"{dd.host}/api/v1/monitor/{monitor_id}", headers=headers, timeout=TIMEOUT).json()
    assert still["query"] == drifted_query

    done = monitors_as_code.apply(plan, apply=True)
    assert (done["result"] == "done").all() and monitors_as_code.plan(dd, sandbox_params).empty
    fixed = requests.get(f"{dd.host}/api/v1/monitor/{monitor_id}", headers=headers, timeout=TIMEOUT).json()
    assert fixed["query"] == wanted["query"] and "edited:by-hand" not in fixed["tags"]


def test_an_unwanted_managed_monitor_is_deleted_only_with_confirm(dd, sandbox_params, applied) -> None:
    headers = dd_keys(sandbox_params)
    leftover = raw_create(dd.host, headers, "[sandbox] retired monitor", MANAGED)
    plan = monitors_as_code.plan(dd, sandbox_params)
    assert [(c.resource, c.action) for c in plan.pending] == [("[sandbox] retired monitor", "delete")]
    with pytest.raises(GuardError, match="confirm='\\[sandbox\\] retired monitor'"):
        monitors_as_code.apply(plan, apply=True, confirm="retired")
    url = f"{dd.host}/api/v1/monitor/{leftover['id']}"
    assert requests.get(url, headers=headers, timeout=TIMEOUT).status_code == 200
    monitors_as_code.apply(plan, apply=True, confirm="[sandbox] retired monitor")
    assert requests.get(url, headers=headers, timeout=TIMEOUT).status_code == 404
    assert monitors_as_code.plan(dd, sandbox_params).empty


# --- SMS volume -------------------------------------------------------------------------------------


def test_monthly_sms_volume_is_the_rate_integrated_over_the_month(dd, sandbox_params) -> None:
    window = month("")
    headers = dd_keys(sandbox_params)
    metric = f"sum:smsapi.sms.sent{{kube_cluster_name:{sandbox_params.eks.cluster_name}}}.as_rate().rollup(avg, 600)"
    integrated, day = 0.0, window.start
    while day < window.end:  # per day: 144 points of 10 minutes
        following = day + timedelta(days=1)
        answer = requests.get(f"{dd.host}/api/v1/query", headers=headers, timeout=TIMEOUT, params={
            "from": int(day.timestamp()), "to": int(following.timestamp()), "query": metric}).json()
        integrated += sum(value * 600 for _, value in answer["series"][0]["pointlist"])
        day = following
    got = volume.monthly_sms_volume(dd, sandbox_params)
    assert got == pytest.approx(integrated, rel=0.01) and got > 0


# --- incident analysis -----------------------------------------------------------------------------


def test_the_latest_incident_is_found_with_its_monitors(dd, sandbox_params) -> None:
    headers = dd_keys(sandbox_params)
    now = datetime.now(UTC)
    start = int((now - timedelta(days=sandbox_params.datadog.incident_lookback_days)).timestamp())
    raw = requests.get(f"{dd.host}/api/v1/events", headers=headers, timeout=TIMEOUT,
                       params={"start": start, "end": int(now.timestamp()), "tags": "monitor"}).json()["events"]
    triggered = [e for e in raw if e["title"].startswith("[Triggered")]
    recovered = [e for e in raw if e["title"].startswith("[Recovered")]
    assert triggered, "the sandbox seeds one incident"

    window = incident.resolve_window(dd, sandbox_params, now=now)
    assert window.start.timestamp() <= min(e["date_happened"] for e in triggered)
    assert window.end.timestamp() >= max(e["date_happened"] for e in recovered)

    fired = incident.fired_monitors(dd, window)
    assert sorted(fired["monitor"]) == sorted({e["title"].split("] ", 1)[1] for e in triggered})
    # the RDS monitor fired, and RDS CPU in the window does cross that monitor's threshold
    rds_row = fired[fired["monitor"].str.contains("RDS")].iloc[0]
    monitor = requests.get(f"{dd.host}/api/v1/monitor/{rds_row['monitor_id']}", headers=headers,
                           timeout=TIMEOUT).json()
    metrics = incident.key_metrics(dd, sandbox_params, window)
    assert metrics["rds_cpu_percent"].max() > monitor["options"]["thresholds"]["critical"]
    assert list(metrics.columns) == ["sms_sent_per_second", "api_latency_seconds", "rabbitmq_queue_depth",
                                     "rds_cpu_percent", "node_count"]


def test_overlay_classifies_events(dd, sandbox_env) -> None:
    end = datetime.now(UTC)
    events = incident.overlay_events(sandbox_env, dd, Window(end - timedelta(days=1), end))
    kinds = set(events["kind"])
    assert "autoscaler" in kinds and "monitor" in kinds
    assert events["time"].is_monotonic_increasing


# --- drill annotations --------------------------------------------------------------------------------


def drill_events(host: str, headers: dict, run_id: str) -> list[dict]:
    now = int(time.time())
    return requests.get(f"{host}/api/v1/events", headers=headers, timeout=TIMEOUT, params={
        "start": now - 600, "end": now + 60, "tags": f"opsbook:run-id:{run_id}"}).json()["events"]


def test_failover_drill_is_annotated_and_its_monitors_silenced(dd, sandbox_params, applied) -> None:
    headers = dd_keys(sandbox_params)
    listener = annotations.install()
    run_id = new_run_id()
    try:
        emit(DrillEvent("start", "rds-failover", sandbox_params.env, run_id))
        (started,) = drill_events(dd.host, headers, run_id)
        assert started["title"] == "Drill started: rds-failover (sandbox)" and "drill:rds-failover" in started["tags"]
        tripped = {applied[w["name"]] for w in monitors_as_code.wanted(sandbox_params)
                   if "rds-failover" in w["tripped_by"]}
        active = requests.get(f"{dd.host}/api/v1/downtime", headers=headers, params={"current_only": "true"},
                              timeout=TIMEOUT).json()
        ours = [d for d in active if run_id in (d["message"] or "")]
        assert tripped and {d["monitor_id"] for d in ours} == tripped
        assert all(d["end"] - d["start"] == sandbox_params.datadog.drill_downtime_minutes * 60 for d in ours)

        emit(DrillEvent("end", "rds-failover", sandbox_params.env, run_id,
                        result={"verdict": "pass", "rto_s": 42.0, "rpo_s": 0.0, "reason": ""}))
        titles = [e["title"] for e in drill_events(dd.host, headers, run_id)]
        assert "Drill pass: rds-failover (sandbox)" in titles
        for downtime in ours:
            after = requests.get(f"{dd.host}/api/v1/downtime/{downtime['id']}", headers=headers,
                                 timeout=TIMEOUT).json()
            assert after["active"] is False and after["canceled"] is not None
    finally:
        remove_listener(listener)


def test_other_drills_are_annotated_without_downtimes(dd, sandbox_params) -> None:
    headers = dd_keys(sandbox_params)
    listener = annotations.install()
    run_id = new_run_id()
    try:
        before = requests.get(f"{dd.host}/api/v1/downtime", headers=headers, timeout=TIMEOUT).json()
        emit(DrillEvent("start", "rds-pitr", sandbox_params.env, run_id))
        emit(DrillEvent("step", "rds-pitr", sandbox_params.env, run_id, step={"name": "restore"}))
        emit(DrillEvent("end", "rds-pitr", sandbox_params.env, run_id, result={"verdict": "fail", "reason": "x"}))
        after = requests.get(f"{dd.host}/api/v1/downtime", headers=headers, timeout=TIMEOUT).json()
        assert len(after) == len(before)
        events = drill_events(dd.host, headers, run_id)
        assert sorted((e["title"], e["alert_type"]) for e in events) == [
            ("Drill fail: rds-pitr (sandbox)", "error"), ("Drill started: rds-pitr (sandbox)", "info")]
    finally:
        remove_listener(listener)



def test_daily_sms_adds_up_to_the_monthly_volume(dd, sandbox_env, sandbox_params) -> None:
    window = month("")
    daily = volume.daily_sms(sandbox_env, window.start.date(), window.end.date())
    assert len(daily) == (window.end - window.start).days
    assert list(daily.columns) == ["date", "region", "sms_count"] and set(daily["region"]) == {sandbox_params.region}
    assert daily["date"].iloc[0] == window.start.replace(tzinfo=None)
    assert daily["sms_count"].sum() == pytest.approx(volume.monthly_sms_volume(dd, sandbox_params), rel=0.01)
