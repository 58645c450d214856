"""Contract tests of the Kubernetes API server emulator, through the official kubernetes client.

They pin what a real API server does: status codes and Status reasons, server-side
metadata, selectors, the status subresource, patch types, and namespace lifecycle.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.sandbox.conftest import wait_for


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def raises(code: int, reason: str, call, *args, **kwargs) -> dict:
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    assert info.value.status == code, info.value.body
    body = status_of(info.value)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["reason"] == reason and body["code"] == code
    return body


def raw(api_client, method: str, path: str) -> tuple[int, dict]:
    """A request on a path the typed client has no method for, through the client's own plumbing."""
    method, url, headers, body, _ = api_client.param_serialize(method, path, auth_settings=["BearerToken"])
    response = api_client.call_api(method, url, headers, body)
    response.read()
    return response.status, json.loads(response.data)


def configmap(name: str, labels: dict | None = None, data: dict | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or {"k": "v"})




def wait_gone(call, *args, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            call(*args)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.05)
    raise AssertionError(f"{args} still there after {seconds}s")


# --- namespaces ------------------------------------------------------------------------------


def test_namespace_crud_and_cascading_delete(core, apps):
    name = f"ns-{uuid.uuid4().hex[:6]}"
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.status.phase == "Active"
    assert created.metadata.labels["kubernetes.io/metadata.name"] == name
    raises(409, "AlreadyExists", core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert name in [n.metadata.name for n in core.list_namespace().items]
    core.create_namespaced_config_map(name, configmap("settings"))
    core.create_namespaced_secret(name, client.V1Secret(metadata=client.V1ObjectMeta(name="creds"),
                                                        string_data={"password": "s3cret"}))
    # the service account controller's default account
    assert core.read_namespaced_service_account("default", name).metadata.namespace == name

    deleted = core.delete_namespace(name)
    # the API answers with the namespace, now Terminating (the client types it as a Status, so a dict)
    body = deleted if isinstance(deleted, dict) else deleted.to_dict()
    assert body["status"]["phase"] == "Terminating" and body["metadata"]["deletionTimestamp"]
    wait_gone(core.read_namespace, name)
    raises(404, "NotFound", core.read_namespaced_config_map, "settings", name)
    raises(404, "NotFound", core.read_namespaced_secret, "creds", name)
    assert core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={name}").items == []
    # the name is free again once the namespace is gone
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.delete_namespace(name)


def test_terminating_namespace_refuses_new_content(core):
    name = f"term-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.delete_namespace(name)
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(name, configmap("late"))
    # Forbidden while the namespace is Terminating (NotFound if it is already gone)
    assert info.value.status in (403, 404)
    if info.value.status == 403:
        assert "being terminated" in status_of(info.value)["message"]
    wait_gone(core.read_namespace, name)
    raises(404, "NotFound", core.read_namespaced_config_map, "late", name)


def test_missing_namespace_is_404(core):
    body = raises(404, "NotFound", core.create_namespaced_config_map, "no-such-ns", configmap("x"))
    assert body["details"]["kind"] == "namespaces" and body["details"]["name"] == "no-such-ns"
    raises(404, "NotFound", core.read_namespace, "no-such-ns")


# --- typed resources ---------------------------------------------------------------------------


def test_configmap_create_get_replace_delete_codes(core, ns):
    created = core.create_namespaced_config_map(ns, configmap("app", data={"mode": "a"}))
    meta = created.metadata
    uuid.UUID(meta.uid)
    assert int(meta.resource_version) > 0
    assert meta.creation_timestamp is not None and meta.namespace == ns

    raises(409, "AlreadyExists", core.create_namespaced_config_map, ns, configmap("app"))
    body = raises(404, "NotFound", core.read_namespaced_config_map, "nope", ns)
    assert body["message"] == 'configmaps "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "configmaps"}

    got = core.read_namespaced_config_map("app", ns)
    got.data["mode"] = "b"
    replaced = core.replace_namespaced_config_map("app", ns, got)
    assert replaced.data == {"mode": "b"}
    assert int(replaced.metadata.resource_version) > int(meta.resource_version)
    assert replaced.metadata.uid == meta.uid and replaced.metadata.creation_timestamp == meta.creation_timestamp

    # replacing with the stale resourceVersion conflicts
    stale = configmap("app", data={"mode": "c"})
    stale.metadata.resource_version = meta.resource_version
    body = raises(409, "Conflict", core.replace_namespaced_config_map, "app", ns, stale)
    assert "the object has been modified" in body["message"]
    raises(404, "NotFound", core.replace_namespaced_config_map, "ghost", ns, configmap("ghost"))

    core.delete_namespaced_config_map("app", ns)
    raises(404, "NotFound", core.read_namespaced_config_map, "app", ns)
    raises(404, "NotFound", core.delete_namespaced_config_map, "app", ns)


def test_resource_version_is_a_global_increasing_counter(core, ns):
    versions = []
    for i in range(3):
        versions.append(int(core.create_namespaced_config_map(ns, configmap(f"c{i}")).metadata.resource_version))
    secret = core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="s")))
    versions.append(int(secret.metadata.resource_version))
    assert versions == sorted(versions) and len(set(versions)) == 4
    listed = core.list_namespaced_config_map(ns)
    assert int(listed.metadata.resource_version) >= versions[-1]
    uids = {i.metadata.uid for i in listed.items}
    assert len(uids) == len(listed.items)


