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
PENDING = "sandbox.opsbook.io/snapshot-pending-seconds"
SNAPSHOT_ERROR = "sandbox.opsbook.io/snapshot-error"
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
    core = client.CoreV1Api(env.kube)
    # an Event in the source namespace, as any component records one: backed up, never restored
    event = core.create_namespaced_event("rabbitmq", {
        "metadata": {"generateName": "rabbitmq-0."}, "type": "Normal", "reason": "Tested",
        "message": "an event for the drill to leave out", "source": {"component": "drill-test"},
        "involvedObject": {"kind": "Pod", "namespace": "rabbitmq", "name": "rabbitmq-0"}}).metadata.name
    drill = VeleroRestoreDrill(env)  # no namespace: the first one params gives stateful workloads
    assert drill.namespace == next(n.name for n in env.params.namespaces if n.stateful) == "rabbitmq"
    run_all(drill)
    result = drill.finish()
    assert result["verdict"] == "pass", result["reason"]
    # the seeded maintenance Job, finished, and its Succeeded pod are in the backup, not restored, listed
    # with Velero's reason and not counted missing; so are the namespace's events
    finished = {f"Pod/{p.metadata.name}": f"a finished pod ({p.status.phase})"
                for p in core.list_namespaced_pod("rabbitmq").items if p.status.phase in ("Succeeded", "Failed")}
    finished |= {f"Job/{j.metadata.name}": f"a finished Job (completed {j.status.completion_time:%Y-%m-%dT%H:%M:%SZ})"
                 for j in client.BatchV1Api(env.kube).list_namespaced_job("rabbitmq").items if j.status.completion_time}
    assert any(k.startswith("Job/") for k in finished) and any(k.startswith("Pod/") for k in finished)
    backed_up = {f"{i.obj['kind']}/{i.name}" for i in drill.stored.items if i.namespace == "rabbitmq"}
    assert finished.keys() <= backed_up and f"Event/{event}" in backed_up
    skipped = {s["object"]: s["reason"] for s in result["facts"]["not_restored"]}
    assert {k: skipped.get(k) for k in finished} == finished
    assert skipped[f"Event/{event}"] == "Velero never restores events"
    checked = {c.name.removeprefix("restored ") for c in drill.checks if c.name.startswith("restored ")}
    assert not checked & skipped.keys() and checked == backed_up - skipped.keys()
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


def _drill_until_verify_backup(env: Env, namespace: str, **kwargs) -> tuple[VeleroRestoreDrill, OpsbookError]:
    drill = VeleroRestoreDrill(env, namespace=namespace, **kwargs)
    drill.preflight()
    drill.canary()
    drill.backup()
    with pytest.raises(OpsbookError) as exc:
        drill.verify_backup()
    return drill, exc.value


def _annotated(env: Env, namespace: str, claim: str, annotations: dict):
    core = client.CoreV1Api(env.kube)
    core.patch_namespaced_persistent_volume_claim(claim, namespace, {"metadata": {"annotations": annotations}})
    return lambda: core.patch_namespaced_persistent_volume_claim(
        claim, namespace, {"metadata": {"annotations": dict.fromkeys(annotations)}})


def test_drill_fails_naming_a_snapshot_still_pending_past_the_timeout(env: Env) -> None:
    undo = _annotated(env, "billing", "data-billing-db-0", {PENDING: "600"})  # EBS takes ten minutes
    try:
        drill, error = _drill_until_verify_backup(env, "billing", snapshot_timeout_minutes=0.02)
    finally:
        undo()
    [snap] = drill.stored.snapshots
    snap_id, pv = snap["status"]["providerSnapshotID"], snap["spec"]["persistentVolumeName"]
    assert drill.backup_obj["status"]["phase"] == "Completed"  # Velero did not wait either
    assert f"EBS snapshot of {pv}: {snap_id} pending" in str(error) and "(timeout)" in str(error)
    assert drill.result["verdict"] == "fail" and snap_id in drill.result["reason"]
    # cleanup deleted the backup with its (still pending) snapshot
    assert velero(env).get("backups", drill.backup_name) is None
    assert not env.aws("ec2").describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "snapshot-id", "Values": [snap_id]}])["Snapshots"]


def test_drill_fails_naming_a_snapshot_in_error(env: Env) -> None:
    undo = _annotated(env, "billing", "data-billing-db-0", {SNAPSHOT_ERROR: "yes"})
    try:
        drill, error = _drill_until_verify_backup(env, "billing")
    finally:
        undo()
    [snap] = drill.stored.snapshots
    assert f"{snap['status']['providerSnapshotID']} error" in str(error) and "EBS could not complete it" in str(error)


