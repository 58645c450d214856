"""Contract of the sandbox's Velero server, driven through the official kubernetes client and boto3.

It pins what Velero v1.18 with the AWS plugin does, as their sources have it: the phases and
status fields, the object store layout (`pkg/persistence/object_store.go` PutBackup: no CSI
files), the tarball (events included), the snapshot list (`persistentVolumeName`), EBS
snapshots still pending when the Backup is Completed and tagged with the backup's labels and
the volume's tags, PVs no snapshotter takes skipped, a missing namespace making the backup
PartiallyFailed, restores into a mapped namespace from new volumes that keep `Encrypted` and
the snapshot's tags, what a restore leaves out (finished pods and Jobs, mirror pods,
service-account tokens, events), DeleteBackupRequests that vanish once done, Schedules that
first run at their first cron time (CRON_TZ included), and every object valid against the
vendored CRDs.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import jsonschema
import pika
import pymysql
import pytest
import requests
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION, NS = "velero.io", "v1", "velero"
TERMINAL = ("Completed", "PartiallyFailed", "Failed", "FailedValidation", "Processed")
FAULT = "sandbox.opsbook.io/fail-snapshot"
PENDING = "sandbox.opsbook.io/snapshot-pending-seconds"
SNAPSHOT_ERROR = "sandbox.opsbook.io/snapshot-error"
QUEUE = "events.status"  # a queue of the seeded brokers (sandbox/velero/dataplane.py SOURCE_DEFINITIONS)


def wait_phase(custom, plural: str, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, NS, plural, name)
        if (obj.get("status") or {}).get("phase") in TERMINAL:
            return obj
        assert time.monotonic() < deadline, f"{plural}/{name} still {obj.get('status')}"
        time.sleep(0.2)


def wait_for(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def create(custom, plural: str, kind: str, name: str, spec: dict, labels: dict | None = None) -> dict:
    body = {"apiVersion": "velero.io/v1", "kind": kind, "metadata": {"name": name, "labels": labels or {}}, "spec": spec}
    return custom.create_namespaced_custom_object(GROUP, VERSION, NS, plural, body)


@pytest.fixture(scope="module")
def kube(sandbox):
    from opsbook.clients import Env
    from opsbook.params import load_params

    env = Env(params=load_params("sandbox"), run_id="velero-emulator-test")
    return {"api": env.kube, "custom": client.CustomObjectsApi(env.kube), "core": client.CoreV1Api(env.kube),
            "apps": client.AppsV1Api(env.kube), "ec2": env.aws("ec2"), "s3": env.aws("s3"), "env": env}


@pytest.fixture(scope="module")
def billing_backup(kube):
    """One backup of the billing namespace (a database StatefulSet on one EBS volume)."""
    name = f"contract-billing-{uuid.uuid4().hex[:6]}"
    created = create(kube["custom"], "backups", "Backup", name,
                     {"includedNamespaces": ["billing"], "ttl": "2h0m0s", "snapshotVolumes": True,
                      "storageLocation": "default", "volumeSnapshotLocations": ["default"]},
                     labels={"team": "contract-test"})
    done = wait_phase(kube["custom"], "backups", name)
    yield created, done
    create(kube["custom"], "deletebackuprequests", "DeleteBackupRequest", f"{name}-cleanup", {"backupName": name})


def test_backup_completes_with_velero_status(kube, billing_backup) -> None:
    created, done = billing_backup
    assert (created.get("status") or {}).get("phase") in (None, "", "New")
    status = done["status"]
    assert status["phase"] == "Completed"
    assert status["formatVersion"] == "1.1.0"
    assert status["progress"]["itemsBackedUp"] == status["progress"]["totalItems"] > 0
    assert status["volumeSnapshotsAttempted"] == status["volumeSnapshotsCompleted"] == 1
    assert status["errors"] == 0
    start, end = status["startTimestamp"], status["completionTimestamp"]
    assert start.endswith("Z") and end >= start
    assert status["expiration"] > start  # ttl 2h
    assert done["metadata"]["labels"]["velero.io/storage-location"] == "default"


def test_backup_files_are_in_the_bucket_under_velero_s_names(kube, billing_backup) -> None:
    name = billing_backup[1]["metadata"]["name"]
    bucket = kube["env"].params.buckets.velero
    keys = {o["Key"] for o in kube["s3"].list_objects_v2(Bucket=bucket, Prefix=f"backups/{name}/")["Contents"]}
    # what v1.18's PutBackup writes, and nothing else (the -csi-* files are gone since v1.17/v1.18)
    assert keys == {f"backups/{name}/velero-backup.json"} | {
        f"backups/{name}/{name}{suffix}" for suffix in (
            ".tar.gz", "-logs.gz", "-resource-list.json.gz", "-volumesnapshots.json.gz", "-results.gz",
            "-itemoperations.json.gz", "-podvolumebackups.json.gz", "-volumeinfo.json.gz")}
    record = json.loads(kube["s3"].get_object(Bucket=bucket, Key=f"backups/{name}/velero-backup.json")["Body"].read())
    assert record["kind"] == "Backup" and record["metadata"]["name"] == name and record["status"]["phase"] == "Completed"


def _read(kube, key: str) -> bytes:
    return kube["s3"].get_object(Bucket=kube["env"].params.buckets.velero, Key=key)["Body"].read()


def test_tarball_holds_the_namespace_in_both_path_forms(kube, billing_backup) -> None:
    name = billing_backup[1]["metadata"]["name"]
    with tarfile.open(fileobj=io.BytesIO(_read(kube, f"backups/{name}/{name}.tar.gz")), mode="r:gz") as tar:
        names = set(tar.getnames())
        version = tar.extractfile("metadata/version").read().decode()
        sts = json.loads(tar.extractfile("resources/statefulsets.apps/namespaces/billing/billing-db.json").read())
    assert version == "1.1.0\n"
    # the seeded maintenance Job, finished, and its Succeeded pod are backed up (a restore leaves them out)
    finished = [p.metadata.name for p in kube["core"].list_namespaced_pod("billing").items
                if p.status.phase == "Succeeded"]
    assert finished and all(f"resources/pods/namespaces/billing/{p}.json" in names for p in finished)
    jobs = _finished_jobs(kube, "billing")
    assert jobs and all(f"resources/jobs.batch/namespaces/billing/{j}.json" in names for j in jobs)
    assert "resources/statefulsets.apps/v1-preferredversion/namespaces/billing/billing-db.json" in names
    assert "resources/persistentvolumeclaims/namespaces/billing/data-billing-db-0.json" in names
    assert "resources/namespaces/cluster/billing.json" in names
    assert any(n.startswith("resources/persistentvolumes/cluster/") for n in names)
    assert sts["kind"] == "StatefulSet" and sts["metadata"]["namespace"] == "billing"
    # the resource list matches the tarball and the live namespace
    listing = json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-resource-list.json.gz")))
    assert "billing/billing-db" in listing["apps/v1/StatefulSet"]
    live_claims = {p.metadata.name for p in kube["core"].list_namespaced_persistent_volume_claim("billing").items}
    assert {c.split("/")[1] for c in listing["v1/PersistentVolumeClaim"]} == live_claims


def _finished_jobs(kube, namespace: str) -> list[str]:
    return [j.metadata.name for j in client.BatchV1Api(kube["api"]).list_namespaced_job(namespace).items
            if j.status.completion_time]


def test_snapshot_list_and_ebs_snapshots_carry_the_backup(kube, billing_backup) -> None:
    name = billing_backup[1]["metadata"]["name"]
    [snap] = json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-volumesnapshots.json.gz")))
    claim = kube["core"].read_namespaced_persistent_volume_claim("data-billing-db-0", "billing")
    pv = kube["core"].read_persistent_volume(claim.spec.volume_name)
    assert snap["spec"]["persistentVolumeName"] == pv.metadata.name
    assert snap["spec"]["providerVolumeID"] == pv.spec.csi.volume_handle
    zone = pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0].values[0]
    assert snap["spec"]["volumeAZ"] == zone and snap["spec"]["volumeIOPS"] == 0  # IOPS only for io1/io2
    assert snap["status"]["phase"] == "Completed"
    [ebs] = kube["ec2"].describe_snapshots(OwnerIds=["self"], SnapshotIds=[snap["status"]["providerSnapshotID"]])["Snapshots"]
    tags = {t["Key"]: t["Value"] for t in ebs["Tags"]}
    assert ebs["VolumeId"] == pv.spec.csi.volume_handle
    assert tags["velero.io/backup"] == name and tags["velero.io/pv"] == pv.metadata.name
    assert tags["team"] == "contract-test"  # the backup's labels
    [volume] = kube["ec2"].describe_volumes(VolumeIds=[pv.spec.csi.volume_handle])["Volumes"]
    assert {t["Key"]: t["Value"] for t in volume["Tags"]}.items() <= tags.items()  # and the volume's own tags
    info = json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-volumeinfo.json.gz")))
    assert info == [{"pvcName": "data-billing-db-0", "pvcNamespace": "billing", "pvName": pv.metadata.name,
                     "backupMethod": "NativeSnapshot", "snapshotDataMoved": False, "preserveLocalSnapshot": False,
                     "skipped": False, "result": "succeeded",
                     "nativeSnapshotInfo": {"snapshotHandle": snap["status"]["providerSnapshotID"],
                                            "volumeType": volume["VolumeType"], "volumeAZ": zone, "iops": "0",
                                            "Phase": "Completed"},
                     "pvInfo": {"reclaimPolicy": pv.spec.persistent_volume_reclaim_policy,
                                "labels": pv.metadata.labels}}]
    # the snapshot leaves EBS's pending state a while after the backup completed
    wait_for(lambda: _snapshot_state(kube, snap["status"]["providerSnapshotID"]) == "completed",
             what="the EBS snapshot completed")


def _snapshot_state(kube, snapshot_id: str) -> str | None:
    found = kube["ec2"].describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])
    return found["Snapshots"][0]["State"] if found["Snapshots"] else None


def _annotate_claim(kube, namespace: str, claim: str, annotations: dict) -> None:
    kube["core"].patch_namespaced_persistent_volume_claim(claim, namespace, {"metadata": {"annotations": annotations}})


def test_snapshots_are_still_pending_when_the_backup_is_completed(kube) -> None:
    """Velero records a snapshot Completed when EBS accepts it; EBS keeps it pending (here, for 10 minutes)."""
    _annotate_claim(kube, "billing", "data-billing-db-0", {PENDING: "600"})
    name = f"contract-pending-{uuid.uuid4().hex[:6]}"
    try:
        create(kube["custom"], "backups", "Backup", name, {"includedNamespaces": ["billing"], "ttl": "1h0m0s"})
        done = wait_phase(kube["custom"], "backups", name)
    finally:
        _annotate_claim(kube, "billing", "data-billing-db-0", {PENDING: None})
    assert done["status"]["phase"] == "Completed" and done["status"]["volumeSnapshotsCompleted"] == 1
    [snap] = json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-volumesnapshots.json.gz")))
    assert snap["status"]["phase"] == "Completed"
    assert _snapshot_state(kube, snap["status"]["providerSnapshotID"]) == "pending"
    # a pending snapshot can be deleted: deleting the backup takes it
    create(kube["custom"], "deletebackuprequests", "DeleteBackupRequest", f"{name}-del", {"backupName": name})
    wait_for(lambda: _snapshot_state(kube, snap["status"]["providerSnapshotID"]) is None, what="snapshot deleted")


def test_a_snapshot_can_end_in_error_while_the_backup_stays_completed(kube) -> None:
    _annotate_claim(kube, "billing", "data-billing-db-0", {SNAPSHOT_ERROR: "yes", PENDING: "0"})
    name = f"contract-snaperror-{uuid.uuid4().hex[:6]}"
    try:
        create(kube["custom"], "backups", "Backup", name, {"includedNamespaces": ["billing"], "ttl": "1h0m0s"})
        done = wait_phase(kube["custom"], "backups", name)
    finally:
        _annotate_claim(kube, "billing", "data-billing-db-0", {SNAPSHOT_ERROR: None, PENDING: None})
    assert done["status"]["phase"] == "Completed"
    [snap] = json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-volumesnapshots.json.gz")))
    wait_for(lambda: _snapshot_state(kube, snap["status"]["providerSnapshotID"]) == "error", what="snapshot in error")
    create(kube["custom"], "deletebackuprequests", "DeleteBackupRequest", f"{name}-del", {"backupName": name})
    wait_for(lambda: not _backup_exists(kube, name), what="backup deleted")


def _backup_exists(kube, name: str) -> bool:
    try:
        kube["custom"].get_namespaced_custom_object(GROUP, VERSION, NS, "backups", name)
        return True
    except ApiException as exc:
        assert exc.status == 404
        return False


def test_restore_maps_the_namespace_onto_new_volumes(kube, billing_backup) -> None:
    name = billing_backup[1]["metadata"]["name"]
    target = f"billing-contract-{uuid.uuid4().hex[:6]}"
    restore = f"{name}-restore"
    create(kube["custom"], "restores", "Restore", restore,
           {"backupName": name, "includedNamespaces": ["billing"], "namespaceMapping": {"billing": target}})
    try:
        done = wait_phase(kube["custom"], "restores", restore)
        assert done["status"]["phase"] == "Completed"
        assert done["status"]["progress"]["itemsRestored"] == done["status"]["progress"]["totalItems"] > 0
        core = kube["core"]
        # Velero does not bind: the PV controller binds the claim to its pre-bound volume in its own time
        claim = wait_for(lambda: next((c for c in [core.read_namespaced_persistent_volume_claim(
            "data-billing-db-0", target)] if c.status.phase == "Bound"), None), what="the restored claim Bound")
        source_claim = core.read_namespaced_persistent_volume_claim("data-billing-db-0", "billing")
        assert claim.spec.volume_name.startswith("velero-clone-")
        assert claim.metadata.labels["velero.io/restore-name"] == restore
        assert claim.metadata.annotations["pv.kubernetes.io/bind-completed"] == "yes"
        pv = core.read_persistent_volume(claim.spec.volume_name)
        source_pv = core.read_persistent_volume(source_claim.spec.volume_name)
        assert pv.spec.csi.volume_handle != source_pv.spec.csi.volume_handle
        [vol] = kube["ec2"].describe_volumes(VolumeIds=[pv.spec.csi.volume_handle])["Volumes"]
        [snap] = kube["ec2"].describe_snapshots(OwnerIds=["self"], Filters=[
            {"Name": "tag:velero.io/backup", "Values": [name]}])["Snapshots"]
        assert vol["SnapshotId"] == snap["SnapshotId"]
        # the AWS plugin's CreateVolumeFromSnapshot: the snapshot's encryption and all its tags
        assert vol["Encrypted"] is snap["Encrypted"] is True
        assert {t["Key"]: t["Value"] for t in snap["Tags"]}.items() <= {t["Key"]: t["Value"] for t in vol["Tags"]}.items()
        # the seeded maintenance Job, finished, and its pod were backed up but are not restored
        finished = {p.metadata.name for p in core.list_namespaced_pod("billing").items if p.status.phase == "Succeeded"}
        assert finished and not finished & {p.metadata.name for p in core.list_namespaced_pod(target).items}
        jobs = _finished_jobs(kube, "billing")
        assert jobs and not client.BatchV1Api(kube["api"]).list_namespaced_job(target).items
        restore_log = gzip.decompress(_read(kube, f"restores/{restore}/restore-{restore}-logs.gz")).decode()
        assert all(f"billing/{p} is complete - skipping" in restore_log for p in [*finished, *jobs])
        assert set(done["spec"]["excludedResources"]) >= {"nodes", "events", "backups.velero.io"}
        pod = wait_for(lambda: next((p for p in core.list_namespaced_pod(target).items
                                     if p.metadata.name == "billing-db-0" and any(
                                         c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])),
                                    None), what="billing-db-0 Ready")
        assert pod.status.phase == "Running"
        # Velero's pod action left spec.nodeName out: the scheduler placed the pod again, the kubelet started
        # it, and the restored StatefulSet adopted it (Velero drops owner references)
        scheduled = core.list_namespaced_event(target, field_selector="involvedObject.name=billing-db-0,reason=Scheduled")
        assert [(e.source.component, e.message) for e in scheduled.items] == [
            ("default-scheduler", f"Successfully assigned {target}/billing-db-0 to {pod.spec.node_name}")]
        sts = kube["apps"].read_namespaced_stateful_set("billing-db", target)
        assert [(r.kind, r.uid, r.controller) for r in pod.metadata.owner_references] == [
            ("StatefulSet", sts.metadata.uid, True)]
        # the Events are the cluster's components'; Velero v1.18 records none about backups and restores
        recorded = core.list_namespaced_event(target).items + core.list_namespaced_event(NS).items
        assert recorded and not [e for e in recorded if "velero" in f"{e.source.component} {e.reporting_component}"
                                 or e.involved_object.kind in ("Backup", "Restore")]
        # the source is untouched
        assert kube["apps"].read_namespaced_stateful_set("billing-db", "billing").metadata.labels.get("velero.io/restore-name") is None
        # the database travelled with the volume
        access = kube["env"].params.stateful_access.mysql
        database = access.database.format(namespace=target, service="billing-db", database="billing")
        conn = pymysql.connect(host="127.0.0.1", user="root", database=database)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM events")
            assert cur.fetchone()[0] > 0
        conn.close()
        keys = {o["Key"] for o in kube["s3"].list_objects_v2(Bucket=kube["env"].params.buckets.velero,
                                                             Prefix=f"restores/{restore}/")["Contents"]}
        assert {f"restores/{restore}/restore-{restore}-logs.gz", f"restores/{restore}/restore-{restore}-results.gz"} <= keys
    finally:
        volume_ids = [pv.spec.csi.volume_handle for pv in kube["core"].list_persistent_volume(
            label_selector=f"velero.io/restore-name={restore}").items]
        kube["core"].delete_namespace(target)
    # the namespace's deletion frees the restored PVs, their EBS volumes and their data
    wait_for(lambda: not kube["core"].list_persistent_volume(label_selector=f"velero.io/restore-name={restore}").items,
             what="restored PVs gone")
    wait_for(lambda: not kube["ec2"].describe_volumes(Filters=[{"Name": "volume-id", "Values": volume_ids}])["Volumes"],
             what="restored volumes deleted")
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with conn.cursor() as cur:
        wait_for(lambda: cur.execute("SHOW DATABASES LIKE %s", (database,)) == 0, what="restored database dropped")
    conn.close()


def test_broker_data_travels_with_its_volumes(kube) -> None:
    """A message queued before the backup is in the restored broker's vhost; one queued after is not."""
    env = kube["env"]
    access = env.params.stateful_access.rabbitmq
    source_vhost = access.vhost.format(namespace="rabbitmq", service="rabbitmq", database="")
    creds = pika.PlainCredentials("guest", "guest")

    def publish(vhost: str, body: bytes) -> None:
        # into a queue the seed made (the source broker's definitions stay as they are: other sandboxes
        # on this machine share it), expiring soon so the shared queue does not grow
        conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672, vhost, creds))
        ch = conn.channel()
        ch.basic_publish("", QUEUE, body, pika.BasicProperties(delivery_mode=2, expiration="120000"))
        conn.close()

    before, after = f"before-{uuid.uuid4().hex}".encode(), f"after-{uuid.uuid4().hex}".encode()
    publish(source_vhost, before)
    name = f"contract-rabbitmq-{uuid.uuid4().hex[:6]}"
    create(kube["custom"], "backups", "Backup", name, {"includedNamespaces": ["rabbitmq"], "ttl": "1h0m0s"})
    assert wait_phase(kube["custom"], "backups", name)["status"]["phase"] == "Completed"
    publish(source_vhost, after)
    target = f"rabbitmq-contract-{uuid.uuid4().hex[:6]}"
    create(kube["custom"], "restores", "Restore", f"{name}-restore",
           {"backupName": name, "namespaceMapping": {"rabbitmq": target}})
    try:
        assert wait_phase(kube["custom"], "restores", f"{name}-restore")["status"]["phase"] == "Completed"
        vhost = access.vhost.format(namespace=target, service="rabbitmq", database="")
        got = requests.post(f"http://127.0.0.1:15672/api/queues/{requests.utils.quote(vhost, safe='')}/{QUEUE}/get",
                            json={"count": 1000, "ackmode": "ack_requeue_true", "encoding": "auto"},
                            auth=("guest", "guest"), timeout=10).json()
        bodies = {m["payload"].encode() for m in got}
        assert before in bodies and after not in bodies
        def exchanges(of: str) -> set[str]:
            listed = requests.get(f"http://127.0.0.1:15672/api/exchanges/{requests.utils.quote(of, safe='')}",
                                  auth=("guest", "guest"), timeout=10).json()
            return {e["name"] for e in listed if e["name"] and not e["name"].startswith("amq.")}

        assert exchanges(source_vhost) and exchanges(source_vhost) <= exchanges(vhost)  # the broker's definitions too
    finally:
        kube["core"].delete_namespace(target)
        create(kube["custom"], "deletebackuprequests", "DeleteBackupRequest", f"{name}-del", {"backupName": name})
    assert wait_for(lambda: requests.get(f"http://127.0.0.1:15672/api/vhosts/{requests.utils.quote(vhost, safe='')}",
                                         auth=("guest", "guest"), timeout=10).status_code == 404,
                    what="restored vhost dropped with its namespace")


