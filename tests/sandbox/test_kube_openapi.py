"""The OpenAPI documents the emulated API server serves, and the objects it serves held to the Kubernetes spec.

The documents are checked against the vendored contracts they come from (the Kubernetes spec,
the Velero CRDs) and the way kube-openapi serves them (ETag hashes, redirects, gzip, 406);
every built-in object of the seeded cluster, including what the controllers made, validates
against its definition in the vendored spec, with unknown fields refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import uuid
from functools import lru_cache

import jsonschema
import pytest
import requests
import yaml
from kubernetes import client, config
from opsbook.contracts import contract_path
from opsbook.sandbox.kube.kubeconfig import write_kubeconfig
from opsbook.sandbox.kube.server import KubeApiServer

PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@pytest.fixture(scope="module")
def base(sandbox) -> str:
    return yaml.safe_load(open(os.environ["KUBECONFIG"]))["clusters"][0]["cluster"]["server"]


@pytest.fixture(scope="module")
def kube(sandbox):
    api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    yield api
    api.close()


@lru_cache(maxsize=1)
def swagger() -> dict:
    return json.loads(contract_path("kubernetes", "swagger.json").read_text())


def _crd(file: str) -> dict:
    return yaml.safe_load(contract_path("velero", file).read_text())


# --- /openapi/v3 -------------------------------------------------------------------------------------


def test_v3_index_links_each_group_version_by_the_hash_of_its_document(base):
    index = requests.get(f"{base}/openapi/v3", timeout=30).json()["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/velero.io/v1"} <= set(index)
    url = index["apis/apps/v1"]["serverRelativeURL"]
    path, _, query = url.partition("?")
    assert path == "/openapi/v3/apis/apps/v1" and query.startswith("hash=")
    response = requests.get(f"{base}{url}", timeout=30)
    assert query.removeprefix("hash=") == hashlib.sha512(response.content).hexdigest().upper()
    assert response.headers["Cache-Control"] == "public, immutable"
    assert response.headers["Content-Encoding"] == "gzip"  # requests asks for gzip

    stale = requests.get(f"{base}{path}?hash=0000", timeout=30)
    assert stale.history and stale.history[0].status_code == 301
    assert stale.history[0].headers["Location"] == url and stale.content == response.content


def test_v3_document_of_a_built_in_group_is_the_vendored_spec(base):
    index = requests.get(f"{base}/openapi/v3", timeout=30).json()["paths"]
    doc = requests.get(base + index["apis/apps/v1"]["serverRelativeURL"], timeout=30).json()
    spec = swagger()
    expected_paths = {p for p in spec["paths"] if p.startswith("/apis/apps/v1/")}
    assert set(doc["paths"]) == expected_paths
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    v2_patch = spec["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert set(patch["requestBody"]["content"]) == set(v2_patch["consumes"])
    deployment = doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    v2 = spec["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert deployment["properties"]["spec"]["description"] == v2["properties"]["spec"]["description"]
    # every reference resolves inside the document
    refs = set(_refs(doc))
    assert refs and all(r.removeprefix("#/components/schemas/") in doc["components"]["schemas"] for r in refs)


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_v3_document_of_a_crd_group_carries_the_crd_schemas(base):
    index = requests.get(f"{base}/openapi/v3", timeout=30).json()["paths"]
    doc = requests.get(base + index["apis/velero.io/v1"]["serverRelativeURL"], timeout=30).json()
    crd = _crd("velero.io_backups.yaml")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    backup = doc["components"]["schemas"]["io.velero.v1.Backup"]
    assert backup["x-kubernetes-group-version-kind"] == [{"group": "velero.io", "version": "v1", "kind": "Backup"}]
    assert backup["properties"]["spec"] == _without_nullable(schema["properties"]["spec"])
    assert backup["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    patch = doc["paths"]["/apis/velero.io/v1/namespaces/{namespace}/backups/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "velero.io", "version": "v1", "kind": "Backup"}
    # custom resources take no strategic merge patch
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/apply-patch+yaml" in patch["requestBody"]["content"]


def _without_nullable(node):
    if isinstance(node, dict):
        return {k: _without_nullable(v) for k, v in node.items() if k != "nullable"}
    if isinstance(node, list):
        return [_without_nullable(v) for v in node]
    return node


# --- /openapi/v2 -------------------------------------------------------------------------------------


def test_v2_is_the_vendored_spec_plus_the_crds_in_json_only(base):
    response = requests.get(f"{base}/openapi/v2", headers={"Accept": "application/json"}, timeout=60)
    doc = response.json()
    assert doc["swagger"] == swagger()["swagger"] and response.headers["ETag"].strip('"') == \
        hashlib.sha512(response.content).hexdigest().upper()
    assert doc["definitions"]["io.k8s.api.core.v1.Pod"] == swagger()["definitions"]["io.k8s.api.core.v1.Pod"]
    schedule = doc["definitions"]["io.velero.v1.Schedule"]
    crd = _crd("velero.io_schedules.yaml")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schedule["properties"]["spec"] == _without_nullable(crd["properties"]["spec"])
    assert "/apis/velero.io/v1/namespaces/{namespace}/schedules/{name}" in doc["paths"]
    refused = requests.get(f"{base}/openapi/v2", headers={"Accept": PROTOBUF_V2}, timeout=30)
    assert refused.status_code == 406  # the protobuf form is not served (kube-openapi answers 406 to what it lacks)


def test_a_new_crd_appears_in_the_openapi_index(tmp_path):
    server = KubeApiServer().start()
    try:
        path = write_kubeconfig(tmp_path / "kubeconfig", "openapi", server.url)
        api = config.new_client_from_config(config_file=str(path))
        group = f"g{uuid.uuid4().hex[:6]}.example.com"
        assert f"apis/{group}/v1" not in requests.get(f"{server.url}/openapi/v3", timeout=30).json()["paths"]
        client.ApiextensionsV1Api(api).create_custom_resource_definition({
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "properties": {"spec": {"type": "object", "properties": {
                             "size": {"type": "integer"}}}}}}}]}})
        index = requests.get(f"{server.url}/openapi/v3", timeout=30).json()["paths"]
        doc = requests.get(server.url + index[f"apis/{group}/v1"]["serverRelativeURL"], timeout=30).json()
        name = ".".join([*reversed(group.split(".")), "v1", "Widget"])
        assert doc["components"]["schemas"][name]["properties"]["spec"]["properties"]["size"] == {"type": "integer"}
        api.close()
    finally:
        server.stop()


# --- the served objects against the Kubernetes spec --------------------------------------------------


@lru_cache(maxsize=1)
def _strict_definitions() -> dict:
    """The spec's definitions as JSON Schema: unknown properties refused, IntOrString either type."""
    definitions = copy.deepcopy(swagger()["definitions"])
    for schema in definitions.values():
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["integer", "string"]}
    return definitions