def test_invalid_name_is_422(core, ns):
    body = raises(422, "Invalid", core.create_namespaced_config_map, ns, configmap("Not_Valid"))
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_generate_name(core, ns):
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="job-"), data={})
    created = core.create_namespaced_config_map(ns, cm)
    assert created.metadata.name.startswith("job-") and len(created.metadata.name) == len("job-") + 5


def test_secret_string_data_is_stored_base64(core, ns):
    import base64

    core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="db"),
                                                      string_data={"password": "hunter2"}))
    secret = core.read_namespaced_secret("db", ns)
    assert base64.b64decode(secret.data["password"]).decode() == "hunter2"
    assert secret.type == "Opaque" and secret.string_data is None


def test_patch_types(core, apps, ns):
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[
                    client.V1Container(name="web", image="nginx:1.25"),
                    client.V1Container(name="sidecar", image="busybox:1"),
                ]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(ns, deployment)
    assert created.metadata.generation == 1

    # strategic merge (the client's default for dict bodies): containers merge by name
    patched = apps.patch_namespaced_deployment(
        "web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}
    )
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"web": "nginx:1.27", "sidecar": "busybox:1"}
    assert patched.metadata.generation == 2

    # JSON merge patch: lists replace, null deletes
    merged = apps.patch_namespaced_deployment(
        "web", ns, {"metadata": {"labels": {"tier": "front", "app": None}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"tier": "front"}
    assert merged.metadata.generation == 2  # metadata changes do not bump generation

    # JSON patch
    jp = apps.patch_namespaced_deployment(
        "web", ns, [{"op": "replace", "path": "/spec/replicas", "value": 3}],
    )
    assert jp.spec.replicas == 3 and jp.metadata.generation == 3

    # patching a missing object is 404; a failed JSON patch test is 422
    raises(404, "NotFound", apps.patch_namespaced_deployment, "nope", ns, {"spec": {"replicas": 2}})
    raises(422, "Invalid", apps.patch_namespaced_deployment, "web", ns,
           [{"op": "test", "path": "/spec/replicas", "value": 99}])
    # a patch carrying a stale resourceVersion conflicts
    raises(409, "Conflict", apps.patch_namespaced_deployment, "web", ns,
           {"metadata": {"resourceVersion": created.metadata.resource_version}, "spec": {"replicas": 5}})


def test_noop_update_keeps_resource_version(core, ns):
    created = core.create_namespaced_config_map(ns, configmap("same"))
    again = core.patch_namespaced_config_map("same", ns, {"data": {"k": "v"}})
    assert again.metadata.resource_version == created.metadata.resource_version


# --- selectors -------------------------------------------------------------------------------------


def test_label_selectors(core, ns):
    specs = {
        "a": {"app": "web", "tier": "front"},
        "b": {"app": "web", "tier": "back"},
        "c": {"app": "db"},
        "d": {},
    }
    for name, labels in specs.items():
        core.create_namespaced_config_map(ns, configmap(name, labels=labels or None))

    def names(selector: str) -> set[str]:
        return {i.metadata.name for i in core.list_namespaced_config_map(ns, label_selector=selector).items}

    def expected(pred) -> set[str]:
        return {n for n, labels in specs.items() if pred(labels)}

    assert names("app=web") == expected(lambda x: x.get("app") == "web")
    assert names("app==web") == expected(lambda x: x.get("app") == "web")
    assert names("app!=web") == expected(lambda x: x.get("app") != "web")
    assert names("tier in (front, back)") == expected(lambda x: x.get("tier") in ("front", "back"))
    assert names("app notin (web)") == expected(lambda x: x.get("app") != "web")
    assert names("tier") == expected(lambda x: "tier" in x)
    assert names("!tier") == expected(lambda x: "tier" not in x)
    assert names("app=web,tier!=back") == expected(lambda x: x.get("app") == "web" and x.get("tier") != "back")
    raises(400, "BadRequest", core.list_namespaced_config_map, ns, label_selector="app in web")


def test_field_selectors(core, ns):
    for name, phase, node in (("p1", "Running", "node-a"), ("p2", "Pending", "node-b"), ("p3", "Running", "node-b")):
        pod = client.V1Pod(metadata=client.V1ObjectMeta(name=name),
                           spec=client.V1PodSpec(node_name=node, containers=[client.V1Container(name="c", image="x")]))
        core.create_namespaced_pod(ns, pod)
        core.patch_namespaced_pod_status(name, ns, {"status": {"phase": phase}})

    def names(selector: str) -> set[str]:
        return {p.metadata.name for p in core.list_namespaced_pod(ns, field_selector=selector).items}

    assert names("metadata.name=p1") == {"p1"}
    assert names("status.phase=Running") == {"p1", "p3"}
    assert names("spec.nodeName=node-b,status.phase!=Pending") == {"p3"}
    assert {p.metadata.name for p in core.list_pod_for_all_namespaces(
        field_selector=f"metadata.namespace={ns}").items} == {"p1", "p2", "p3"}
    body = raises(400, "BadRequest", core.list_namespaced_pod, ns, field_selector="spec.image=x")
    assert "field label not supported" in body["message"]


def test_deletecollection_with_label_selector(core, ns):
    for name, labels in (("keep", {"purge": "no"}), ("go1", {"purge": "yes"}), ("go2", {"purge": "yes"})):
        core.create_namespaced_config_map(ns, configmap(name, labels=labels))
    core.delete_collection_namespaced_config_map(ns, label_selector="purge=yes")
    left = {c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="purge").items}
    assert left == {"keep"}


def test_list_pagination(core, ns):
    for i in range(5):
        core.create_namespaced_config_map(ns, configmap(f"page-{i}", labels={"page": "yes"}))
    seen, token = [], None
    while True:
        page = core.list_namespaced_config_map(ns, label_selector="page", limit=2, _continue=token)
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"page-{i}" for i in range(5)]