def test_delete_backup_request_removes_files_snapshots_restores_and_the_backup(kube) -> None:
    custom, name = kube["custom"], f"contract-delete-{uuid.uuid4().hex[:6]}"
    create(custom, "backups", "Backup", name, {"includedNamespaces": ["reports"], "ttl": "1h0m0s"})
    wait_phase(custom, "backups", name)
    create(custom, "restores", "Restore", f"{name}-r", {"backupName": name, "namespaceMapping": {"reports": f"{name}-ns"}})
    wait_phase(custom, "restores", f"{name}-r")
    kube["core"].delete_namespace(f"{name}-ns")
    snaps = kube["ec2"].describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:velero.io/backup", "Values": [name]}])
    assert snaps["Snapshots"]
    create(custom, "deletebackuprequests", "DeleteBackupRequest", f"{name}-del", {"backupName": name})
    # done without errors, Velero deletes every request for the backup, this one included
    wait_for(lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, NS, "deletebackuprequests",
                                                              field_selector=f"metadata.name={name}-del")["items"],
             what="the processed request gone")
    bucket = kube["env"].params.buckets.velero
    assert kube["s3"].list_objects_v2(Bucket=bucket, Prefix=f"backups/{name}/").get("KeyCount") == 0
    assert kube["s3"].list_objects_v2(Bucket=bucket, Prefix=f"restores/{name}-r/").get("KeyCount") == 0
    assert not kube["ec2"].describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:velero.io/backup", "Values": [name]}])["Snapshots"]
    for plural, obj in (("backups", name), ("restores", f"{name}-r")):
        with pytest.raises(ApiException) as exc:
            custom.get_namespaced_custom_object(GROUP, VERSION, NS, plural, obj)
        assert exc.value.status == 404
    # a request for a backup that is gone stays, Processed, saying so
    create(custom, "deletebackuprequests", "DeleteBackupRequest", f"{name}-again", {"backupName": name})
    again = wait_phase(custom, "deletebackuprequests", f"{name}-again")
    assert again["status"] == {"phase": "Processed", "errors": ["backup not found"]}
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, "deletebackuprequests", f"{name}-again")


