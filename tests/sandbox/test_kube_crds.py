"""Custom resources: the Velero CRDs (validated against their openAPIV3Schema), CRDs installed at
run time, and discovery of both, through the official kubernetes client and its DynamicClient."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException
from opsbook.contracts import contract_files, contract_path
from opsbook.sandbox.kube.crds import CRD_DIR, crd_files

VELERO = ("velero.io", "v1")


def failure(call, *args, **kwargs) -> tuple[int, dict]:
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    return info.value.status, json.loads(info.value.body)


def backup(name: str, **spec) -> dict:
    return {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name},
            "spec": {"includedNamespaces": ["billing"], "ttl": "720h0m0s", "storageLocation": "default", **spec}}


# --- the bundled CRDs --------------------------------------------------------------------------------


def test_velero_crds_are_served_from_the_vendored_contract():
    """Velero's CRDs are read from the one vendored copy (opsbook.contracts), with no copy of their own."""
    velero = contract_files("velero", "*.yaml")
    assert {p.name for p in velero} >= {"velero.io_backups.yaml", "velero.io_restores.yaml"}
    assert set(crd_files()) == {*velero, *CRD_DIR.glob("*.yaml")}
    assert not {p.name for p in CRD_DIR.glob("*.yaml")} & {p.name for p in velero}, "a duplicate of the contract"


def test_installed_crds_are_listed_and_established(api_client):
    ext = client.ApiextensionsV1Api(api_client)
    names = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    expected = set()
    for path in crd_files():
        expected |= {d["metadata"]["name"] for d in yaml.safe_load_all(path.read_text()) if d}
    assert expected <= names
    assert {"backups.velero.io", "restores.velero.io", "schedules.velero.io", "backupstoragelocations.velero.io",
            "deletebackuprequests.velero.io", "volumesnapshotlocations.velero.io"} <= names
    crd = ext.read_custom_resource_definition("backups.velero.io")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True"
    assert crd.spec.names.kind == "Backup" and crd.spec.scope == "Namespaced"


# --- CRUD on a custom resource -------------------------------------------------------------------------


def test_backup_crud_codes(custom, ns):
    created = custom.create_namespaced_custom_object(*VELERO, ns, "backups", backup("b1"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert created["metadata"]["generation"] == 1 and created["metadata"]["namespace"] == ns

    status, body = failure(custom.create_namespaced_custom_object, *VELERO, ns, "backups", backup("b1"))
    assert (status, body["reason"]) == (409, "AlreadyExists")
    status, body = failure(custom.get_namespaced_custom_object, *VELERO, ns, "backups", "missing")
    assert (status, body["reason"]) == (404, "NotFound")
    assert body["message"] == 'backups.velero.io "missing" not found'

    listed = custom.list_namespaced_custom_object(*VELERO, ns, "backups")
    assert listed["kind"] == "BackupList" and [i["metadata"]["name"] for i in listed["items"]] == ["b1"]
    assert listed["items"][0]["kind"] == "Backup"  # custom resource lists keep kind on items

    patched = custom.patch_namespaced_custom_object(*VELERO, ns, "backups", "b1", {"spec": {"ttl": "24h0m0s"}})
    assert patched["spec"]["ttl"] == "24h0m0s" and patched["metadata"]["generation"] == 2
    json_patched = custom.patch_namespaced_custom_object(
        *VELERO, ns, "backups", "b1", [{"op": "add", "path": "/spec/includedNamespaces/-", "value": "reports"}],
        _content_type="application/json-patch+json")
    assert json_patched["spec"]["includedNamespaces"] == ["billing", "reports"]
    # custom resources have no strategic merge patch, as on a real API server
    status, body = failure(custom.patch_namespaced_custom_object, *VELERO, ns, "backups", "b1", {"spec": {}},
                           _content_type="application/strategic-merge-patch+json")
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")

    # Velero's CRDs have no status subresource: the controller writes status with the object
    current = custom.get_namespaced_custom_object(*VELERO, ns, "backups", "b1")
    current["status"] = {"phase": "Completed", "startTimestamp": "2024-05-01T01:00:00Z"}
    replaced = custom.replace_namespaced_custom_object(*VELERO, ns, "backups", "b1", current)
    assert replaced["status"]["phase"] == "Completed"

    stale = dict(current, metadata=dict(current["metadata"], resourceVersion=created["metadata"]["resourceVersion"]))
    status, body = failure(custom.replace_namespaced_custom_object, *VELERO, ns, "backups", "b1", stale)
    assert (status, body["reason"]) == (409, "Conflict")

    custom.delete_namespaced_custom_object(*VELERO, ns, "backups", "b1")
    status, _ = failure(custom.get_namespaced_custom_object, *VELERO, ns, "backups", "b1")
    assert status == 404


# --- validation against openAPIV3Schema -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("plural", "obj", "field", "reason"),
    [
        ("backups", backup("bad-ttl", ttl=720), "spec.ttl", "FieldValueTypeInvalid"),
        ("backups", backup("bad-ns", includedNamespaces="billing"), "spec.includedNamespaces",
         "FieldValueTypeInvalid"),
        ("backups", {**backup("bad-phase"), "status": {"phase": "Exploded"}}, "status.phase",
         "FieldValueNotSupported"),
        ("backups", {**backup("bad-time"), "status": {"startTimestamp": "yesterday"}}, "status.startTimestamp",
         "FieldValueInvalid"),
        ("deletebackuprequests", {"apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
                                  "metadata": {"name": "dbr"}, "spec": {}}, "spec.backupName", "FieldValueRequired"),
        ("volumesnapshotlocations", {"apiVersion": "velero.io/v1", "kind": "VolumeSnapshotLocation",
                                     "metadata": {"name": "vsl"}, "spec": {"config": {"region": 1}}},
         "spec.config.region", "FieldValueTypeInvalid"),
        ("schedules", {"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": "s"},
                       "spec": {"template": {}}}, "spec.schedule", "FieldValueRequired"),
    ],
)
def test_invalid_velero_objects_get_422_with_causes(custom, ns, plural, obj, field, reason):
    status, body = failure(custom.create_namespaced_custom_object, *VELERO, ns, plural, obj)
    assert status == 422 and body["reason"] == "Invalid", body
    causes = body["details"]["causes"]
    assert (field, reason) in {(c["field"], c["reason"]) for c in causes}, causes
    assert body["details"]["name"] == obj["metadata"]["name"]
    assert f'"{obj["metadata"]["name"]}" is invalid' in body["message"]
    # nothing was stored
    status, _ = failure(custom.get_namespaced_custom_object, *VELERO, ns, plural, obj["metadata"]["name"])
    assert status == 404


