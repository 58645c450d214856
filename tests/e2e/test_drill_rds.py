"""The RDS drills end to end on the sandbox, in process: pass, fail for real reasons, clean up.

Faults come in through real mechanisms: botocore's `before-call` event on the drill's own
client answers RestoreDBInstanceFromDBSnapshot with InsufficientDBInstanceCapacity, as
AWS would; nothing is monkeypatched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pymysql
import pytest
from opsbook.dataplane import mysql
from opsbook.drills import on_drill_event, rds_api, remove_listener
from opsbook.drills.rds import FailoverDrill, PointInTimeDrill, SnapshotRestoreDrill
from opsbook.drills.sweeper import sweep
from opsbook.errors import GuardError, OpsbookError, UsageError
from opsbook.guard import aws_tags, is_owned, ownership_tags
from opsbook.results import recorded

FAST = {"poll_seconds": 0.2, "timeout_minutes": 2}


def drill_resources(env) -> list[str]:
    """Every instance and snapshot tagged with this env's run id (what a drill left behind)."""
    rds = env.aws("rds")
    found = [i["DBInstanceIdentifier"] for i in rds_api.list_instances(rds)
             if rds_api.tags_of(i).get("opsbook:run-id") == env.run_id]
    found += [s["DBSnapshotIdentifier"] for s in rds_api.list_snapshots(rds)
              if rds_api.tags_of(s).get("opsbook:run-id") == env.run_id]
    return found


def source_conn(env):
    spec = env.params.rds[0]
    described = rds_api.describe_instance(env.aws("rds"), spec.identifier)
    target = mysql.target_for(env, spec, described)
    return pymysql.connect(host=target.host, port=target.port, user=target.user,
                           password=target.password.reveal(), database=target.database, autocommit=True)


def test_snapshot_restore_drill_passes_and_leaves_nothing(sandbox_env) -> None:
    events: list[str] = []
    listener = on_drill_event(lambda e: events.append(e.kind if e.kind != "step" else e.step["name"]))
    try:
        drill = SnapshotRestoreDrill(sandbox_env, **FAST)
        drill.preflight()
        drill.write_canary()
        drill.snapshot()
        assert set(drill_resources(sandbox_env)) == {drill.snapshot_id}
        drill.restore()
        assert set(drill_resources(sandbox_env)) == {drill.snapshot_id, drill.restored_id}
        verified = drill.verify()
        drill.teardown()
        result = drill.finish()
    finally:
        remove_listener(listener)
    assert result["verdict"] == "pass", result["reason"]
    assert list(verified["match"]) == [True] * len(sandbox_env.params.rds[0].tables)
    assert 0 <= result["rpo_s"] <= 60 and result["rto_s"] > 0
    assert [s["name"] for s in result["steps"]] == ["preflight", "canary", "snapshot", "restore", "verify", "teardown"]
    assert events == ["start", "preflight", "canary", "snapshot", "restore", "verify", "teardown", "end"]
    assert recorded()["drill"]["verdict"] == "pass"
    assert drill_resources(sandbox_env) == []


def test_a_snapshot_taken_before_a_write_fails_the_drill(sandbox_env) -> None:
    rds = sandbox_env.aws("rds")
    spec = sandbox_env.params.rds[0]
    old = f"{spec.identifier}-older-{sandbox_env.run_id}"
    rds.create_db_snapshot(DBSnapshotIdentifier=old, DBInstanceIdentifier=spec.identifier,
                           Tags=aws_tags(ownership_tags(sandbox_env.run_id, "drill")))
    try:
        with source_conn(sandbox_env) as conn, conn.cursor() as cur:  # a write the old snapshot cannot have
            cur.execute("INSERT INTO messages (customer_id, phone, body, status, created_at) "
                        "VALUES (1, '+48500000000', 'after the snapshot', 'queued', UTC_TIMESTAMP(6))")
        drill = SnapshotRestoreDrill(sandbox_env, snapshot_id=old, **FAST)
        drill.preflight()
        drill.write_canary()
        drill.snapshot()
        drill.restore()
        table = drill.verify().set_index("table")
        drill.teardown()
        result = drill.finish()
        assert result["verdict"] == "fail"
        assert "canary restored" in result["reason"] and "missing from the restored data" in result["reason"]
        assert "table messages" in result["reason"] and not table.loc["messages", "match"]
        assert table.loc["messages", "restored rows"] == table.loc["messages", "source rows"] - 1
        with pytest.raises(OpsbookError, match="drill failed"):
            drill.raise_if_failed()
        # the given snapshot was not ours to delete; the restored instance is gone
        assert drill_resources(sandbox_env) == [old]
    finally:
        rds.delete_db_snapshot(DBSnapshotIdentifier=old)


