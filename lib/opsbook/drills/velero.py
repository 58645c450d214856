"""The Velero restore drill: back up a stateful namespace, restore it beside itself, prove it works.

Steps (one notebook cell each), built on `opsbook.drills.framework.Drill`:

1. preflight: the storage location is Available, the namespace and its StatefulSets exist,
   the drill's names are free; in production, the approval.
2. canary: for each stateful workload in scope, RabbitMQ: the broker's definitions are
   recorded and a canary message is published; MySQL: a canary row is written.
3. backup: a Backup of the namespace (ownership labels, ttl, volume snapshots), watched
   to a terminal phase; anything but Completed fails the drill with Velero's reason.
   With `backup_name`, that existing backup is used instead (and never deleted).
4. verify backup: its files in the BSL's bucket (Velero's layout) and its EBS snapshots.
5. restore: a Restore with `namespaceMapping` into `<namespace>-drill-<run id>` (never
   over the source; the namespace is created first, labelled as the drill's).
6. verify: every backed-up object is in the target namespace, every claim is Bound to a
   new PV whose volume was made from the backup's snapshot, the pods are Ready, and the
   data: the restored broker's definitions equal the recorded ones and the canary
   message is in it; the canary row is in the restored database.
7. teardown: the drill namespace with its PVs and volumes, and the Backup through a
   DeleteBackupRequest unless `keep_backup`.

RTO = restore + verify (how long until a working copy is back). RPO = the backup's
start minus the newest canary the restored data holds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from kubernetes import client
from kubernetes.client.rest import ApiException

from opsbook.dataplane import mysql, rabbitmq
from opsbook.drills import velero_teardown, velero_verify
from opsbook.drills.framework import PURPOSE, Drill, require_approval
from opsbook.drills.velero_api import (
    BACKUP_TERMINAL,
    RESTORE_TERMINAL,
    Progress,
    VeleroApi,
    backup_body,
    label_value,
    parse_time,
    restore_body,
)
from opsbook.errors import OpsbookError, UsageError
from opsbook.guard import k8s_labels, ownership_tags
from opsbook.params import StatefulWorkload
from opsbook.secrets import Secret

DRILL = "velero-restore"
WORKLOAD_LABEL = "app.kubernetes.io/name"
RUN_LABEL = "opsbook.io/run-id"


def run_token(run_id: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-") or "run"


def drill_names(namespace: str, run_id: str) -> dict[str, str]:
    """The names a drill of `namespace` uses: its Backup, Restore and target namespace."""
    token = run_token(run_id)
    names = {"backup": f"drill-{namespace}-{token}", "restore": f"drill-{namespace}-{token}-restore",
             "target": f"{namespace}-drill-{token}"}
    if len(names["target"]) > 63 or len(names["restore"]) > 63:
        raise UsageError(f"namespace {namespace!r} with run id {run_id!r} makes the drill namespace "
                         f"{names['target']!r}, longer than the 63 characters Kubernetes allows",
                         remedy="use a shorter run id")
    return names


def drill_labels(run_id: str, namespace: str) -> dict[str, str]:
    created = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # a label value cannot hold ':'
    labels = k8s_labels(ownership_tags(run_id, PURPOSE, created_at=created))
    labels.update({"opsbook.io/drill": DRILL, "opsbook.io/source-namespace": namespace})
    return {k: label_value(v) for k, v in labels.items()}


def database_target(env: Any, namespace: str, workload: StatefulWorkload, source_namespace: str) -> mysql.Target:
    """The microservice database of `workload` in `namespace`, from params `stateful_access.mysql`."""
    access = env.params.stateful_access.mysql
    fill = {"namespace": namespace, "service": workload.name, "database": workload.database_name(source_namespace)}
    password = env.ssm_secret(access.password_ssm) if access.password_ssm else Secret("", name="(no password)")
    return mysql.Target(f"{workload.name}.{namespace}", access.host.format(**fill), access.port, access.username,
                        password, access.database.format(**fill))


class VeleroRestoreDrill(Drill):
    """Backup -> restore into a drill namespace -> verify objects, volumes, pods, data -> teardown."""

    rto_steps = ("restore", "verify")

    def __init__(self, env: Any, namespace: str = "", scope: str = "all", backup_name: str = "",
                 keep_backup: bool = False, timeout_minutes: float | None = None, approval: str = "") -> None:
        params = env.params
        # empty: the first namespace of params with stateful workloads
        namespace = namespace or next((n.name for n in params.namespaces if n.stateful), "")
        if not namespace:
            raise UsageError(f"no namespace in {params.source} has stateful workloads: nothing for a Velero drill",
                             remedy="add stateful workloads to a namespace of params (namespaces[].stateful)")
        source = params.namespace(namespace)  # ParamsError naming the known ones
        if not source.stateful:
            stateful = ", ".join(n.name for n in params.namespaces if n.stateful)
            raise UsageError(f"namespace {namespace!r} has no stateful workloads in params; a Velero drill needs "
                             f"one of: {stateful}", remedy=f"pick one of: {stateful}")
        names = [w.name for w in source.stateful]
        if scope not in ("all", *names):
            raise UsageError(f"scope: expected 'all' or a stateful workload of {namespace} ({', '.join(names)}), "
                             f"got {scope!r}")
        if timeout_minutes is not None and timeout_minutes < 0:
            raise UsageError(f"timeout_minutes must be >= 0 (0: params velero.timeout_minutes), got {timeout_minutes}")
        self.namespace = namespace
        self.scope = scope
        self.workloads = [w for w in source.stateful if scope in ("all", w.name)]
        self.existing_backup = backup_name.strip()
        self.keep_backup = keep_backup
        self.approval = approval
        self.names = drill_names(namespace, env.run_id)
        self.backup_name = self.existing_backup or self.names["backup"]
        self.target = self.names["target"]
        self.timeout_s = (timeout_minutes or params.velero.timeout_minutes) * 60
        self.pods_timeout_s = params.velero.pod_ready_timeout_minutes * 60
        super().__init__(DRILL, env, rpo_target_s=params.velero.rpo_minutes * 60)
        self.velero = VeleroApi(env.kube, params.velero.namespace)
        self.core = client.CoreV1Api(env.kube)
        self.labels = drill_labels(env.run_id, namespace)
        self.definitions: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, rabbitmq.CanaryMessage] = {}
        self.rows: dict[str, mysql.CanaryRow] = {}
        self.backup_obj: dict[str, Any] = {}
        self.stored: velero_verify.StoredBackup | None = None
        self.progress: dict[str, Progress] = {"backup": Progress(), "restore": Progress()}
        self.facts.update(namespace=namespace, scope=scope, backup=self.backup_name, target=self.target,
                          restore=self.names["restore"])

    # --- helpers -------------------------------------------------------------------------------

    def _label_selector(self) -> dict[str, Any] | None:
        return None if self.scope == "all" else {"matchLabels": {WORKLOAD_LABEL: self.scope}}

    def _stop_on_failed_checks(self, what: str) -> None:
        failed = [c for c in self.checks if not c.ok]
        if failed:
            raise OpsbookError(f"{what}: " + "; ".join(f"{c.name}: {c.detail}" for c in failed))

    def _check_rows(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        for r in rows:
            self.check(r["check"], r["ok"], r["detail"])
        return pd.DataFrame(rows, columns=["check", "ok", "detail"])

    # --- steps ---------------------------------------------------------------------------------

    def preflight(self) -> pd.DataFrame:
        """Step: storage location Available, source and its StatefulSets there, the drill's names free."""
        with self.step("preflight"):
            require_approval(self.env, self.approval, f"the {DRILL} drill")
            vparams = self.env.params.velero
            location = self.velero.get("backupstoragelocations", vparams.storage_location)
            phase = ((location or {}).get("status") or {}).get("phase")
            self.check("storage location Available", phase == "Available",
                       f"{vparams.storage_location}: " + (phase or "missing") + (
                           f" ({(location.get('status') or {}).get('message')})" if location and phase != "Available"
                           and (location.get("status") or {}).get("message") else ""))
            if vparams.snapshot_location:
                vsl = self.velero.get("volumesnapshotlocations", vparams.snapshot_location)
                self.check("volume snapshot location", vsl is not None,
                           f"{vparams.snapshot_location}: " + ("present" if vsl else "missing"))
            try:
                self.core.read_namespace(self.namespace)
                self.check("source namespace", True, f"{self.namespace} exists")
            except ApiException as exc:
                self.check("source namespace", False, f"{self.namespace}: {exc.status} {exc.reason}")
            apps = client.AppsV1Api(self.env.kube)
            for workload in self.workloads:
                try:
                    sts = apps.read_namespaced_stateful_set(workload.name, self.namespace)
                    self.check(f"StatefulSet {workload.name}", True, f"{sts.spec.replicas} replicas")
                except ApiException as exc:
                    self.check(f"StatefulSet {workload.name}", False, f"not in {self.namespace} ({exc.status})")
            try:
                self.core.read_namespace(self.target)
                self.check("drill namespace free", False, f"{self.target} already exists: this run id was used "
                                                          "before; start a new run or run `opsbook cleanup`")
            except ApiException as exc:
                self.check("drill namespace free", exc.status == 404, f"{self.target}: not there yet")
            backup = self.velero.get("backups", self.backup_name)
            if self.existing_backup:
                phase = ((backup or {}).get("status") or {}).get("phase")
                self.check("given backup", phase in ("Completed", "PartiallyFailed"),
                           f"{self.backup_name}: {phase or 'not found'}")
            else:
                self.check("backup name free", backup is None, f"{self.backup_name}: " + (
                    "already exists: start a new run" if backup else "free"))
            self._stop_on_failed_checks("preflight failed, nothing was changed")
        return self.checks_table()

    def canary(self) -> pd.DataFrame:
        """Step: record each broker's definitions and publish a canary message; write a canary row per database."""
        rows = []
        with self.step("canary"):
            for workload in self.workloads:
                if workload.kind == "rabbitmq":
                    broker = rabbitmq.broker_for(self.env, self.namespace, workload.name)
                    queue = self.env.params.stateful_access.rabbitmq.canary_queue
                    message = rabbitmq.publish_canary(broker, queue, self.env.run_id, DRILL)
                    # the canary queue is part of what the backup must bring back
                    self.definitions[workload.name] = rabbitmq.Management(broker).definitions()
                    self.messages[workload.name] = message
                    counts = rabbitmq.count_by_kind(self.definitions[workload.name])
                    rows.append({"workload": workload.name, "kind": "rabbitmq", "canary": message.message_id,
                                 "written_at": message.published_at,
                                 "recorded": ", ".join(f"{v} {k}" for k, v in counts.items())})
                else:
                    target = database_target(self.env, self.namespace, workload, self.namespace)
                    row = mysql.write_canary(target, self.env.run_id, DRILL, "velero")
                    self.rows[workload.name] = row
                    rows.append({"workload": workload.name, "kind": "mysql", "canary": f"row {row.id}",
                                 "written_at": row.written_at, "recorded": f"{target.database}.{mysql.CANARY_TABLE}"})
            self.facts["canaries"] = [{**r, "written_at": r["written_at"].isoformat()} for r in rows]
        return pd.DataFrame(rows, columns=["workload", "kind", "canary", "written_at", "recorded"])

    def backup(self) -> pd.DataFrame:
        """Step: a Backup of the namespace watched to a terminal phase (or the given existing one)."""
        with self.step("backup"):
            if self.existing_backup:
                obj = self.velero.get("backups", self.backup_name) or {}
            else:
                vparams = self.env.params.velero
                item = self.on_cleanup(f"delete backup {self.backup_name} (DeleteBackupRequest)",
                                       lambda: velero_teardown.delete_backup(self.velero, self.backup_name,
                                                                             self.timeout_s, self.labels[RUN_LABEL]))
                if self.keep_backup:
                    self.forget_cleanup(item)
                self.velero.create("backups", backup_body(
                    self.backup_name, [self.namespace], self.labels, vparams.backup_ttl, snapshot_volumes=True,
                    storage_location=vparams.storage_location, snapshot_location=vparams.snapshot_location,
                    label_selector=self._label_selector()))
                obj = self.velero.wait("backups", self.backup_name, BACKUP_TERMINAL, self.timeout_s,
                                       on_change=show_progress, progress=self.progress["backup"])
            self.backup_obj = obj
            status = obj.get("status") or {}
            self.facts["backup_status"] = {k: status.get(k) for k in (
                "phase", "startTimestamp", "completionTimestamp", "volumeSnapshotsAttempted",
                "volumeSnapshotsCompleted", "errors", "warnings")}
            self.facts["backup_progress"] = self.progress["backup"].seen
            if status.get("phase") != "Completed":
                raise OpsbookError(describe_failed_backup(obj),
                                   remedy=f"see `velero backup describe {self.backup_name} --details` and "
                                          f"`velero backup logs {self.backup_name}`")
        return status_table(obj)

    def verify_backup(self) -> pd.DataFrame:
        """Step: the backup's files in the storage location's bucket, and its EBS snapshots in EC2."""
        with self.step("verify backup"):
            location = velero_verify.storage_location(self.velero, self.backup_obj,
                                                      self.env.params.velero.storage_location)
            self.stored, rows = velero_verify.read_backup_store(self.env.aws("s3"), location, self.backup_name)
            rows += velero_verify.snapshot_rows(self.env.aws("ec2"), self.stored, self.backup_obj.get("status") or {})
            table = self._check_rows(rows)
            failed = [r for r in rows if not r["ok"]]
            if failed:
                raise OpsbookError("the backup is not whole where Velero keeps it: "
                                   + "; ".join(f"{r['check']}: {r['detail']}" for r in failed))
        return table

    def restore(self) -> pd.DataFrame:
        """Step: the drill namespace (labelled), then a Restore mapped into it, watched to a terminal phase."""
        with self.step("restore"):
            ec2 = self.env.aws("ec2")
            self.on_cleanup(f"delete namespace {self.target} with its restored volumes",
                            lambda: velero_teardown.delete_drill_namespace(
                                self.env.kube, ec2, self.target, self.timeout_s,
                                poll_s=self.env.params.velero.poll_seconds, run_id=self.labels[RUN_LABEL]))
            self.core.create_namespace({"metadata": {"name": self.target, "labels": dict(self.labels)}})
            name = self.names["restore"]
            self.velero.create("restores", restore_body(name, self.backup_name, {self.namespace: self.target},
                                                        self.labels, self._label_selector()))
            obj = self.velero.wait("restores", name, RESTORE_TERMINAL, self.timeout_s, done_key="itemsRestored",
                                   on_change=show_progress, progress=self.progress["restore"])
            status = obj.get("status") or {}
            self.facts["restore_status"] = {k: status.get(k) for k in (
                "phase", "startTimestamp", "completionTimestamp", "errors", "warnings")}
            if status.get("phase") != "Completed":
                raise OpsbookError(describe_failed_restore(obj),
                                   remedy=f"see `velero restore describe {name} --details` and "
                                          f"`velero restore logs {name}`")
        return status_table(obj, done_key="itemsRestored")

    def verify(self) -> pd.DataFrame:
        """Step: objects, claims and volumes, pods Ready, and the data (definitions, canaries) in the copy."""
        with self.step("verify"):
            if self.stored is None:
                raise OpsbookError("verify needs the backup's contents, read by verify_backup, which has not run",
                                   remedy="run verify_backup first")
            rows = velero_verify.restored_object_rows(self.env.kube, self.stored, self.namespace, self.target)
            volume_rows, volumes = velero_verify.restored_volume_rows(
                self.env.kube, self.env.aws("ec2"), self.stored, self.namespace, self.target)
            rows += volume_rows
            self.facts["restored_volumes"] = [v.__dict__ for v in volumes]
            rows += velero_verify.wait_pods_ready(self.env.kube, self.target, [w.name for w in self.workloads],
                                                  self.pods_timeout_s, self.env.params.velero.poll_seconds)
            contained: list[datetime] = []
            for workload in self.workloads:
                if workload.kind == "rabbitmq":
                    rows += self._verify_broker(workload, contained)
                else:
                    rows += self._verify_database(workload, contained)
            started = parse_time((self.backup_obj.get("status") or {}).get("startTimestamp"))
            if contained and started is not None:
                self.rpo_s = round(max(0.0, (started - max(contained)).total_seconds()), 3)
            table = self._check_rows(rows)
        return table

    def _verify_broker(self, workload: StatefulWorkload, contained: list[datetime]) -> list[dict[str, Any]]:
        restored = rabbitmq.broker_for(self.env, self.target, workload.name)
        whole = restored.vhost is None
        got = rabbitmq.Management(restored).definitions()
        diff = rabbitmq.compare_definitions(self.definitions.get(workload.name, {}), got, whole_broker=whole)
        rows = []
        for kind in rabbitmq.DEFINITION_KINDS:
            part = diff[diff["kind"] == kind]
            bad = part[part["status"] != "same"]
            detail = (f"{len(part)} equal to those recorded at backup time" if bad.empty else
                      "; ".join(f"{r.item} {r.status}" for r in bad.itertuples()))
            rows.append(velero_verify.row(f"{workload.name} {kind}", bad.empty, detail))
        message = self.messages.get(workload.name)
        queue = self.env.params.stateful_access.rabbitmq.canary_queue
        found = {m.message_id: m for m in rabbitmq.read_canaries(restored, queue, run_id=self.env.run_id)}
        if message is None:
            rows.append(velero_verify.row(f"{workload.name} canary message", False, "no canary was published"))
        elif message.message_id in found:
            contained.append(message.published_at)
            rows.append(velero_verify.row(f"{workload.name} canary message", True,
                                          f"{message.message_id} (published {message.published_at:%H:%M:%S}) "
                                          f"is in {queue} of the restored broker"))
        else:
            started = (self.backup_obj.get("status") or {}).get("startTimestamp")
            rows.append(velero_verify.row(
                f"{workload.name} canary message", False,
                f"the restored broker lacks canary {message.message_id} published at "
                f"{message.published_at.isoformat(timespec='seconds')} (backup {self.backup_name} started {started})"))
        return rows

    def _verify_database(self, workload: StatefulWorkload, contained: list[datetime]) -> list[dict[str, Any]]:
        target = database_target(self.env, self.target, workload, self.namespace)
        row = self.rows.get(workload.name)
        if row is None:
            return [velero_verify.row(f"{workload.name} canary row", False, "no canary row was written")]
        found = {r.id for r in mysql.read_canaries(target, run_id=self.env.run_id)}
        if row.id in found:
            contained.append(row.written_at)
            return [velero_verify.row(f"{workload.name} canary row", True,
                                      f"row {row.id} (written {row.written_at:%H:%M:%S}) is in {target.database}")]
        started = (self.backup_obj.get("status") or {}).get("startTimestamp")
        return [velero_verify.row(f"{workload.name} canary row", False,
                                  f"the restored database {target.database} lacks canary row {row.id} written at "
                                  f"{row.written_at.isoformat(timespec='seconds')} (backup started {started})")]

    def teardown(self) -> pd.DataFrame:
        """Step: delete the drill namespace with its volumes, and the backup unless kept."""
        with self.step("teardown"):
            self.run_cleanup()
            failed = [c for c in self.cleanups if not c.done]
            if failed:
                raise OpsbookError(self.cleanup_status(), remedy=self.cleanup_remedy())
        return self.cleanup_table()