def test_invalid_update_is_422_and_keeps_the_object(custom, ns):
    custom.create_namespaced_custom_object(*VELERO, ns, "backups", backup("keep"))
    status, body = failure(custom.patch_namespaced_custom_object, *VELERO, ns, "backups", "keep",
                           {"spec": {"ttl": 5}})
    assert (status, body["reason"]) == (422, "Invalid")
    assert custom.get_namespaced_custom_object(*VELERO, ns, "backups", "keep")["spec"]["ttl"] == "720h0m0s"


def test_nullable_fields_accept_null(custom, ns):
    created = custom.create_namespaced_custom_object(
        *VELERO, ns, "backups", backup("nulls", includedNamespaces=None, excludedNamespaces=None))
    assert created["spec"]["includedNamespaces"] is None


def test_unknown_fields_are_pruned_or_rejected_when_strict(custom, ns):
    created = custom.create_namespaced_custom_object(*VELERO, ns, "backups", backup("extra", notAField=1))
    assert "notAField" not in created["spec"]
    status, body = failure(custom.create_namespaced_custom_object, *VELERO, ns, "backups",
                           backup("strict", notAField=1), field_validation="Strict")
    assert status == 400 and "unknown field" in body["message"]


def test_schema_defaults_are_applied(custom, ns):
    bsl = {"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "metadata": {"name": "aws"},
           "spec": {"provider": "aws", "objectStorage": {"bucket": "b"}, "credential": {"key": "cloud"}}}
    created = custom.create_namespaced_custom_object(*VELERO, ns, "backupstoragelocations", bsl)
    crd = yaml.safe_load(contract_path("velero", "velero.io_backupstoragelocations.yaml").read_text())
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert created["spec"]["credential"]["name"] == props["credential"]["properties"]["name"]["default"]


# --- CRDs installed at run time, with a status subresource ----------------------------------------------


def widget_crd(group: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                }}},
            }],
        },
    }


def test_crd_with_status_subresource(api_client, custom, ns):
    ext = client.ApiextensionsV1Api(api_client)
    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    ext.create_custom_resource_definition(widget_crd(group))
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": 2}, "status": {"ready": True}}
    created = custom.create_namespaced_custom_object(group, "v1", ns, "widgets", widget)
    assert "status" not in created  # status is dropped on create when the subresource exists

    ignored = custom.patch_namespaced_custom_object(group, "v1", ns, "widgets", "w", {"status": {"ready": True}})
    assert "status" not in ignored and ignored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    updated = custom.patch_namespaced_custom_object_status(group, "v1", ns, "widgets", "w",
                                                           {"status": {"ready": True}, "spec": {"size": 9}})
    assert updated["status"] == {"ready": True} and updated["spec"]["size"] == 2
    assert updated["metadata"]["generation"] == 1

    status, body = failure(custom.patch_namespaced_custom_object, group, "v1", ns, "widgets", "w",
                           {"spec": {"size": 0}})
    assert status == 422 and body["details"]["causes"][0]["field"] == "spec.size"

    ext.delete_custom_resource_definition(f"widgets.{group}")
    status, _ = failure(custom.list_namespaced_custom_object, group, "v1", ns, "widgets")
    assert status == 404


