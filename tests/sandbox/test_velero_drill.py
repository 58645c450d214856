"""The Velero restore drill and the backup audit against the sandbox (kube API, Velero server, moto,
and the real RabbitMQ and MariaDB), through the library as the runbooks call it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from opsbook.clients import Env, new_run_id
from opsbook.drills.framework import DrillFailed
from opsbook.drills.velero import VeleroRestoreDrill, drill_labels
from opsbook.drills.velero_api import BACKUP_TERMINAL, VeleroApi, backup_body
from opsbook.drills.velero_audit import audit
from opsbook.drills.velero_teardown import delete_backup
from opsbook.errors import OpsbookError, ParamsError, UsageError

FAULT = "sandbox.opsbook.io/fail-snapshot"
STEPS = ("preflight", "canary", "backup", "verify_backup", "restore", "verify", "teardown")


@pytest.fixture()
def env(sandbox, sandbox_params) -> Env:
    return Env(params=sandbox_params, run_id=new_run_id())


def velero(env: Env) -> VeleroApi:
    return VeleroApi(env.kube, env.params.velero.namespace)


def namespace_exists(env: Env, name: str) -> bool:
    try:
        client.CoreV1Api(env.kube).read_namespace(name)
        return True
    except ApiException as exc:
        assert exc.status == 404
        return False


def run_all(drill: VeleroRestoreDrill) -> None:
    for step in STEPS:
        getattr(drill, step)()


def test_rabbitmq_drill_passes_and_leaves_nothing_behind(env: Env) -> None:
    drill = VeleroRestoreDrill(env, namespace="rabbitmq")
    run_all(drill)
    result = drill.finish()
    assert result["verdict"] == "pass", result["reason"]
    checks = {c.name: c for c in drill.checks}
    for kind in ("vhosts", "queues", "exchanges", "bindings", "policies"):
        assert checks[f"rabbitmq {kind}"].ok
    assert checks["rabbitmq canary message"].ok and "is in" in checks["rabbitmq canary message"].detail
    assert checks["pods of rabbitmq Ready"].detail.startswith("3/3")
    assert result["rto_s"] is not None and result["rpo_s"] is not None
    restored = drill.facts["restored_volumes"]
    assert len(restored) == 3 and all(v["snapshot_id"].startswith("snap-") for v in restored)
    # teardown: the namespace, the restored volumes, the backup with its snapshots and files are gone
    ec2, s3 = env.aws("ec2"), env.aws("s3")
    assert not namespace_exists(env, drill.target)
    assert not ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [v["volume_id"] for v in restored]}])["Volumes"]
    assert velero(env).get("backups", drill.backup_name) is None
    assert not ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:velero.io/backup", "Values": [drill.backup_name]}])["Snapshots"]
    assert s3.list_objects_v2(Bucket=env.params.buckets.velero, Prefix=f"backups/{drill.backup_name}/")["KeyCount"] == 0


def test_database_drill_of_one_workload(env: Env) -> None:
    drill = VeleroRestoreDrill(env, namespace="sms-sender", scope="sms-sender-db", keep_backup=True)
    try:
        run_all(drill)
        result = drill.finish()
        assert result["verdict"] == "pass", result["reason"]
        assert {c.name for c in drill.checks} >= {"sms-sender-db canary row", "volume of data-sms-sender-db-0"}
        # the scope reached Velero as a label selector: the app's Deployment was not backed up
        backup = velero(env).get("backups", drill.backup_name)
        assert backup["spec"]["labelSelector"] == {"matchLabels": {"app.kubernetes.io/name": "sms-sender-db"}}
        kinds = {item.obj["kind"] for item in drill.stored.items}
        assert "StatefulSet" in kinds and "Deployment" not in kinds
    finally:
        delete_backup(velero(env), drill.backup_name)


def _backup_now(env: Env, namespace: str) -> str:
    """A backup of the namespace taken now (labelled like a drill's, so the sweeper could find it)."""
    name = f"pre-canary-{uuid.uuid4().hex[:8]}"
    api = velero(env)
    api.create("backups", backup_body(name, [namespace], drill_labels(env.run_id, namespace), "1h0m0s"))
    assert api.wait("backups", name, BACKUP_TERMINAL, 120)["status"]["phase"] == "Completed"
    return name


def test_drill_fails_with_the_reason_when_the_restored_broker_lacks_the_canary(env: Env) -> None:
    old = _backup_now(env, "rabbitmq")  # taken before the drill publishes its canary
    try:
        drill = VeleroRestoreDrill(env, namespace="rabbitmq", backup_name=old)
        run_all(drill)
        result = drill.finish()
        assert result["verdict"] == "fail"
        assert "rabbitmq canary message: the restored broker lacks canary" in result["reason"]
        assert f"backup {old} started" in result["reason"]
        assert result["rpo_s"] is None  # no canary in the restored data: RPO not measured
        with pytest.raises(DrillFailed, match="lacks canary"):
            drill.raise_if_failed()
        # a given backup is never deleted by the drill; its namespace is
        assert velero(env).get("backups", old) is not None
        assert not namespace_exists(env, drill.target)
    finally:
        delete_backup(velero(env), old)


def test_drill_fails_with_the_reason_when_the_backup_ends_partially_failed(env: Env) -> None:
    core = client.CoreV1Api(env.kube)
    core.patch_namespaced_persistent_volume_claim("data-rabbitmq-2", "rabbitmq",
                                                  {"metadata": {"annotations": {FAULT: "EBS said no"}}})
    try:
        drill = VeleroRestoreDrill(env, namespace="rabbitmq")
        drill.preflight()
        drill.canary()
        with pytest.raises(OpsbookError) as exc:
            drill.backup()
    finally:
        core.patch_namespaced_persistent_volume_claim("data-rabbitmq-2", "rabbitmq",
                                                      {"metadata": {"annotations": {FAULT: None}}})
    message = str(exc.value)
    assert f"backup {drill.backup_name} ended PartiallyFailed" in message
    assert "1 of 3 volume snapshots failed" in message
    result = drill.result
    assert result["verdict"] == "fail" and "PartiallyFailed" in result["reason"]
    assert [s["name"] for s in result["steps"]] == ["preflight", "canary", "backup"] and not result["steps"][-1]["ok"]
    # the failed step's cleanup ran: Velero deleted the drill's backup and its snapshots
    assert velero(env).get("backups", drill.backup_name) is None
    assert not env.aws("ec2").describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:velero.io/backup", "Values": [drill.backup_name]}])["Snapshots"]


def test_bad_input_is_refused_before_anything_changes(env: Env) -> None:
    with pytest.raises(ParamsError, match="no namespace 'nope'.*known: rabbitmq"):
        VeleroRestoreDrill(env, namespace="nope")
    with pytest.raises(UsageError, match="scope: expected 'all' or a stateful workload of billing"):
        VeleroRestoreDrill(env, namespace="billing", scope="rabbitmq")
    with pytest.raises(UsageError, match="timeout_minutes"):
        VeleroRestoreDrill(env, namespace="billing", timeout_minutes=-1)


def test_preflight_stops_on_an_unavailable_storage_location(env: Env) -> None:
    api = velero(env)
    location = f"preflight-{uuid.uuid4().hex[:6]}"
    api.create("backupstoragelocations", {
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "metadata": {"name": location},
        "spec": {"provider": "aws", "objectStorage": {"bucket": f"{location}-missing"}, "config": {"region": "eu-central-1"}}})
    try:
        params = env.params.model_copy(update={"velero": env.params.velero.model_copy(update={"storage_location": location})})
        drill = VeleroRestoreDrill(Env(params=params, run_id=env.run_id), namespace="billing")
        deadline = time.monotonic() + 30
        while (api.get("backupstoragelocations", location).get("status") or {}).get("phase") != "Unavailable":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with pytest.raises(OpsbookError, match=f"preflight failed, nothing was changed: storage location Available: {location}: Unavailable"):
            drill.preflight()
        assert api.get("backups", drill.backup_name) is None and not namespace_exists(env, drill.target)
        # the audit of that environment fails on its default location
        report = audit(Env(params=params, run_id=env.run_id))
        row = report.table("storage").set_index("item").loc[location]
        assert row["status"] == "fail" and "Unavailable" in row["detail"]
    finally:
        api.delete("backupstoragelocations", location)


def test_audit_passes_on_the_sandbox(env: Env) -> None:
    report = audit(env)
    assert report.ok, report.verdict()
    stateful = {n.name for n in env.params.namespaces if n.stateful}
    assert set(report.table("schedules")["item"]) == stateful
    assert set(report.table("backups")["item"]) >= stateful
    assert set(report.table("storage")["status"]) == {"pass"}
    assert not report.backups.empty


def test_audit_fails_when_the_last_backup_is_older_than_the_rpo_target(env: Env) -> None:
    later = datetime.now(UTC) + timedelta(minutes=env.params.velero.rpo_minutes + 60)
    report = audit(env, now=later)
    failed = report.table("backups")
    failed = failed[failed["status"] == "fail"]
    assert set(failed["item"]) == {n.name for n in env.params.namespaces if n.stateful}
    assert all("older than the RPO target" in d for d in failed["detail"])


def test_audit_fails_when_the_schedule_runs_less_often_than_the_rpo(env: Env) -> None:
    params = env.params.model_copy(update={"velero": env.params.velero.model_copy(update={"rpo_minutes": 60})})
    report = audit(Env(params=params, run_id=env.run_id))
    schedules = report.table("schedules")
    assert set(schedules["status"]) == {"fail"}
    assert all("longer than the RPO target" in d for d in schedules["detail"])


def test_teardown_refuses_what_another_run_made(env: Env) -> None:
    from opsbook.drills.velero_teardown import delete_drill_namespace
    from opsbook.errors import GuardError

    name = f"billing-drill-other-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(env.kube)
    core.create_namespace({"metadata": {"name": name, "labels": drill_labels("someone-else", "billing")}})
    try:
        with pytest.raises(GuardError, match="not this run's"):
            delete_drill_namespace(env.kube, env.aws("ec2"), name, run_id=env.run_id)
        assert namespace_exists(env, name)
        old = _backup_now(env, "billing")  # labelled with this run: another run may not delete it
        with pytest.raises(GuardError, match="not this run's"):
            delete_backup(velero(env), old, run_id="someone-else")
        assert velero(env).get("backups", old) is not None
        delete_backup(velero(env), old, run_id=env.run_id)
    finally:
        delete_drill_namespace(env.kube, env.aws("ec2"), name, run_id="someone-else")
    assert not namespace_exists(env, name)