def test_drill_fails_on_a_backup_without_volume_data(env: Env) -> None:
    name = f"no-volumes-{uuid.uuid4().hex[:8]}"
    api = velero(env)
    api.create("backups", backup_body(name, ["billing"], drill_labels(env.run_id, "billing"), "1h0m0s",
                                      snapshot_volumes=False))
    try:
        assert api.wait("backups", name, BACKUP_TERMINAL, 120)["status"]["phase"] == "Completed"
        drill, error = _drill_until_verify_backup(env, "billing", backup_name=name)
        claims = {p.metadata.name: p.spec.volume_name
                  for p in client.CoreV1Api(env.kube).list_namespaced_persistent_volume_claim("billing").items}
        for claim, pv in claims.items():
            assert (f"volume data of {claim}: PV {pv} has no completed snapshot: Velero skipped it: "
                    "not satisfy the criteria for VolumePolicy or the legacy snapshot way") in str(error)
        assert velero(env).get("backups", name) is not None  # a given backup is never deleted
    finally:
        delete_backup(api, name)


def test_bad_input_is_refused_before_anything_changes(env: Env) -> None:
    with pytest.raises(ParamsError, match="no namespace 'nope'.*known: rabbitmq"):
        VeleroRestoreDrill(env, namespace="nope")
    with pytest.raises(UsageError, match="scope: expected 'all' or a stateful workload of billing"):
        VeleroRestoreDrill(env, namespace="billing", scope="rabbitmq")
    with pytest.raises(UsageError, match="timeout_minutes"):
        VeleroRestoreDrill(env, namespace="billing", timeout_minutes=-1)
    with pytest.raises(UsageError, match="snapshot_timeout_minutes must be >= 0"):
        VeleroRestoreDrill(env, namespace="billing", snapshot_timeout_minutes=-1)


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


def _with_namespace(env: Env, name: str) -> Env:
    """The environment with one more stateful namespace in its params (the audit's subject)."""
    from opsbook.params import Namespace, StatefulWorkload

    extra = Namespace(name=name, team="qa", stateful=[StatefulWorkload(name=f"{name}-db", kind="mysql")])
    return Env(params=env.params.model_copy(update={"namespaces": [*env.params.namespaces, extra]}), run_id=env.run_id)


def _new_schedule(env: Env, namespace: str, cron: str) -> dict:
    client.CoreV1Api(env.kube).create_namespace({"metadata": {"name": namespace}})
    return velero(env).create("schedules", {
        "apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": namespace},
        "spec": {"schedule": cron, "template": {"includedNamespaces": [namespace], "ttl": "1h0m0s"}}})


def _drop_schedule(env: Env, namespace: str) -> None:
    velero(env).delete("schedules", namespace)
    client.CoreV1Api(env.kube).delete_namespace(namespace)


def _row(report, area: str, item: str) -> dict:
    table = report.table(area).set_index("item")
    return table.loc[item].to_dict()


