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