def test_an_aws_error_mid_drill_fails_it_with_the_reason_and_cleans_up(sandbox_env) -> None:
    rds = sandbox_env.aws("rds")
    calls: list[str] = []

    class Response:
        status_code = 400

    def no_capacity(**kwargs):
        calls.append("restore")
        return Response(), {"Error": {"Code": "InsufficientDBInstanceCapacity",
                                      "Message": "Cannot create a DB instance of class db.r6g.large in eu-central-1a"},
                            "ResponseMetadata": {"HTTPStatusCode": 400}}

    event = "before-call.rds.RestoreDBInstanceFromDBSnapshot"
    rds.meta.events.register(event, no_capacity)
    try:
        drill = SnapshotRestoreDrill(sandbox_env, **FAST)
        drill.preflight()
        drill.write_canary()
        drill.snapshot()
        with pytest.raises(OpsbookError) as caught:
            drill.restore()
    finally:
        rds.meta.events.unregister(event, no_capacity)
    message = str(caught.value)
    assert calls == ["restore"]
    assert "step 'restore' failed" in message and "InsufficientDBInstanceCapacity" in message
    assert f"Cleanup done: delete DB snapshot {drill.snapshot_id}" in message
    result = recorded()["drill"]
    assert result["verdict"] == "fail" and "InsufficientDBInstanceCapacity" in result["reason"]
    assert drill_resources(sandbox_env) == []


def test_pitr_drill_passes_before_rows_back_after_rows_not(sandbox_env) -> None:
    drill = PointInTimeDrill(sandbox_env, **FAST)
    drill.preflight()
    drill.write_canary("before")
    drill.choose_time()
    drill.write_after()
    drill.restore()
    rows = drill.verify()
    drill.teardown()
    result = drill.finish()
    assert result["verdict"] == "pass", result["reason"]
    mine = rows[rows["run_id"] == sandbox_env.run_id].set_index("label")
    assert mine.loc["before", "restored"] and not mine.loc["after", "restored"]
    assert 0 <= result["rpo_s"] <= 10
    assert drill_resources(sandbox_env) == []


@pytest.mark.parametrize("when", ["past", "future"])
def test_pitr_outside_the_window_is_refused_before_any_restore_call(sandbox_env, when) -> None:
    rds = sandbox_env.aws("rds")
    calls: list[str] = []

    def count(**kwargs):
        calls.append("restore")

    rds.meta.events.register("before-call.rds.RestoreDBInstanceToPointInTime", count)
    source = rds_api.describe_instance(rds, sandbox_env.params.rds[0].identifier)
    moment = (source["InstanceCreateTime"] - timedelta(days=1) if when == "past"
              else datetime.now(UTC) + timedelta(hours=1))
    try:
        drill = PointInTimeDrill(sandbox_env, restore_time=moment.isoformat(), **FAST)
        with pytest.raises(UsageError) as refused:
            drill.preflight()
    finally:
        rds.meta.events.unregister("before-call.rds.RestoreDBInstanceToPointInTime", count)
    message = str(refused.value)
    earliest = source["InstanceCreateTime"].astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    assert "outside the restorable window" in message and earliest in message
    assert calls == [] and drill_resources(sandbox_env) == []
    assert recorded()["drill"]["verdict"] == "fail"


def test_bad_drill_parameters_are_refused_before_anything(sandbox_env) -> None:
    with pytest.raises(UsageError, match="minutes_ago must be >= 0"):
        PointInTimeDrill(sandbox_env, minutes_ago=-5)
    with pytest.raises(UsageError, match="expected an ISO 8601 time"):
        PointInTimeDrill(sandbox_env, restore_time="last tuesday")
    with pytest.raises(OpsbookError, match="no RDS instance 'nope'"):
        SnapshotRestoreDrill(sandbox_env, instance="nope")


def test_failover_drill_measures_downtime_and_the_az_change(sandbox_env) -> None:
    before = rds_api.describe_instance(sandbox_env.aws("rds"), sandbox_env.params.rds[0].identifier)
    drill = FailoverDrill(sandbox_env, poll_seconds=0.2, timeout_minutes=2, observe_s=4)
    drill.preflight()
    drill.write_canary()
    probes = drill.failover()
    verified = drill.verify()
    result = drill.finish()
    assert result["verdict"] == "pass", result["reason"]
    assert verified.loc[0, "AZ before"] == before["AvailabilityZone"]
    assert verified.loc[0, "AZ after"] == before["SecondaryAvailabilityZone"]
    failed = probes[~probes["ok"]]
    assert len(failed) >= 1
    # downtime is from the first failed probe to the first success after the last one
    back = probes[(probes["at"] > failed["at"].max()) & probes["ok"]]["at"].min()
    expected = (back - failed["at"].min()).total_seconds()
    assert result["rto_s"] == pytest.approx(expected, abs=0.01) and result["rpo_s"] == 0.0