# --- status subresource, generation ----------------------------------------------------------------


def test_status_subresource_of_builtin_kind(core, ns):
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="p"),
                       spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x")]),
                       status=client.V1PodStatus(phase="Running"))
    created = core.create_namespaced_pod(ns, pod)
    assert created.status.phase == "Pending"  # status given on create is ignored

    # the main endpoint ignores status
    patched = core.patch_namespaced_pod("p", ns, {"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "1"}}})
    assert patched.status.phase == "Pending" and patched.metadata.labels == {"x": "1"}

    # the status subresource changes only status
    updated = core.patch_namespaced_pod_status("p", ns, {"status": {"phase": "Running"},
                                                         "metadata": {"labels": {"x": "2"}}})
    assert updated.status.phase == "Running" and updated.metadata.labels == {"x": "1"}

    current = core.read_namespaced_pod_status("p", ns)
    current.status.phase = "Succeeded"
    current.spec.containers[0].image = "changed"
    replaced = core.replace_namespaced_pod_status("p", ns, current)
    assert replaced.status.phase == "Succeeded" and replaced.spec.containers[0].image == "x"


def test_generation_bumps_on_spec_change_only(apps, ns):
    sts = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="db"),
        spec=client.V1StatefulSetSpec(
            service_name="db", replicas=1, selector=client.V1LabelSelector(match_labels={"app": "db"}),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "db"}),
                                              spec=client.V1PodSpec(containers=[client.V1Container(name="db",
                                                                                                  image="mysql")])),
        ),
    )
    created = apps.create_namespaced_stateful_set(ns, sts)
    assert created.metadata.generation == 1
    status = apps.patch_namespaced_stateful_set_status("db", ns, {"status": {"replicas": 1, "readyReplicas": 1}})
    assert status.metadata.generation == 1 and status.status.ready_replicas == 1
    labelled = apps.patch_namespaced_stateful_set("db", ns, {"metadata": {"labels": {"a": "b"}}})
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_stateful_set("db", ns, {"spec": {"replicas": 2}})
    assert scaled.metadata.generation == 2


def test_cluster_scoped_and_namespaced(core, api_client):
    storage = client.StorageV1Api(api_client)
    sc = client.V1StorageClass(metadata=client.V1ObjectMeta(name=f"sc-{uuid.uuid4().hex[:6]}"),
                               provisioner="ebs.csi.aws.com")
    created = storage.create_storage_class(sc)
    assert created.metadata.namespace is None
    storage.delete_storage_class(created.metadata.name)
    raises(404, "NotFound", storage.read_storage_class, created.metadata.name)
    # a cluster-scoped kind has no namespaced path
    code, body = raw(api_client, "GET", "/api/v1/namespaces/default/nodes")
    assert code == 404 and body["reason"] == "NotFound"


