"""The emulator's controllers, scale, apply, logs and tables through the official kubernetes client.

A bare API server of its own (no seed) with one Ready node, so the scheduler, the kubelet, the
PV binder and the workload controllers have somewhere to work; what they do is what
kube-controller-manager, kube-scheduler and a kubelet do (see the emulator's docstrings).
"""

from __future__ import annotations

import json
import uuid

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from opsbook.sandbox.kube.kubeconfig import write_kubeconfig
from opsbook.sandbox.kube.server import KubeApiServer

from tests.sandbox.conftest import wait_for

BIND_DELAY = 2.0  # long enough that a claim read right after it is created is still Pending
ZONE = "eu-central-1a"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    server = KubeApiServer(bind_delay=BIND_DELAY, pod_subnets={ZONE: "10.30.0.0/20"}).start()
    path = write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig", "controllers", server.url)
    api_client = config.new_client_from_config(config_file=str(path))
    client.CoreV1Api(api_client).create_node({
        "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": ZONE}},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                   "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "58"},
                   "addresses": [{"type": "InternalIP", "address": "10.30.0.5"}]},
    })
    yield api_client
    api_client.close()
    server.stop()


@pytest.fixture()
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture()
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture()
def ns(core):
    name = f"c-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)




def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def raw(api, method: str, path: str, headers: dict | None = None, query: list | None = None):
    method, url, all_headers, body, _ = api.param_serialize(method, path, query_params=query or [],
                                                            header_params=headers or {}, auth_settings=["BearerToken"])
    response = api.call_api(method, url, all_headers, body)
    response.read()
    return response


def _pod(name: str, containers: tuple[str, ...] = ("app",), claim: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": c, "image": f"registry.example/{c}:1"} for c in containers]}
    if claim:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


def _running(core, ns: str, name: str) -> client.V1Pod:
    return wait_for(lambda: (p := core.read_namespaced_pod(name, ns)).status.phase == "Running" and p)


# --- the PV binder -------------------------------------------------------------------------------------


def _volume(core, name: str, storage_class: str = "", claim_ref: dict | None = None) -> None:
    spec = {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": storage_class, "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": f"vol-{name}"}}
    if claim_ref:
        spec["claimRef"] = claim_ref
    core.create_persistent_volume({"metadata": {"name": name}, "spec": spec})


def _claim(core, ns: str, name: str, storage_class: str = "", volume: str | None = None) -> client.V1PersistentVolumeClaim:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": storage_class}
    if volume:
        spec["volumeName"] = volume
    return core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": name}, "spec": spec})


def test_claims_bind_to_matching_volumes_after_a_delay(core, ns):
    """One claim takes a free matching volume; another names its volume, which is pre-bound to it (as a restore does)."""
    names = [f"{ns}-free", f"{ns}-named"]
    _volume(core, names[0])
    _volume(core, names[1], claim_ref={"namespace": ns, "name": "named"})
    claim = _claim(core, ns, "any")
    named = _claim(core, ns, "named", volume=names[1])
    assert claim.status.phase == "Pending" and named.status.phase == "Pending"  # the binder has not run yet
    assert "kubernetes.io/pvc-protection" in claim.metadata.finalizers  # added on admission

    bound = wait_for(lambda: (c := core.read_namespaced_persistent_volume_claim("any", ns)).status.phase == "Bound"
                     and c)
    volume = core.read_persistent_volume(bound.spec.volume_name)
    assert volume.metadata.name == names[0] and volume.status.phase == "Bound"
    assert (volume.spec.claim_ref.namespace, volume.spec.claim_ref.name, volume.spec.claim_ref.uid) == (
        ns, "any", claim.metadata.uid)
    assert bound.status.capacity == volume.spec.capacity and bound.status.access_modes == volume.spec.access_modes
    assert bound.metadata.annotations["pv.kubernetes.io/bind-completed"] == "yes"
    named = wait_for(lambda: (c := core.read_namespaced_persistent_volume_claim("named", ns)).status.phase == "Bound"
                     and c)
    assert named.spec.volume_name == names[1]
    assert core.read_persistent_volume(names[1]).spec.claim_ref.uid == named.metadata.uid
    for name in names:
        core.delete_persistent_volume(name)


def test_a_claim_nothing_matches_stays_pending_with_the_controllers_event(core, ns):
    _claim(core, ns, "orphan", storage_class=f"none-{ns}")
    event = wait_for(lambda: [e for e in core.list_namespaced_event(ns).items
                              if e.involved_object.name == "orphan" and e.reason == "ProvisioningFailed"])
    assert f'storageclass.storage.k8s.io "none-{ns}" not found' in event[0].message
    assert core.read_namespaced_persistent_volume_claim("orphan", ns).status.phase == "Pending"


# --- scheduler and kubelet -----------------------------------------------------------------------------


def test_a_pod_is_scheduled_started_and_stopped_gracefully(core, ns):
    core.create_namespaced_pod(ns, _pod("web"))
    pod = _running(core, ns, "web")
    assert pod.spec.node_name == "node-a" and pod.status.pod_ip.startswith("10.30.")
    assert all(s.ready and s.state.running for s in pod.status.container_statuses)
    reasons = {e.reason for e in core.list_namespaced_event(ns).items if e.involved_object.name == "web"}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= reasons

    core.delete_namespaced_pod("web", ns)
    terminating = core.read_namespaced_pod("web", ns)  # a running pod's kubelet stops it first
    assert terminating.metadata.deletion_timestamp and terminating.metadata.deletion_grace_period_seconds == 30
    wait_for(lambda: not core.list_namespaced_pod(ns, field_selector="metadata.name=web").items)
    assert any(e.reason == "Killing" for e in core.list_namespaced_event(ns).items if e.involved_object.name == "web")


def test_a_pod_no_node_fits_stays_pending_with_the_schedulers_reason(core, ns):
    pod = _pod("huge")
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "64"}}
    core.create_namespaced_pod(ns, pod)
    condition = wait_for(lambda: [c for c in core.read_namespaced_pod("huge", ns).status.conditions or []
                                  if c.type == "PodScheduled" and c.status == "False"])[0]
    nodes = len(core.list_node().items)
    assert condition.reason == "Unschedulable"
    assert condition.message.startswith(f"0/{nodes} nodes are available: {nodes} Insufficient cpu.")