def _instance(rds, name: str, tags: dict[str, str]) -> None:
    rds.create_db_instance(DBInstanceIdentifier=name, Engine="mysql", DBInstanceClass="db.t4g.micro",
                           AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="not-used-1234",
                           Tags=aws_tags(tags))


def test_the_sweeper_deletes_only_tagged_drill_resources_and_only_when_confirmed(sandbox_env) -> None:
    rds = sandbox_env.aws("rds")
    run = sandbox_env.run_id
    old = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    tagged = f"sweep-restore-{run}"
    untagged = f"smsapi-sandbox-main-restore-{run}x"  # looks like a drill's, carries no tags
    other_purpose = f"sweep-other-{run}"
    young = f"sweep-young-{run}"
    _instance(rds, tagged, ownership_tags(run, "drill", created_at=old))
    _instance(rds, untagged, {"Name": untagged})
    _instance(rds, other_purpose, ownership_tags(run, "sandbox-seed", created_at=old))
    _instance(rds, young, ownership_tags(run, "drill"))
    snap = f"sweep-snap-{run}"
    rds.create_db_snapshot(DBSnapshotIdentifier=snap, DBInstanceIdentifier=tagged,
                           Tags=aws_tags(ownership_tags(run, "drill", created_at=old)))
    try:
        plan = sweep(sandbox_env, "2h").set_index("resource")
        assert plan.loc[tagged, "action"] == "delete" and plan.loc[snap, "action"] == "delete"
        assert plan.loc[young, "action"] == "no-op"
        assert untagged not in plan.index and other_purpose not in plan.index

        for wrong in ["", tagged, f"{tagged},{snap}x"]:
            with pytest.raises(GuardError, match="nothing was changed"):
                sweep(sandbox_env, "2h", apply=True, confirm=wrong)
            assert rds_api.describe_instance(rds, tagged) and rds_api.describe_snapshot(rds, snap)

        done = sweep(sandbox_env, "2h", apply=True, confirm=f"{tagged},{snap}").set_index("resource")
        assert done.loc[tagged, "action"] == "deleted" and done.loc[snap, "action"] == "deleted"
        assert rds_api.describe_instance(rds, tagged) is None and rds_api.describe_snapshot(rds, snap) is None
        for survivor in (untagged, other_purpose, young):
            assert rds_api.describe_instance(rds, survivor) is not None
        assert not is_owned(rds_api.tags_of(rds_api.describe_instance(rds, untagged)))
    finally:
        for name in (tagged, untagged, other_purpose, young):
            rds_api.delete_instance(rds, name)
        rds_api.delete_snapshot(rds, snap)


FORWARDER = '''
import socket, sys, threading
host, port, local, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
server = socket.create_server(("127.0.0.1", local))
def pipe(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        b.close()
while True:
    client, _ = server.accept()
    open(log, "a").write(f"{host}:{port}\\n")
    upstream = socket.create_connection((host, port))
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
'''


def test_restored_instances_are_reached_through_the_tunnel_command_when_params_set_one(sandbox_env, tmp_path) -> None:
    import sys

    from opsbook.clients import Env
    from opsbook.dataplane.tunnel import close_all

    script, log = tmp_path / "forward.py", tmp_path / "tunnel.log"
    script.write_text(FORWARDER)
    params = sandbox_env.params
    spec = params.rds[0].model_copy(update={"tunnel_command": f"{sys.executable} {script} {{host}} {{port}} {{local_port}} {log}"})
    env = Env(params=params.model_copy(update={"rds": [spec, *params.rds[1:]]}), run_id=sandbox_env.run_id)
    try:
        drill = SnapshotRestoreDrill(env, **FAST)
        drill.preflight()
        drill.write_canary()
        drill.snapshot()
        drill.restore()
        restored = rds_api.describe_instance(env.aws("rds"), drill.restored_id)["Endpoint"]
        drill.verify()
        drill.teardown()
        result = drill.finish()
    finally:
        close_all()
    assert result["verdict"] == "pass", result["reason"]
    # the restored instance was reached through the tunnel (the source too: the sandbox sets no endpoint_override)
    source = rds_api.describe_instance(env.aws("rds"), spec.identifier)["Endpoint"]
    assert set(log.read_text().split()) == {f"{restored['Address']}:{restored['Port']}",
                                            f"{source['Address']}:{source['Port']}"}


def test_cleanup_reports_a_kind_it_cannot_list_and_still_plans_the_rest(sandbox, tmp_path) -> None:
    """No reachable Kubernetes: the RDS part still plans; the CLI names what it could not list."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    opsbook = str(Path(sys.executable).with_name("opsbook"))
    out = subprocess.run([opsbook, "cleanup", "--env", "sandbox", "--older-than", "0s"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr  # an access problem, said once
    message = " ".join(out.stderr.split())
    unreadable = message.split("could not list", 1)[1]
    assert "namespace" in unreadable and "rds" not in unreadable  # Kubernetes failed, RDS was listed