# --- finalizers ------------------------------------------------------------------------------------


def test_finalizers_hold_deletion(core, ns):
    cm = configmap("held")
    cm.metadata.finalizers = ["example.com/hold"]
    core.create_namespaced_config_map(ns, cm)
    core.delete_namespaced_config_map("held", ns)
    pending = core.read_namespaced_config_map("held", ns)
    assert pending.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}},
                                     _content_type="application/merge-patch+json")
    raises(404, "NotFound", core.read_namespaced_config_map, "held", ns)


# --- what the controllers do on delete -------------------------------------------------------------


def test_garbage_collection_follows_owner_references(core, apps, ns):
    """A ReplicaSet adopts the matching pod it finds; deleting it takes the pod along, or orphans it."""
    for name, policy in (("gc", None), ("orphan", "Orphan")):
        core.create_namespaced_pod(ns, {"metadata": {"name": f"{name}-pod", "labels": {"app": name}},
                                        "spec": {"containers": [{"name": "c", "image": "x"}]}})
        rs = apps.create_namespaced_replica_set(ns, {
            "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}},
        })
        pod = f"{name}-pod"
        adopted = wait_for(lambda pod=pod: [r.uid for r in core.read_namespaced_pod(pod, ns).metadata.owner_references
                                            or [] if r.controller])
        assert adopted == [rs.metadata.uid]
        assert [p.metadata.name for p in core.list_namespaced_pod(ns, label_selector=f"app={name}").items] == [
            f"{name}-pod"]  # the adopted pod counts: no other is made
        apps.delete_namespaced_replica_set(name, ns, propagation_policy=policy)
        raises(404, "NotFound", apps.read_namespaced_replica_set, name, ns)
    raises(404, "NotFound", core.read_namespaced_pod, "gc-pod", ns)
    orphan = core.read_namespaced_pod("orphan-pod", ns)
    assert orphan.metadata.name == "orphan-pod" and not orphan.metadata.owner_references


def _bound_claim(core, ns: str, name: str, policy: str) -> str:
    """A claim with the pvc-protection finalizer bound to a volume with pv-protection; returns the PV name."""
    claim = core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"name": name, "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
    pv = core.create_persistent_volume({
        "metadata": {"name": f"pvc-{claim.metadata.uid}", "finalizers": ["kubernetes.io/pv-protection"]},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": policy,
                 "claimRef": {"namespace": ns, "name": name, "uid": claim.metadata.uid},
                 "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-0"}},
    })
    core.patch_persistent_volume_status(pv.metadata.name, {"status": {"phase": "Bound"}})
    return pv.metadata.name


def test_claim_in_use_is_protected_and_its_volume_deleted(core, ns):
    pv = _bound_claim(core, ns, "data-used", "Delete")
    core.create_namespaced_pod(ns, {
        "metadata": {"name": "user"},
        "spec": {"containers": [{"name": "c", "image": "x"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data-used"}}]},
    })
    core.delete_namespaced_persistent_volume_claim("data-used", ns)
    assert core.read_namespaced_persistent_volume_claim("data-used", ns).metadata.deletion_timestamp is not None
    assert core.read_persistent_volume(pv).status.phase == "Bound"
    core.delete_namespaced_pod("user", ns)  # the claim is released, and its volume reclaimed
    raises(404, "NotFound", core.read_namespaced_persistent_volume_claim, "data-used", ns)
    raises(404, "NotFound", core.read_persistent_volume, pv)


def test_bound_volume_is_protected_and_retained_volume_released(core, ns):
    protected = _bound_claim(core, ns, "data-a", "Retain")
    core.delete_persistent_volume(protected)
    assert core.read_persistent_volume(protected).metadata.deletion_timestamp is not None
    retained = _bound_claim(core, ns, "data-b", "Retain")
    core.delete_namespaced_persistent_volume_claim("data-a", ns)  # not in use: goes at once
    core.delete_namespaced_persistent_volume_claim("data-b", ns)
    raises(404, "NotFound", core.read_namespaced_persistent_volume_claim, "data-a", ns)
    raises(404, "NotFound", core.read_persistent_volume, protected)  # its deletion was only waiting
    assert core.read_persistent_volume(retained).status.phase == "Released"
    core.delete_persistent_volume(retained)
    raises(404, "NotFound", core.read_persistent_volume, retained)