def test_unavailable_storage_location_fails_validation(kube) -> None:
    custom, location = kube["custom"], f"contract-missing-{uuid.uuid4().hex[:6]}"
    create(custom, "backupstoragelocations", "BackupStorageLocation", location,
           {"provider": "aws", "objectStorage": {"bucket": f"{location}-no-such-bucket"}, "config": {"region": "eu-central-1"}})
    try:
        loc = wait_for(lambda: (lambda o: o if (o.get("status") or {}).get("phase") else None)(
            custom.get_namespaced_custom_object(GROUP, VERSION, NS, "backupstoragelocations", location)),
            what="location validated")
        assert loc["status"]["phase"] == "Unavailable" and location in loc["status"]["message"]
        name = f"{location}-backup"
        create(custom, "backups", "Backup", name, {"includedNamespaces": ["billing"], "storageLocation": location})
        done = wait_phase(custom, "backups", name)
        assert done["status"]["phase"] == "FailedValidation"
        assert done["status"]["validationErrors"] == [
            f"backup can't be created because BackupStorageLocation {location} is in Unavailable status."]
        assert not done["status"].get("startTimestamp")  # nothing was done
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, "backupstoragelocations", location)


def test_a_failing_volume_snapshot_makes_the_backup_partially_failed(kube) -> None:
    core, custom = kube["core"], kube["custom"]
    core.patch_namespaced_persistent_volume_claim("data-rabbitmq-1", "rabbitmq",
                                                  {"metadata": {"annotations": {FAULT: "injected by a test"}}})
    name = f"contract-partial-{uuid.uuid4().hex[:6]}"
    try:
        create(custom, "backups", "Backup", name, {"includedNamespaces": ["rabbitmq"], "ttl": "1h0m0s"})
        done = wait_phase(custom, "backups", name)
    finally:
        core.patch_namespaced_persistent_volume_claim("data-rabbitmq-1", "rabbitmq",
                                                      {"metadata": {"annotations": {FAULT: None}}})
    status = done["status"]
    assert status["phase"] == "PartiallyFailed"
    assert (status["volumeSnapshotsAttempted"], status["volumeSnapshotsCompleted"]) == (3, 2)
    assert status["errors"] == 1
    logs = gzip.decompress(_read(kube, f"backups/{name}/{name}-logs.gz")).decode()
    assert "injected by a test" in logs
    create(custom, "deletebackuprequests", "DeleteBackupRequest", f"{name}-del", {"backupName": name})
    wait_for(lambda: not _backup_exists(kube, name), what="backup deleted")