def test_audit_says_a_schedule_that_has_not_run_yet_is_not_run_yet(env: Env) -> None:
    namespace = f"audit-new-{uuid.uuid4().hex[:6]}"
    schedule = _new_schedule(env, namespace, "0 3 * * *")
    try:
        created = datetime.fromisoformat(schedule["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        first = created.replace(hour=3, minute=0, second=0)
        first = first if first > created else first + timedelta(days=1)
        report = audit(_with_namespace(env, namespace), now=created)
        assert _row(report, "schedules", namespace)["status"] == "pass"
        backups = _row(report, "backups", namespace)
        assert backups["status"] == "warn"
        assert backups["detail"] == (f"not run yet: Schedule {namespace} was created 0m ago and first runs at "
                                     f"{first:%Y-%m-%dT%H:%M:%SZ}")
        assert report.ok  # a warning: the Schedule is younger than the RPO target
        assert not velero(env).list("backups", label_selector=f"velero.io/schedule-name={namespace}")
        # once that time has passed without a backup, it is no longer "not run yet" but a failure
        later = audit(_with_namespace(env, namespace), now=first + timedelta(minutes=5))
        assert _row(later, "backups", namespace)["status"] == "fail"
        assert "no usable backup of the namespace (0 in all)" in _row(later, "backups", namespace)["detail"]
    finally:
        _drop_schedule(env, namespace)


def test_audit_reads_a_cron_tz_schedule_in_its_zone(env: Env) -> None:
    from zoneinfo import ZoneInfo

    namespace = f"audit-tz-{uuid.uuid4().hex[:6]}"
    schedule = _new_schedule(env, namespace, "CRON_TZ=Europe/Warsaw 0 3 * * *")
    try:
        created = datetime.fromisoformat(schedule["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        local = created.astimezone(ZoneInfo("Europe/Warsaw"))
        first = local.replace(hour=3, minute=0, second=0)
        first = (first if first > local else (local + timedelta(days=1)).replace(hour=3, minute=0, second=0))
        report = audit(_with_namespace(env, namespace))
        row = _row(report, "schedules", namespace)
        assert row["status"] == "pass" and "in Europe/Warsaw" in row["detail"]
        assert _row(report, "backups", namespace)["detail"].endswith(
            f"first runs at {first.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}")
        # against a 12-hour RPO target a daily run, wherever it is, is too rare
        wide = _with_namespace(env, namespace).params
        strict = Env(params=wide.model_copy(update={"velero": wide.velero.model_copy(update={"rpo_minutes": 720})}),
                     run_id=env.run_id)
        assert "longer than the RPO target 12h" in _row(audit(strict), "schedules", namespace)["detail"]
    finally:
        _drop_schedule(env, namespace)


def test_audit_counts_a_partially_failed_backup_only_where_its_errors_do_not_reach(env: Env) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    api = velero(env)
    name = f"audit-partial-{uuid.uuid4().hex[:6]}"
    api.create("backups", backup_body(name, ["billing", ghost], {}, "1h0m0s"))
    try:
        assert api.wait("backups", name, BACKUP_TERMINAL, 120)["status"]["phase"] == "PartiallyFailed"
        report = audit(_with_namespace(env, ghost))
        billing = _row(report, "backups", "billing")
        assert billing["status"] == "pass" and f"{name} (PartiallyFailed, for other namespaces)" in billing["detail"]
        missing = _row(report, "backups", ghost)
        assert missing["status"] == "fail" and f"fail to get the namespace {ghost}" in missing["detail"]
    finally:
        delete_backup(api, name)


def test_claims_are_polled_until_bound(env: Env) -> None:
    """A claim pre-bound to a volume, as Velero restores one, is bound by the PV controller in its own time."""
    from opsbook.drills.velero_restored import wait_claims_bound

    core = client.CoreV1Api(env.kube)
    namespace = f"bind-later-{uuid.uuid4().hex[:6]}"
    volume = f"{namespace}-pv"
    core.create_namespace({"metadata": {"name": namespace}})
    spec = {"accessModes": ["ReadWriteOnce"], "storageClassName": ""}
    try:
        core.create_persistent_volume({"metadata": {"name": volume}, "spec": {
            **spec, "capacity": {"storage": "1Gi"}, "persistentVolumeReclaimPolicy": "Retain",
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": f"vol-{uuid.uuid4().hex[:17]}"},
            "claimRef": {"namespace": namespace, "name": "late"}}})
        for claim, extra in (("late", {"volumeName": volume}), ("never", {})):
            core.create_namespaced_persistent_volume_claim(namespace, {"metadata": {"name": claim}, "spec": {
                **spec, **extra, "resources": {"requests": {"storage": "1Gi"}}}})
        late = wait_claims_bound(core, namespace, ["late"], 60, 0.2)["late"]
        assert (late.status.phase, late.spec.volume_name) == ("Bound", volume)
        pv = core.read_persistent_volume(volume)
        assert (pv.status.phase, pv.spec.claim_ref.uid) == ("Bound", late.metadata.uid)
        # nobody but the PV controller bound it (the claim's status was written by kube-controller-manager only)
        status_writers = {m.manager for m in late.metadata.managed_fields if m.subresource == "status"}
        assert status_writers == {"kube-controller-manager"}
        assert wait_claims_bound(core, namespace, ["never"], 0.5, 0.2)["never"].status.phase == "Pending"
    finally:
        core.delete_namespace(namespace)
        core.delete_persistent_volume(volume)


def test_teardown_names_what_holds_a_namespace(env: Env) -> None:
    from opsbook.drills.velero_teardown import namespace_holders

    core = client.CoreV1Api(env.kube)
    namespace = f"held-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "kept", "finalizers": ["example.com/hold"]}})
    try:
        assert namespace_holders(env.kube, namespace) == ["ConfigMap/kept has finalizers example.com/hold"]
    finally:
        core.patch_namespaced_config_map("kept", namespace, {"metadata": {"finalizers": None}})
        core.delete_namespace(namespace)