# --- workloads and the scale subresource ---------------------------------------------------------------


def _deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"metadata": {"name": name}, "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                                                 "template": {"metadata": {"labels": labels},
                                                              "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}


def test_scale_subresource(apps, ns):
    created = apps.create_namespaced_deployment(ns, _deployment("web", 1))
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.metadata.uid == created.metadata.uid and scale.spec.replicas == 1
    assert scale.status.selector == "app=web"

    patched = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3
    deployment = apps.read_namespaced_deployment("web", ns)
    assert deployment.spec.replicas == 3 and deployment.metadata.generation == 2
    ready = wait_for(lambda: (d := apps.read_namespaced_deployment("web", ns)).status and d.status.ready_replicas == 3
                     and d)
    assert apps.read_namespaced_deployment_scale("web", ns).status.replicas == ready.status.replicas == 3

    stale = apps.read_namespaced_deployment_scale("web", ns)
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 2}})
    stale.spec.replicas = 4
    with pytest.raises(ApiException) as info:
        apps.replace_namespaced_deployment_scale("web", ns, stale)
    assert info.value.status == 409
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": -1}})
    assert info.value.status == 422 and status_of(info.value)["details"]["causes"][0]["field"] == "spec.replicas"


def test_statefulset_defaults_and_status(apps, core, ns):
    labels = {"app": "db"}
    apps.create_namespaced_stateful_set(ns, {"metadata": {"name": "db"}, "spec": {
        "replicas": 2, "serviceName": "db", "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "db", "image": "db:1"}]}}}})
    sts = apps.read_namespaced_stateful_set("db", ns)
    assert sts.spec.update_strategy.type == "RollingUpdate" and sts.spec.update_strategy.rolling_update.partition == 0
    assert sts.spec.pod_management_policy == "OrderedReady"
    assert sts.spec.persistent_volume_claim_retention_policy.when_scaled == "Retain"
    done = wait_for(lambda: (s := apps.read_namespaced_stateful_set("db", ns)).status and s.status.ready_replicas == 2
                    and s)
    pods = core.list_namespaced_pod(ns, label_selector="app=db").items
    revisions = {p.metadata.labels["controller-revision-hash"] for p in pods}
    assert revisions == {done.status.update_revision} == {done.status.current_revision}
    assert done.status.observed_generation == done.metadata.generation
    assert sorted(p.metadata.name for p in pods) == ["db-0", "db-1"]

    apps.patch_namespaced_stateful_set("db", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "db", "image": "db:2"}]}}}})
    rolled = wait_for(lambda: (s := apps.read_namespaced_stateful_set("db", ns)).status.observed_generation == 2
                      and s.status.updated_replicas == s.status.ready_replicas == 2
                      and s.status.current_revision == s.status.update_revision and s)
    assert rolled.status.update_revision != done.status.update_revision
    images = {p.spec.containers[0].image for p in core.list_namespaced_pod(ns, label_selector="app=db").items}
    assert images == {"db:2"}


# --- server-side apply ---------------------------------------------------------------------------------


APPLY = "application/apply-patch+yaml"


