"""Velero pieces without a cluster: schedule expressions, the object-store layout, the tarball,
broker definition comparison, the audit's verdicts and the params that say how to reach a workload."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from opsbook.dataplane.rabbitmq import compare_definitions
from opsbook.drills.velero_audit import AuditReport
from opsbook.errors import OpsbookError, ParamsError, UsageError
from opsbook.formats.velero import Layout, parse, parse_go_duration, read_tarball, snapshot_pv_name
from opsbook.params import load_params

ROOT = Path(__file__).resolve().parents[2]


# --- schedules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("expr, after, expected", [
    ("0 2 * * *", datetime(2025, 3, 1, 1, 0), datetime(2025, 3, 1, 2, 0)),
    ("0 2 * * *", datetime(2025, 3, 1, 2, 0), datetime(2025, 3, 2, 2, 0)),
    ("*/15 * * * *", datetime(2025, 3, 1, 5, 7), datetime(2025, 3, 1, 5, 15)),
    ("30 1 * * 1-5", datetime(2025, 3, 1, 0, 0), datetime(2025, 3, 3, 1, 30)),  # Saturday -> Monday
    ("0 0 1 */3 *", datetime(2025, 2, 10), datetime(2025, 4, 1)),
    ("@daily", datetime(2025, 12, 31, 23, 59), datetime(2026, 1, 1)),
    ("0 12 * * sun", datetime(2025, 3, 1, 13, 0), datetime(2025, 3, 2, 12, 0)),
])
def test_next_run(expr: str, after: datetime, expected: datetime) -> None:
    assert parse(expr).next_after(after.replace(tzinfo=UTC)) == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize("expr, interval", [
    ("0 2 * * *", timedelta(days=1)), ("*/15 * * * *", timedelta(minutes=15)), ("@hourly", timedelta(hours=1)),
    ("0 2 * * 1-5", timedelta(days=3)), ("@every 6h", timedelta(hours=6)), ("0 */4 * * *", timedelta(hours=4)),
])
def test_interval_is_the_longest_gap(expr: str, interval: timedelta) -> None:
    assert parse(expr).interval(datetime(2025, 3, 1, tzinfo=UTC)) == interval


@pytest.mark.parametrize("expr, message", [
    ("0 2 * *", "five cron fields"), ("61 * * * *", "out of range"), ("x * * * *", "not a number"),
    ("*/0 * * * *", "bad step"), ("@every soon", "five cron fields"),
])
def test_bad_schedules_say_what_is_expected(expr: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(expr)


def test_go_durations() -> None:
    assert parse_go_duration("72h0m0s") == timedelta(hours=72)
    assert parse_go_duration("1h30m") == timedelta(minutes=90)
    with pytest.raises(UsageError, match="72h0m0s"):
        parse_go_duration("3 days")


# --- the object store ---------------------------------------------------------------------------


def test_layout_keys_are_velero_s() -> None:
    # the names of pkg/persistence/object_store_layout.go, written out independently
    files = Layout("").backup_files("b1")
    assert files["metadata"] == "backups/b1/velero-backup.json"
    assert files["contents"] == "backups/b1/b1.tar.gz"
    assert files["log"] == "backups/b1/b1-logs.gz"
    assert files["resource list"] == "backups/b1/b1-resource-list.json.gz"
    assert files["volume snapshots"] == "backups/b1/b1-volumesnapshots.json.gz"
    assert files["results"] == "backups/b1/b1-results.gz"
    assert files["csi volume snapshot contents"] == "backups/b1/b1-csi-volumesnapshotcontents.json.gz"
    assert files["volume info"] == "backups/b1/b1-volumeinfo.json.gz"
    prefixed = Layout("/cluster-a/")
    assert prefixed.backup_contents("b1") == "cluster-a/backups/b1/b1.tar.gz"
    assert prefixed.restore_log("r1") == "cluster-a/restores/r1/restore-r1-logs.gz"
    assert prefixed.restore_results("r1") == "cluster-a/restores/r1/restore-r1-results.gz"


def test_read_tarball_reads_the_classic_paths() -> None:
    buf = io.BytesIO()
    entries = {
        "metadata/version": b"1.1.0",
        "resources/statefulsets.apps/namespaces/rabbitmq/rabbitmq.json": json.dumps({"kind": "StatefulSet"}).encode(),
        "resources/statefulsets.apps/v1-preferredversion/namespaces/rabbitmq/rabbitmq.json": b"{}",
        "resources/persistentvolumes/cluster/pvc-1.json": json.dumps({"kind": "PersistentVolume"}).encode(),
    }
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    version, items = read_tarball(buf.getvalue())
    assert version == "1.1.0"
    assert sorted((i.group_resource, i.namespace, i.name) for i in items) == [
        ("persistentvolumes", None, "pvc-1"), ("statefulsets.apps", "rabbitmq", "rabbitmq")]


def test_snapshot_list_pv_name_in_either_spelling() -> None:
    assert snapshot_pv_name({"spec": {"PersistentVolumeName": "pv-a"}}) == "pv-a"
    assert snapshot_pv_name({"spec": {"persistentVolumeName": "pv-b"}}) == "pv-b"


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