# --- tables and messages ------------------------------------------------------------------------


def show_progress(obj: dict[str, Any]) -> None:
    """One line per change while waiting (papermill streams it into the run's output)."""
    status = obj.get("status") or {}
    progress = status.get("progress") or {}
    done = progress.get("itemsBackedUp", progress.get("itemsRestored"))
    items = f", {done}/{progress.get('totalItems')} items" if progress.get("totalItems") else ""
    print(f"{datetime.now(UTC):%H:%M:%S} {obj.get('kind', '').lower()} {obj['metadata']['name']}: "
          f"{status.get('phase') or 'New'}{items}", flush=True)


def status_table(obj: dict[str, Any], done_key: str = "itemsBackedUp") -> pd.DataFrame:
    status = obj.get("status") or {}
    progress = status.get("progress") or {}
    start, end = parse_time(status.get("startTimestamp")), parse_time(status.get("completionTimestamp"))
    row = {"name": obj["metadata"]["name"], "phase": status.get("phase"),
           "items": f"{progress.get(done_key, 0)}/{progress.get('totalItems', 0)}",
           "errors": status.get("errors", 0), "warnings": status.get("warnings", 0),
           "started": status.get("startTimestamp"), "seconds": (end - start).total_seconds() if start and end else None}
    if obj.get("kind") == "Backup":
        row["volume snapshots"] = (f"{status.get('volumeSnapshotsCompleted', 0)}/"
                                   f"{status.get('volumeSnapshotsAttempted', 0)}")
        row["expires"] = status.get("expiration")
    return pd.DataFrame([row])


def describe_failed_backup(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    name, phase = obj["metadata"]["name"], status.get("phase")
    parts = [f"backup {name} ended {phase}"]
    if status.get("validationErrors"):
        parts.append("validation errors: " + "; ".join(status["validationErrors"]))
    if status.get("failureReason"):
        parts.append(f"failure reason: {status['failureReason']}")
    attempted, completed = status.get("volumeSnapshotsAttempted", 0), status.get("volumeSnapshotsCompleted", 0)
    if attempted != completed:
        parts.append(f"{attempted - completed} of {attempted} volume snapshots failed")
    if status.get("errors"):
        parts.append(f"{status['errors']} errors")
    return "; ".join(parts)


def describe_failed_restore(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    name = obj["metadata"]["name"]
    parts = [f"restore {name} ended {status.get('phase')}"]
    if status.get("validationErrors"):
        parts.append("validation errors: " + "; ".join(status["validationErrors"]))
    if status.get("failureReason"):
        parts.append(f"failure reason: {status['failureReason']}")
    if status.get("errors"):
        parts.append(f"{status['errors']} errors")
    return "; ".join(parts)