def test_server_side_apply_through_the_client(core, ns):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": {"a": "1"}},
            "data": {"k": "v"}}
    created = core.patch_namespaced_config_map("cfg", ns, body, field_manager="tool", _content_type=APPLY)
    entry = next(m for m in created.metadata.managed_fields if m.manager == "tool")
    assert entry.operation == "Apply" and entry.fields_v1["f:data"] == {"f:k": {}}
    again = core.patch_namespaced_config_map("cfg", ns, body, field_manager="tool", _content_type=APPLY)
    assert again.metadata.resource_version == created.metadata.resource_version

    with pytest.raises(ApiException) as info:
        core.patch_namespaced_config_map("cfg", ns, body, _content_type=APPLY)
    assert info.value.status == 422 and "fieldManager: Required value" in status_of(info.value)["message"]
    with pytest.raises(ApiException) as info:
        core.patch_namespaced_config_map("cfg", ns, {"data": {"k": "w"}}, force=True)
    assert info.value.status == 422 and "force: Forbidden" in status_of(info.value)["message"]

    other = {**body, "data": {"k": "other"}}
    with pytest.raises(ApiException) as info:
        core.patch_namespaced_config_map("cfg", ns, other, field_manager="rival", _content_type=APPLY)
    status = status_of(info.value)
    assert info.value.status == 409 and status["reason"] == "Conflict"
    assert status["details"]["causes"] == [{"type": "FieldManagerConflict", "message": 'conflict with "tool"',
                                            "field": ".data.k"}]
    forced = core.patch_namespaced_config_map("cfg", ns, other, field_manager="rival", force=True, _content_type=APPLY)
    assert forced.data == {"k": "other"}


# --- logs and tables -----------------------------------------------------------------------------------


def test_logs_need_a_container_when_the_pod_has_several(api, core, ns):
    core.create_namespaced_pod(ns, _pod("pair", ("app", "proxy")))
    _running(core, ns, "pair")
    for query, message in ((None, "a container name must be specified for pod pair, choose one of: [app proxy]"),
                           ("nope", "container nope is not valid for pod pair")):
        with pytest.raises(ApiException) as info:
            core.read_namespaced_pod_log("pair", ns, container=query)
        assert info.value.status == 400 and status_of(info.value)["message"] == message
    text = core.read_namespaced_pod_log("pair", ns, container="proxy")
    assert "registry.example/proxy:1" in text and "registry.example/app:1" not in text


def test_tables_of_a_list_with_the_objects_as_asked(api, core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c1"}, "data": {"a": "1", "b": "2"}})
    response = raw(api, "GET", f"/api/v1/namespaces/{ns}/configmaps", {"Accept": TABLE})
    table = json.loads(response.data)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    row = next(r for r in table["rows"] if r["cells"][0] == "c1")
    assert row["cells"][1] == 2 and row["object"]["kind"] == "PartialObjectMetadata"
    full = json.loads(raw(api, "GET", f"/api/v1/namespaces/{ns}/configmaps", {"Accept": TABLE},
                          [("includeObject", "Object")]).data)
    assert next(r for r in full["rows"] if r["cells"][0] == "c1")["object"]["data"] == {"a": "1", "b": "2"}
    refused = raw(api, "GET", f"/api/v1/namespaces/{ns}/configmaps", {"Accept": TABLE}, [("includeObject", "All")])
    assert refused.status == 400 and json.loads(refused.data)["message"] == 'unrecognized includeObject value: "All"'


# --- namespaces held by finalizers ---------------------------------------------------------------------


def test_finalize_unsticks_a_terminating_namespace(api, core):
    name = f"held-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    core.delete_namespace(name)
    held = wait_for(lambda: [c for c in core.read_namespace(name).status.conditions or []
                             if c.type == "NamespaceFinalizersRemaining" and c.status == "True"])
    assert held[0].reason == "SomeFinalizersRemain"
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(name, {"metadata": {"name": "late"}})
    assert info.value.status == 403 and status_of(info.value)["details"]["causes"][0]["reason"] == \
        "NamespaceTerminating"
    # deleting it again: the namespace storage's Conflict while its content is being removed
    with pytest.raises(ApiException) as info:
        core.delete_namespace(name)
    status = status_of(info.value)
    assert (info.value.status, status["reason"], status["details"]) == (409, "Conflict",
                                                                       {"name": name, "kind": "namespaces"})
    assert status["message"] == (f'Operation cannot be fulfilled on namespaces "{name}": The system is ensuring all '
                                 "content is removed from this namespace.  Upon completion, this namespace will "
                                 "automatically be purged by the system.")
    core.replace_namespace_finalize(name, {"metadata": {"name": name}, "spec": {"finalizers": []}})
    with pytest.raises(ApiException) as info:
        core.read_namespace(name)
    assert info.value.status == 404

