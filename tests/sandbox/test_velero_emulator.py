"""Contract of the sandbox's Velero server, driven through the official kubernetes client and boto3.

It pins what Velero with the AWS plugin does: the phases and status fields, the object
store layout (`pkg/persistence/object_store_layout.go`), the tarball, the snapshot list,
EBS snapshots tagged with the backup's labels, restores into a mapped namespace from new
volumes, DeleteBackupRequests, Schedules, and the two failure modes tests can reach.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
import uuid

import pika
import pymysql
import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION, NS = "velero.io", "v1", "velero"
TERMINAL = ("Completed", "PartiallyFailed", "Failed", "FailedValidation", "Processed")
FAULT = "sandbox.opsbook.io/fail-snapshot"
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
    for suffix in (".tar.gz", "-logs.gz", "-resource-list.json.gz", "-volumesnapshots.json.gz", "-results.gz",
                   "-itemoperations.json.gz", "-podvolumebackups.json.gz", "-volumeinfo.json.gz",
                   "-csi-volumesnapshots.json.gz", "-csi-volumesnapshotcontents.json.gz",
                   "-csi-volumesnapshotclasses.json.gz"):
        assert f"backups/{name}/{name}{suffix}" in keys
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
    assert version == "1.1.0"
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


def test_snapshot_list_and_ebs_snapshots_carry_the_backup(kube, billing_backup) -> None:
    name = billing_backup[1]["metadata"]["name"]
    [snap] = json.loads(gzip.decompress(_read(kube, f"backups/{name}/{name}-volumesnapshots.json.gz")))
    claim = kube["core"].read_namespaced_persistent_volume_claim("data-billing-db-0", "billing")
    pv = kube["core"].read_persistent_volume(claim.spec.volume_name)
    assert snap["spec"]["PersistentVolumeName"] == pv.metadata.name  # Go's field name: the json tag is malformed
    assert snap["spec"]["providerVolumeID"] == pv.spec.csi.volume_handle
    assert snap["status"]["phase"] == "Completed"
    [ebs] = kube["ec2"].describe_snapshots(OwnerIds=["self"], SnapshotIds=[snap["status"]["providerSnapshotID"]])["Snapshots"]
    tags = {t["Key"]: t["Value"] for t in ebs["Tags"]}
    assert ebs["VolumeId"] == pv.spec.csi.volume_handle
    assert tags["velero.io/backup"] == name and tags["velero.io/pv"] == pv.metadata.name
    assert tags["team"] == "contract-test"  # the backup's labels


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
        claim = core.read_namespaced_persistent_volume_claim("data-billing-db-0", target)
        source_claim = core.read_namespaced_persistent_volume_claim("data-billing-db-0", "billing")
        assert claim.status.phase == "Bound" and claim.spec.volume_name.startswith("velero-clone-")
        assert claim.metadata.labels["velero.io/restore-name"] == restore
        pv = core.read_persistent_volume(claim.spec.volume_name)
        source_pv = core.read_persistent_volume(source_claim.spec.volume_name)
        assert pv.spec.csi.volume_handle != source_pv.spec.csi.volume_handle
        [vol] = kube["ec2"].describe_volumes(VolumeIds=[pv.spec.csi.volume_handle])["Volumes"]
        snaps = kube["ec2"].describe_snapshots(OwnerIds=["self"], Filters=[
            {"Name": "tag:velero.io/backup", "Values": [name]}])["Snapshots"]
        assert vol["SnapshotId"] in {s["SnapshotId"] for s in snaps}
        pod = wait_for(lambda: next((p for p in core.list_namespaced_pod(target).items
                                     if p.metadata.name == "billing-db-0" and any(
                                         c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])),
                                    None), what="billing-db-0 Ready")
        assert pod.status.phase == "Running"
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
    done = wait_phase(custom, "deletebackuprequests", f"{name}-del")
    assert done["status"]["phase"] == "Processed" and not done["status"].get("errors")
    assert done["metadata"]["labels"]["velero.io/backup-name"] == name
    bucket = kube["env"].params.buckets.velero
    assert kube["s3"].list_objects_v2(Bucket=bucket, Prefix=f"backups/{name}/").get("KeyCount") == 0
    assert kube["s3"].list_objects_v2(Bucket=bucket, Prefix=f"restores/{name}-r/").get("KeyCount") == 0
    assert not kube["ec2"].describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:velero.io/backup", "Values": [name]}])["Snapshots"]
    for plural, obj in (("backups", name), ("restores", f"{name}-r")):
        with pytest.raises(ApiException) as exc:
            custom.get_namespaced_custom_object(GROUP, VERSION, NS, plural, obj)
        assert exc.value.status == 404


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
    wait_phase(custom, "deletebackuprequests", f"{name}-del")


def test_schedule_runs_at_once_unless_skip_immediately(kube) -> None:
    custom = kube["custom"]
    now_name, skip_name = f"contract-now-{uuid.uuid4().hex[:5]}", f"contract-skip-{uuid.uuid4().hex[:5]}"
    template = {"includedNamespaces": ["reports"], "ttl": "1h0m0s"}
    create(custom, "schedules", "Schedule", now_name, {"schedule": "0 3 1 1 *", "template": template})
    create(custom, "schedules", "Schedule", skip_name, {"schedule": "0 3 1 1 *", "skipImmediately": True,
                                                       "template": template})
    try:
        backup = wait_for(lambda: next(iter(custom.list_namespaced_custom_object(
            GROUP, VERSION, NS, "backups", label_selector=f"velero.io/schedule-name={now_name}")["items"]), None),
            what="the schedule's first backup")
        assert backup["metadata"]["name"].startswith(f"{now_name}-") and len(backup["metadata"]["name"]) == len(now_name) + 15
        assert wait_phase(custom, "backups", backup["metadata"]["name"])["status"]["phase"] == "Completed"
        schedule = custom.get_namespaced_custom_object(GROUP, VERSION, NS, "schedules", now_name)
        assert schedule["status"]["phase"] == "Enabled" and schedule["status"]["lastBackup"]
        time.sleep(1.5)  # a tick later, the other one still has not run
        assert not custom.list_namespaced_custom_object(GROUP, VERSION, NS, "backups",
                                                        label_selector=f"velero.io/schedule-name={skip_name}")["items"]
        create(custom, "deletebackuprequests", "DeleteBackupRequest", f"{now_name}-del",
               {"backupName": backup["metadata"]["name"]})
        wait_phase(custom, "deletebackuprequests", f"{now_name}-del")
    finally:
        for name in (now_name, skip_name):
            custom.delete_namespaced_custom_object(GROUP, VERSION, NS, "schedules", name)


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