def test_status_subresource_is_404_without_it(custom, ns):
    custom.create_namespaced_custom_object(*VELERO, ns, "backups", backup("nosub"))
    status, _ = failure(custom.patch_namespaced_custom_object_status, *VELERO, ns, "backups", "nosub",
                        {"status": {"phase": "New"}})
    assert status == 404


# --- discovery ----------------------------------------------------------------------------------------


def test_version(api_client):
    info = client.VersionApi(api_client).get_code()
    assert info.major == "1" and info.minor.rstrip("+") == "30" and info.git_version.startswith("v1.30.")


def test_discovery_of_builtin_kinds(api_client):
    core = client.CoreV1Api(api_client).get_api_resources()
    by_name = {r.name: r for r in core.resources}
    assert by_name["pods"].kind == "Pod" and by_name["pods"].namespaced
    assert not by_name["nodes"].namespaced and not by_name["namespaces"].namespaced
    assert set(by_name["pods"].verbs) >= {"create", "delete", "get", "list", "patch", "update", "watch"}
    assert "pods/status" in by_name and "configmaps/status" not in by_name
    groups = {g.name: g for g in client.ApisApi(api_client).get_api_versions().groups}
    assert {"apps", "storage.k8s.io", "apiextensions.k8s.io", "velero.io", "metrics.k8s.io"} <= set(groups)
    assert groups["velero.io"].preferred_version.group_version == "velero.io/v1"
    apps = {r.name: r for r in client.AppsV1Api(api_client).get_api_resources().resources}
    assert {"deployments", "statefulsets", "daemonsets", "replicasets"} <= set(apps)


def test_dynamic_client_finds_builtin_and_velero_kinds(api_client, ns):
    dyn = dynamic.DynamicClient(api_client)
    backups = dyn.resources.get(api_version="velero.io/v1", kind="Backup")
    assert backups.namespaced and backups.name == "backups"
    for api_version, kind, namespaced in (
        ("v1", "Pod", True), ("v1", "Node", False), ("apps/v1", "StatefulSet", True),
        ("storage.k8s.io/v1", "StorageClass", False), ("velero.io/v1", "Schedule", True),
        ("velero.io/v1", "BackupStorageLocation", True), ("velero.io/v1", "DeleteBackupRequest", True),
        ("velero.io/v1", "VolumeSnapshotLocation", True), ("metrics.k8s.io/v1beta1", "PodMetrics", True),
    ):
        assert dyn.resources.get(api_version=api_version, kind=kind).namespaced is namespaced
    created = backups.create(body=backup("dyn"), namespace=ns)
    assert created.metadata.name == "dyn"
    got = backups.get(name="dyn", namespace=ns)
    assert got.spec.ttl == "720h0m0s"
    assert [b.metadata.name for b in backups.get(namespace=ns).items] == ["dyn"]


def test_int_or_string_and_preserved_unknown_fields(api_client, custom, ns):
    ext = client.ApiextensionsV1Api(api_client)
    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    crd = widget_crd(group)
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["maxUnavailable"] = {"x-kubernetes-int-or-string": True}
    spec_schema["properties"]["extra"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    ext.create_custom_resource_definition(crd)

    def widget(name: str, **spec) -> dict:
        return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}

    as_int = custom.create_namespaced_custom_object(group, "v1", ns, "widgets", widget("i", maxUnavailable=1))
    as_str = custom.create_namespaced_custom_object(group, "v1", ns, "widgets", widget("s", maxUnavailable="25%"))
    assert (as_int["spec"]["maxUnavailable"], as_str["spec"]["maxUnavailable"]) == (1, "25%")
    status, body = failure(custom.create_namespaced_custom_object, group, "v1", ns, "widgets",
                           widget("b", maxUnavailable=True))
    assert status == 422 and body["details"]["causes"][0]["field"] == "spec.maxUnavailable"
    kept = custom.create_namespaced_custom_object(group, "v1", ns, "widgets",
                                                  widget("x", extra={"anything": {"goes": [1, 2]}}))
    assert kept["spec"]["extra"] == {"anything": {"goes": [1, 2]}}
    ext.delete_custom_resource_definition(f"widgets.{group}")
