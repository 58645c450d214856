"""Velero pieces without a cluster: broker definition comparison, the audit's verdicts, the rules of what
a restore leaves out, and the params that say how to reach a workload. (Velero's formats: test_velero_formats.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from opsbook.dataplane.rabbitmq import compare_definitions
from opsbook.drills.velero_audit import AuditReport
from opsbook.errors import OpsbookError, ParamsError
from opsbook.params import load_params

ROOT = Path(__file__).resolve().parents[2]


# --- broker definitions ---------------------------------------------------------------------------


def _defs(vhost: str, ttl: int = 1000) -> dict:
    return {
        "vhosts": [{"name": vhost}],
        "queues": [{"name": "q", "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {"x-message-ttl": ttl}}],
        "exchanges": [{"name": "ex", "vhost": vhost, "type": "topic", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {}}],
        "bindings": [{"source": "ex", "vhost": vhost, "destination": "q", "destination_type": "queue",
                      "routing_key": "a.#", "arguments": {}}],
        "policies": [{"name": "p", "vhost": vhost, "pattern": "^q", "apply-to": "queues",
                      "definition": {"max-length": 5}, "priority": 0}],
    }


def test_a_broker_restored_under_another_vhost_compares_equal() -> None:
    diff = compare_definitions(_defs("a"), _defs("b"), whole_broker=False)
    assert set(diff["status"]) == {"same"} and len(diff) == 5


def test_whole_broker_comparison_keeps_the_vhost() -> None:
    diff = compare_definitions(_defs("a"), _defs("b"), whole_broker=True)
    assert set(diff["status"]) == {"missing", "extra"}


def test_missing_extra_and_changed_items_are_told_apart() -> None:
    restored = _defs("b", ttl=5)
    restored["bindings"] = []
    restored["exchanges"].append({"name": "new", "type": "fanout", "durable": True, "auto_delete": False,
                                  "internal": False, "arguments": {}})
    diff = compare_definitions(_defs("a"), restored, whole_broker=False).set_index(["kind", "item"])["status"]
    assert diff[("queues", "q")] == "differs"
    assert diff[("exchanges", "new")] == "extra"
    assert diff[("bindings", "ex -> queue q [a.#] {}")] == "missing"
    assert diff[("policies", "p")] == "same"


# --- audit verdicts -------------------------------------------------------------------------------


def test_audit_verdict_and_strict_mode() -> None:
    report = AuditReport()
    report.add("storage", "default", "pass", "Available")
    report.add("backups", "billing", "warn", "newer one PartiallyFailed")
    assert report.ok and report.verdict().startswith("pass") and report.raise_if_failed(True)
    report.add("schedules", "reports", "fail", "no Schedule includes this namespace")
    assert not report.ok and "reports: no Schedule" in report.verdict()
    assert report.raise_if_failed(False).startswith("fail")
    with pytest.raises(OpsbookError, match="no Schedule"):
        report.raise_if_failed(True)


# --- params ---------------------------------------------------------------------------------------


def _params_file(tmp_path: Path, stateful_access: dict) -> Path:
    data = yaml.safe_load((ROOT / "params" / "sandbox.yaml").read_text())
    data["extends"] = str(ROOT / "params" / "base-pl.yaml")
    data["stateful_access"] = stateful_access
    path = tmp_path / "sandbox-x.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_access_templates_accept_the_known_placeholders(tmp_path: Path) -> None:
    params = load_params(_params_file(tmp_path, {"mysql": {"database": "{namespace}_{service}_{database}"}}))
    assert params.stateful_access.mysql.database == "{namespace}_{service}_{database}"


def test_an_unknown_placeholder_names_file_and_field(tmp_path: Path) -> None:
    path = _params_file(tmp_path, {"rabbitmq": {"vhost": "{cluster}.{namespace}"}})
    with pytest.raises(ParamsError) as exc:
        load_params(path)
    assert str(path) in str(exc.value)
    assert "stateful_access.rabbitmq.vhost" in str(exc.value) and "{namespace}" in str(exc.value)


def test_environments_keep_the_in_cluster_default_and_the_sandbox_points_at_local_servers() -> None:
    prod, sandbox = load_params("prod-pl"), load_params("sandbox")
    assert prod.stateful_access.rabbitmq.host == "{service}.{namespace}.svc.cluster.local"
    assert prod.stateful_access.rabbitmq.vhost is None
    assert prod.stateful_access.mysql.password_ssm in prod.ssm.secure
    assert sandbox.stateful_access.rabbitmq.host == "127.0.0.1" and "{namespace}" in sandbox.stateful_access.rabbitmq.vhost
    assert sandbox.stateful_access.mysql.password_ssm in sandbox.ssm.secure


# --- what a restore leaves out, and volume data (velero_restored, velero_verify) -----------------------


def _item(group_resource: str, name: str, obj: dict, namespace: str = "app"):
    from opsbook.formats.velero import TarItem

    return TarItem(group_resource, namespace, name, obj)


@pytest.mark.parametrize("group_resource, name, obj, reason", [
    ("pods", "web-1", {"status": {"phase": "Running"}}, None),
    ("pods", "report-28912345-abcde", {"status": {"phase": "Succeeded"}}, "a finished pod (Succeeded)"),
    ("pods", "crashed", {"status": {"phase": "Failed"}}, "a finished pod (Failed)"),
    ("pods", "static-web", {"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}},
                            "status": {"phase": "Running"}}, "a mirror pod (the kubelet makes it)"),
    ("jobs.batch", "report-28912345", {"status": {"completionTime": "2025-03-01T03:01:35Z", "succeeded": 1}},
     "a finished Job (completed 2025-03-01T03:01:35Z)"),
    ("jobs.batch", "stuck", {"status": {"failed": 6}}, None),  # failed without a completion time: restored
    ("secrets", "app-token-x1y2z", {"type": "kubernetes.io/service-account-token"},
     "the token of ServiceAccount app (the cluster makes it again)"),
    ("secrets", "app-long-lived", {"type": "kubernetes.io/service-account-token"}, None),
    ("secrets", "app-token-x1y2z", {"type": "Opaque"}, None),
    ("events", "web.17f3", {}, "Velero never restores events"),
    ("configmaps", "settings", {}, None),
])
def test_what_velero_does_not_restore(group_resource: str, name: str, obj: dict, reason: str | None) -> None:
    from opsbook.drills.velero_restored import not_restored_reason

    assert not_restored_reason(_item(group_resource, name, obj), {"app", "default"}) == reason


def test_skipped_objects_are_named_by_reason_and_a_namespace_s_many_events_counted() -> None:
    from opsbook.drills.velero_restored import NAMED_SKIPS, Skipped, describe_skipped

    never = "Velero never restores events"
    events = [Skipped(f"Event/web.{i:x}", never) for i in range(NAMED_SKIPS + 3)]
    job = Skipped("Job/report-1", "a finished Job (completed 2025-03-01T03:01:35Z)")
    pod = Skipped("Pod/report-1-x", "a finished pod (Succeeded)")
    assert describe_skipped([job, *events, pod]) == (
        f"Job/report-1 (a finished Job (completed 2025-03-01T03:01:35Z)); {len(events)} Event objects ({never}); "
        "Pod/report-1-x (a finished pod (Succeeded))")
    assert describe_skipped(events[:NAMED_SKIPS]) == ", ".join(e.object for e in events[:NAMED_SKIPS]) + f" ({never})"


def _stored(snapshots: list, volume_info: list, claims: dict[str, str]):
    from opsbook.drills.velero_verify import StoredBackup
    from opsbook.formats.velero import Layout, VolumeInfo

    stored = StoredBackup("b1", "bucket", Layout(""), snapshots=snapshots,
                          volume_info=[VolumeInfo.of(v) for v in volume_info])
    stored.items = [_item("persistentvolumeclaims", claim, {"spec": {"volumeName": pv}}) for claim, pv in claims.items()]
    return stored


def test_every_pv_needs_a_completed_native_snapshot() -> None:
    from opsbook.drills.velero_verify import volume_data_rows

    snapshots = [{"spec": {"persistentVolumeName": "pv-a"}, "status": {"phase": "Completed",
                                                                        "providerSnapshotID": "snap-a"}},
                 {"spec": {"persistentVolumeName": "pv-f"}, "status": {"phase": "Failed"}}]
    infos = [{"pvName": "pv-n", "skipped": True, "skippedReason": "no applicable volumesnapshotter found"},
             {"pvName": "pv-c", "backupMethod": "CSISnapshot", "skipped": False,
              "csiSnapshotInfo": {"snapshotHandle": "snap-c"}}]
    stored = _stored(snapshots, infos, {"a": "pv-a", "c": "pv-c", "f": "pv-f", "n": "pv-n"})
    rows = {r["check"]: r for r in volume_data_rows(stored, {"volumeSnapshotsCompleted": 1,
                                                             "csiVolumeSnapshotsAttempted": 1,
                                                             "csiVolumeSnapshotsCompleted": 1}, "app")}
    assert rows["volume data of a"]["ok"] and "snap-a" in rows["volume data of a"]["detail"]
    assert rows["volume data of n"]["detail"] == ("PV pv-n has no completed snapshot: Velero skipped it: "
                                                  "no applicable volumesnapshotter found")
    assert "a CSI snapshot (snap-c)" in rows["volume data of c"]["detail"] and not rows["volume data of c"]["ok"]
    assert rows["volume data of f"]["detail"].endswith("its snapshot failed")
    assert rows["CSI volume snapshots"] == {"check": "CSI volume snapshots", "ok": True, "detail": "1 of 1 completed"}
    assert rows["volume snapshots listed"]["ok"]


def test_a_partially_failed_backup_concerns_only_the_namespaces_its_errors_name() -> None:
    from opsbook.drills.velero_audit import _errors_for

    missing = (" resource: /namespaces message: /fail to get the namespace ghost specified in "
               "backup.Spec.IncludedNamespaces")
    results = {"errors": {"velero": [missing]}, "warnings": {}}
    assert _errors_for(results, "billing") == []
    assert _errors_for(results, "ghost") == [missing]
    snapshot = {"errors": {"cluster": [" resource: /persistentvolumes name: /pv-1 message: /Error backing up item"]}}
    assert _errors_for(snapshot, "billing") == snapshot["errors"]["cluster"]  # cannot tell whose: counts for all
    assert _errors_for({"errors": {"namespaces": {"billing": ["x"]}}}, "reports") == []
    assert _errors_for("its results cannot be read: boom", "billing") == ["its results cannot be read: boom"]