def _schedule_backups(custom, schedule: str) -> list[dict]:
    return custom.list_namespaced_custom_object(GROUP, VERSION, NS, "backups",
                                                label_selector=f"velero.io/schedule-name={schedule}")["items"]


def test_a_new_schedule_first_runs_at_its_first_cron_time_not_at_once(kube) -> None:
    custom = kube["custom"]
    every, yearly = f"contract-every-{uuid.uuid4().hex[:5]}", f"contract-yearly-{uuid.uuid4().hex[:5]}"
    template = {"includedNamespaces": ["reports"], "ttl": "1h0m0s", "metadata": {"labels": {"team": "contract"}}}
    made = create(custom, "schedules", "Schedule", every, {"schedule": "@every 3s", "template": template})
    create(custom, "schedules", "Schedule", yearly, {"schedule": "0 3 1 1 *", "template": template})
    try:
        backup = wait_for(lambda: next(iter(_schedule_backups(custom, every)), None), what="the first backup")
        created = datetime.fromisoformat(made["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        submitted = datetime.strptime(backup["metadata"]["name"][len(every) + 1:], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        assert submitted >= created + timedelta(seconds=3)  # at the first cron time after creation, not at once
        assert backup["metadata"]["labels"] == {"team": "contract", "velero.io/schedule-name": every,
                                                "velero.io/storage-location": "default"}
        assert wait_phase(custom, "backups", backup["metadata"]["name"])["status"]["phase"] == "Completed"
        schedule = custom.get_namespaced_custom_object(GROUP, VERSION, NS, "schedules", every)
        assert schedule["status"]["phase"] == "Enabled" and schedule["status"]["lastBackup"]
        assert custom.get_namespaced_custom_object(GROUP, VERSION, NS, "schedules", yearly)["status"]["phase"] == "Enabled"
        assert not _schedule_backups(custom, yearly)
    finally:
        for name in (every, yearly):
            custom.delete_namespaced_custom_object(GROUP, VERSION, NS, "schedules", name)
    for backup in _schedule_backups(custom, every):
        create(custom, "deletebackuprequests", "DeleteBackupRequest", f"{backup['metadata']['name']}-del",
               {"backupName": backup["metadata"]["name"]})


def test_cron_tz_schedules_are_valid_and_bad_zones_are_not(kube) -> None:
    custom = kube["custom"]
    warsaw, bad = f"contract-tz-{uuid.uuid4().hex[:5]}", f"contract-badtz-{uuid.uuid4().hex[:5]}"
    template = {"includedNamespaces": ["reports"], "ttl": "1h0m0s"}
    create(custom, "schedules", "Schedule", warsaw, {"schedule": "CRON_TZ=Europe/Warsaw 0 3 1 1 *", "template": template})
    create(custom, "schedules", "Schedule", bad, {"schedule": "CRON_TZ=Foo/Bar 0 3 * * *", "template": template})
    try:
        def status(name: str) -> dict:
            return custom.get_namespaced_custom_object(GROUP, VERSION, NS, "schedules", name).get("status") or {}

        assert wait_for(lambda: status(warsaw).get("phase"), what="validated") == "Enabled"
        assert wait_for(lambda: status(bad).get("phase"), what="validated") == "FailedValidation"
        assert status(bad)["validationErrors"] == ["invalid schedule: provided bad location Foo/Bar: "
                                                   "unknown time zone Foo/Bar"]
        assert not _schedule_backups(custom, warsaw) and not _schedule_backups(custom, bad)
    finally:
        for name in (warsaw, bad):
            custom.delete_namespaced_custom_object(GROUP, VERSION, NS, "schedules", name)


def test_a_backup_of_a_namespace_that_does_not_exist_ends_partially_failed(kube) -> None:
    custom, name = kube["custom"], f"contract-ghost-{uuid.uuid4().hex[:6]}"
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    create(custom, "backups", "Backup", name, {"includedNamespaces": ["reports", ghost], "ttl": "1h0m0s"})
    done = wait_phase(custom, "backups", name)
    assert done["status"]["phase"] == "PartiallyFailed" and done["status"]["errors"] == 1
    results = json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-results.gz")))
    assert results == {"errors": {"velero": [
        f" resource: /namespaces message: /fail to get the namespace {ghost} specified in "
        "backup.Spec.IncludedNamespaces"]}, "warnings": {}}
    # everything else was backed up
    with tarfile.open(fileobj=io.BytesIO(_read(kube, f"backups/{name}/{name}.tar.gz")), mode="r:gz") as tar:
        assert "resources/namespaces/cluster/reports.json" in tar.getnames()
    create(custom, "deletebackuprequests", "DeleteBackupRequest", f"{name}-del", {"backupName": name})
    wait_for(lambda: not _backup_exists(kube, name), what="backup deleted")


@pytest.fixture()
def scratch(kube):
    """A namespace of odd things, deleted afterwards (with a PV it made, if any)."""
    name = f"contract-odd-{uuid.uuid4().hex[:6]}"
    kube["core"].create_namespace({"metadata": {"name": name}})
    yield name
    kube["core"].delete_namespace(name)
    for pv in kube["core"].list_persistent_volume(label_selector=f"contract={name}").items:
        kube["core"].delete_persistent_volume(pv.metadata.name)


def _container() -> dict:
    return {"name": "c", "image": "busybox:1.36"}


def test_a_restore_leaves_out_what_velero_does_not_restore(kube, scratch) -> None:
    core, custom = kube["core"], kube["custom"]
    core.create_namespaced_service_account(scratch, {"metadata": {"name": "app"}})
    core.create_namespaced_secret(scratch, {"metadata": {"name": "app-token-x1y2z", "annotations": {
        "kubernetes.io/service-account.name": "app"}}, "type": "kubernetes.io/service-account-token",
        "data": {"token": "dG9rZW4="}})
    core.create_namespaced_secret(scratch, {"metadata": {"name": "app-long-lived", "annotations": {
        "kubernetes.io/service-account.name": "app", "kubernetes.io/service-account.uid": "u-1"}},
        "type": "kubernetes.io/service-account-token", "data": {"token": "dG9rZW4=", "ca.crt": "Y2E=", "x": "eA=="}})
    core.create_namespaced_config_map(scratch, {"metadata": {"name": "settings"}, "data": {"a": "b"}})
    node = core.list_node().items[0].metadata.name
    core.create_namespaced_pod(scratch, {"metadata": {"name": "worker"}, "spec": {
        "nodeName": node, "serviceAccountName": "app",
        "containers": [{**_container(), "volumeMounts": [{"name": "app-token-x1y2z", "mountPath": "/var/run/sa"},
                                                         {"name": "cache", "mountPath": "/cache"}]}],
        "volumes": [{"name": "app-token-x1y2z", "secret": {"secretName": "app-token-x1y2z"}},
                    {"name": "cache", "emptyDir": {}}]}})
    core.create_namespaced_pod(scratch, {"metadata": {"name": "static-web", "annotations": {
        "kubernetes.io/config.mirror": "abc"}}, "spec": {"containers": [_container()]}})
    # failed on a node since gone (no kubelet here to run it again)
    core.create_namespaced_pod(scratch, {"metadata": {"name": "crashed"}, "spec": {
        "nodeName": f"{scratch}-gone", "restartPolicy": "Never", "containers": [_container()]}})
    core.patch_namespaced_pod_status("crashed", scratch, {"status": {"phase": "Failed"}})
    core.create_namespaced_event(scratch, {"metadata": {"name": "settings.1"}, "reason": "Created",
                                           "message": "made by a test", "type": "Normal",
                                           "involvedObject": {"kind": "ConfigMap", "name": "settings",
                                                              "namespace": scratch}})
    name, target = f"{scratch}-b", f"{scratch}-r"
    create(custom, "backups", "Backup", name, {"includedNamespaces": [scratch], "ttl": "1h0m0s"})
    assert wait_phase(custom, "backups", name)["status"]["phase"] == "Completed"
    with tarfile.open(fileobj=io.BytesIO(_read(kube, f"backups/{name}/{name}.tar.gz")), mode="r:gz") as tar:
        assert f"resources/events/namespaces/{scratch}/settings.1.json" in tar.getnames()  # events are backed up
        backed_up = json.loads(tar.extractfile(f"resources/configmaps/namespaces/{scratch}/settings.json").read())
    create(custom, "restores", "Restore", f"{name}-r", {"backupName": name, "namespaceMapping": {scratch: target}})
    try:
        assert wait_phase(custom, "restores", f"{name}-r")["status"]["phase"] == "Completed"
        assert {p.metadata.name for p in core.list_namespaced_pod(target).items} == {"worker"}
        # the pod action: no node (the scheduler places it again), no service-account token volume or mount
        worker = kube["api"].sanitize_for_serialization(core.read_namespaced_pod("worker", target))
        assert [v["name"] for v in worker["spec"]["volumes"]] == ["cache"]
        assert [m["name"] for m in worker["spec"]["containers"][0]["volumeMounts"]] == ["cache"]
        assert wait_for(lambda: core.list_namespaced_event(
            target, field_selector="involvedObject.name=worker,reason=Scheduled").items, what="worker scheduled")
        # the backed-up managedFields are put back once the object exists (who set what, and when)
        settings = json.loads(core.read_namespaced_config_map("settings", target, _preload_content=False).data)
        assert backed_up["metadata"]["managedFields"]
        assert settings["metadata"]["managedFields"] == backed_up["metadata"]["managedFields"]
        assert settings["metadata"]["labels"]["velero.io/restore-name"] == f"{name}-r"
        assert {s.metadata.name for s in core.list_namespaced_secret(target).items} == {"app-long-lived"}
        kept = core.read_namespaced_secret("app-long-lived", target)
        assert set(kept.data) == {"x"} and "kubernetes.io/service-account.uid" not in kept.metadata.annotations
        assert core.read_namespaced_config_map("settings", target).data == {"a": "b"}
        assert not core.list_namespaced_event(target, field_selector="involvedObject.name=settings").items
        listing = json.loads(gzip.decompress(_read(kube, f"restores/{name}-r/restore-{name}-r-resource-list.json.gz")))
        assert listing["v1/Pod"] == [f"{target}/worker"] and "v1/Event" not in listing
        assert listing["v1/Secret"] == [f"{target}/app-long-lived"]
    finally:
        core.delete_namespace(target)
        create(custom, "deletebackuprequests", "DeleteBackupRequest", f"{name}-del", {"backupName": name})


def test_a_pv_no_snapshotter_takes_is_skipped_and_the_backup_completes(kube, scratch) -> None:
    core, custom = kube["core"], kube["custom"]
    pv = f"{scratch}-nfs"
    core.create_persistent_volume({"metadata": {"name": pv, "labels": {"contract": scratch}}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"], "persistentVolumeReclaimPolicy": "Retain",
        "nfs": {"server": "10.20.0.9", "path": "/exports/shared"},
        "claimRef": {"namespace": scratch, "name": "shared"}}})
    core.create_namespaced_persistent_volume_claim(scratch, {"metadata": {"name": "shared"}, "spec": {
        "accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": pv,
        "storageClassName": ""}})
    name = f"{scratch}-b"
    create(custom, "backups", "Backup", name, {"includedNamespaces": [scratch], "ttl": "1h0m0s"})
    done = wait_phase(custom, "backups", name)
    assert done["status"]["phase"] == "Completed" and done["status"]["volumeSnapshotsAttempted"] == 0
    assert json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-volumesnapshots.json.gz"))) is None
    [info] = json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-volumeinfo.json.gz")))
    assert (info["pvName"], info["pvcName"], info["skipped"], info["skippedReason"]) == (
        pv, "shared", True, "no applicable volumesnapshotter found")
    create(custom, "deletebackuprequests", "DeleteBackupRequest", f"{name}-del", {"backupName": name})
    wait_for(lambda: not _backup_exists(kube, name), what="backup deleted")


def test_seeded_schedule_backed_up_every_stateful_namespace_at_start(kube) -> None:
    backups = kube["custom"].list_namespaced_custom_object(GROUP, VERSION, NS, "backups",
                                                           label_selector="velero.io/schedule-name=daily")["items"]
    assert backups, "the seeded daily Schedule made no backup"
    first = min(backups, key=lambda b: b["status"]["startTimestamp"])
    stateful = {n.name for n in kube["env"].params.namespaces if n.stateful}
    assert set(first["spec"]["includedNamespaces"]) == stateful
    assert first["status"]["phase"] == "Completed"
    volumes = sum(w.replicas for n in kube["env"].params.namespaces for w in n.stateful)
    assert first["status"]["volumeSnapshotsCompleted"] == volumes


def _crd_schemas() -> dict[str, dict]:
    from opsbook.contracts import contract_files
    from opsbook.sandbox.kube.crds import CRD_DIR

    docs = []
    for path in [*contract_files("velero", "velero.io_*.yaml"), CRD_DIR / "opsbook.velero-extra.yaml"]:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return {d["spec"]["names"]["plural"]: d["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for d in docs}


def test_every_object_the_emulator_wrote_is_valid_against_the_crds(kube) -> None:
    """Backups, Restores, Schedules, locations and requests as Velero's emulator left them (status included)."""
    from tests.unit.test_velero_contract import _json_schema, _unknown_fields

    schemas = _crd_schemas()
    seen = 0
    for plural in ("backups", "restores", "schedules", "backupstoragelocations", "volumesnapshotlocations",
                   "deletebackuprequests"):
        for obj in kube["custom"].list_namespaced_custom_object(GROUP, VERSION, NS, plural)["items"]:
            jsonschema.validate(obj, _json_schema(schemas[plural]))
            assert _unknown_fields({k: v for k, v in obj.items() if k != "metadata"}, schemas[plural]) == [], plural
            seen += 1
    assert seen >= 4