def _validator(definition: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": _strict_definitions()})


def _present(value):
    """Go serialises unset times as null: a null is an absent field."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(v) for v in value]
    return value


def _definition(group: str, version: str, kind: str) -> str | None:
    for name, schema in swagger()["definitions"].items():
        if {"group": group, "version": version, "kind": kind} in schema.get("x-kubernetes-group-version-kind", []):
            return name
    return None


def test_every_built_in_object_the_server_holds_validates_against_the_spec(kube, base):
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    ns = f"spec-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    labels = {"app": "web"}
    apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
            "name": "web", "image": "nginx:1.25", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}})
    deadline = time.monotonic() + 60
    while ((apps.read_namespaced_deployment("web", ns).status or client.V1DeploymentStatus()).ready_replicas or 0) < 2:
        assert time.monotonic() < deadline, "the deployment's pods never became ready"
        time.sleep(0.2)

    checked = 0
    for resources in (client.CoreV1Api(kube).get_api_resources(), client.AppsV1Api(kube).get_api_resources(),
                      client.StorageV1Api(kube).get_api_resources()):
        group_version = resources.group_version
        group, _, version = group_version.rpartition("/")
        for resource in resources.resources:
            definition = _definition(group, version, resource.kind)
            if "/" in resource.name or definition is None:
                continue
            prefix = f"/apis/{group_version}" if group else f"/api/{group_version}"
            items = requests.get(f"{base}{prefix}/{resource.name}", timeout=60).json()["items"]
            validator = _validator(definition)
            for item in items:
                obj = _present({"apiVersion": group_version, "kind": resource.kind, **item})
                errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
                assert not errors, f"{resource.name} {item['metadata'].get('namespace')}/{item['metadata']['name']}: " \
                    f"{errors[:5]}"
                checked += 1
    assert checked > 100

    scale = requests.get(f"{base}/apis/apps/v1/namespaces/{ns}/deployments/web/scale", timeout=30).json()
    assert not list(_validator("io.k8s.api.autoscaling.v1.Scale").iter_errors(_present(scale)))
    missing = requests.get(f"{base}/api/v1/namespaces/{ns}/configmaps/none", timeout=30).json()
    assert not list(_validator("io.k8s.apimachinery.pkg.apis.meta.v1.Status").iter_errors(missing))
    core.delete_namespace(ns)
    while any(n.metadata.name == ns for n in core.list_namespace().items):  # its pods stop, then it goes
        assert time.monotonic() < deadline + 60, f"namespace {ns} is still there"
        time.sleep(0.2)
