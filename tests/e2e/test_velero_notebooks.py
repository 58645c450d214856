"""The Velero runbooks run by the runner on the sandbox, as `make demo` and CI run them: both pass
with their defaults, other namespaces and scopes work, and a drill restoring a backup taken before
its canary fails the run with the reason, after recording it and cleaning up."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from opsbook.clients import Env, new_run_id
from opsbook.drills.velero import drill_labels
from opsbook.drills.velero_api import BACKUP_TERMINAL, VeleroApi, backup_body
from opsbook.drills.velero_teardown import delete_backup
from opsbook.runner import describe_failure

from tests.notebook_runs import run, run_passing


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("velero-runs")


def test_restore_drill_passes_with_its_defaults(sandbox, sandbox_params, runs) -> None:
    result = run_passing("velero-restore-drill", runs)
    drill = result.records["drill"]
    assert drill["name"] == "velero-restore" and drill["verdict"] == "pass", drill["reason"]
    # no namespace given: the first one with stateful workloads in params
    assert drill["facts"]["namespace"] == next(n.name for n in sandbox_params.namespaces if n.stateful)
    # its EBS snapshots were waited for, and what Velero does not restore is listed, not missing
    checks = {c["name"]: c for c in drill["checks"]}
    assert [c for name, c in checks.items() if name.startswith("EBS snapshot of ")]
    assert any(s["reason"].startswith("a finished pod") for s in drill["facts"]["not_restored"])
    assert [s["name"] for s in drill["steps"]] == ["preflight", "canary", "backup", "verify backup", "restore",
                                                   "verify", "teardown"]
    assert drill["rto_s"] <= drill["rto_target_s"] and drill["rpo_s"] <= drill["rpo_target_s"]
    assert (result.run_dir / "report.html").is_file()


def test_restore_drill_of_a_database_namespace_and_one_workload(sandbox, runs) -> None:
    result = run_passing("velero-restore-drill", runs, overrides={"namespace": "customer-panel",
                                                                  "scope": "customer-panel-db"})
    checks = {c["name"]: c for c in result.records["drill"]["checks"]}
    assert checks["customer-panel-db canary row"]["ok"]


def test_backup_audit_passes_with_its_defaults(sandbox, runs) -> None:
    result = run_passing("velero-backup-audit", runs, overrides={"strict": True})
    assert result.records["summary"]["fail"] == 0 and result.records["summary"]["pass"] > 0
    assert {r["area"] for r in result.records["checks"]} == {"storage", "schedules", "backups"}


def test_a_drill_from_a_backup_older_than_its_canary_fails_the_run(sandbox, sandbox_params, runs) -> None:
    env = Env(params=sandbox_params, run_id=new_run_id())
    api = VeleroApi(env.kube, sandbox_params.velero.namespace)
    old = f"older-{uuid.uuid4().hex[:8]}"
    api.create("backups", backup_body(old, ["rabbitmq"], drill_labels(env.run_id, "rabbitmq"), "1h0m0s"))
    assert api.wait("backups", old, BACKUP_TERMINAL, 120)["status"]["phase"] == "Completed"
    try:
        result = run("velero-restore-drill", runs, overrides={"backup_name": old})
        assert not result.ok
        drill = result.records["drill"]
        assert drill["verdict"] == "fail" and "the restored broker lacks canary" in drill["reason"]
        assert "lacks canary" in describe_failure(result)
        target = drill["facts"]["target"]
        with pytest.raises(ApiException) as exc:
            client.CoreV1Api(env.kube).read_namespace(target)
        assert exc.value.status == 404
    finally:
        delete_backup(api, old)
