"""Every Velero object the library creates is valid against Velero's CRDs (lib/opsbook/contracts/velero/).

Validation is jsonschema over each CRD's openAPIV3Schema (with the OpenAPI-only keywords
taken out), plus a pruning check: a field the schema does not know would be dropped by
the API server without a word, so a body must not carry any.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from opsbook.contracts import contract_files
from opsbook.drills.velero import drill_labels, drill_names
from opsbook.drills.velero_api import backup_body, delete_request_body, label_value, restore_body
from opsbook.sandbox.kube.crds import CRD_DIR

# DeleteBackupRequest is not in Velero's contract: the emulator's CRD copies Velero's shape
EXTRA_CRDS = CRD_DIR / "opsbook.velero-extra.yaml"


def _schema(kind: str) -> dict[str, Any]:
    docs = []
    for path in [*contract_files("velero", "velero.io_*.yaml"), EXTRA_CRDS]:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if doc["spec"]["names"]["kind"] == kind:
            return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    raise AssertionError(f"no CRD for {kind}")


def _json_schema(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items()
               if not k.startswith("x-kubernetes-") and k not in ("nullable", "description", "format")}
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


def _unknown_fields(body: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    if not isinstance(body, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    props = schema.get("properties")
    if props is None:
        return []  # a map (additionalProperties) or free object: nothing is pruned
    out = []
    for key, value in body.items():
        if key not in props:
            out.append(f"{path}{key}")
        else:
            sub = props[key]
            if isinstance(value, list) and "items" in sub:
                for i, item in enumerate(value):
                    out += _unknown_fields(item, sub["items"], f"{path}{key}[{i}].")
            else:
                out += _unknown_fields(value, sub, f"{path}{key}.")
    return out


def check(kind: str, body: dict[str, Any]) -> None:
    schema = _schema(kind)
    jsonschema.validate(body, _json_schema(schema))
    assert _unknown_fields(body, schema) == [], f"{kind} fields the CRD does not know (pruned)"
    assert body["apiVersion"] == "velero.io/v1" and body["kind"] == kind
    for key, value in (body["metadata"].get("labels") or {}).items():
        assert len(value) <= 63 and label_value(value) == value, f"label {key}={value!r} is not a valid value"


LABELS = drill_labels("a1b2c3d4", "rabbitmq")


def test_backup_body_is_valid() -> None:
    body = backup_body("drill-rabbitmq-a1b2c3d4", ["rabbitmq"], LABELS, "72h0m0s", snapshot_volumes=True,
                       storage_location="default", snapshot_location="default",
                       label_selector={"matchLabels": {"app.kubernetes.io/name": "rabbitmq"}})
    check("Backup", body)
    assert body["spec"]["volumeSnapshotLocations"] == ["default"]


def test_backup_body_without_snapshots_names_no_snapshot_location() -> None:
    body = backup_body("b", ["billing"], {}, "1h0m0s", snapshot_volumes=False, snapshot_location="default")
    check("Backup", body)
    assert "volumeSnapshotLocations" not in body["spec"] and body["spec"]["snapshotVolumes"] is False


def test_restore_body_is_valid_and_maps_the_namespace() -> None:
    body = restore_body("drill-rabbitmq-a1b2c3d4-restore", "drill-rabbitmq-a1b2c3d4",
                        {"rabbitmq": "rabbitmq-drill-a1b2c3d4"}, LABELS)
    check("Restore", body)
    assert body["spec"]["namespaceMapping"] == {"rabbitmq": "rabbitmq-drill-a1b2c3d4"}
    assert body["spec"]["includedNamespaces"] == ["rabbitmq"]


def test_delete_backup_request_body_is_valid() -> None:
    backup = {"metadata": {"name": "drill-rabbitmq-a1b2c3d4", "uid": "0b1c2d3e-0000-4000-8000-000000000001"}}
    body = delete_request_body(backup)
    check("DeleteBackupRequest", body)
    assert body["spec"] == {"backupName": "drill-rabbitmq-a1b2c3d4"}
    assert body["metadata"]["labels"]["velero.io/backup-name"] == "drill-rabbitmq-a1b2c3d4"


def test_a_wrong_body_is_caught_by_the_check() -> None:
    body = backup_body("b", ["x"], {}, "1h0m0s")
    body["spec"]["snapshotVolumes"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        check("Backup", body)
    body = backup_body("b", ["x"], {}, "1h0m0s")
    body["spec"]["includeNamespaces"] = ["x"]  # misspelt: the API server would drop it
    with pytest.raises(AssertionError, match="pruned"):
        check("Backup", body)


def test_drill_names_and_labels() -> None:
    names = drill_names("customer-panel", "a1b2c3d4")
    assert names == {"backup": "drill-customer-panel-a1b2c3d4", "restore": "drill-customer-panel-a1b2c3d4-restore",
                     "target": "customer-panel-drill-a1b2c3d4"}
    assert LABELS["opsbook.io/run-id"] == "a1b2c3d4" and LABELS["opsbook.io/purpose"] == "drill"
    assert ":" not in LABELS["opsbook.io/created-at"]


def test_too_long_a_drill_namespace_is_refused() -> None:
    from opsbook.errors import UsageError

    with pytest.raises(UsageError, match="63 characters"):
        drill_names("n" * 50, "a1b2c3d4-e5f6")
