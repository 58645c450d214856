"""The sandbox's Kubernetes API as the real `kubectl` sees it (a client nobody here wrote).

Every command runs the installed kubectl in a subprocess with the sandbox's kubeconfig and a
fresh discovery cache. Expected values are derived from the objects themselves (read back
through the official kubernetes client), or from the vendored contracts (the Kubernetes
OpenAPI spec, the Velero CRDs); column headers are those the real API server prints
(kubernetes pkg/printers/internalversion/printers.go). kubectl missing fails in CI.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
import uuid

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from opsbook.contracts import contract_path

from tests.conftest import REQUIRE_SERVICES

TIMEOUT = 120
SMALL = {"requests": {"cpu": "10m", "memory": "16Mi"}}


# --- running kubectl -----------------------------------------------------------------------------


class Kubectl:
    def __init__(self, binary: str, env: dict[str, str]) -> None:
        self.binary, self.env = binary, env

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
                              env=self.env)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def out(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def json(self, *args: str) -> dict:
        return json.loads(self.out(*args, "-o", "json"))

    def apply(self, docs: list[dict], *flags: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("apply", "-f", "-", *flags, stdin=yaml.safe_dump_all(docs), check=check)


@pytest.fixture(scope="module")
def kubectl(sandbox, tmp_path_factory) -> Kubectl:
    binary = shutil.which("kubectl")
    if binary is None:
        message = "kubectl is not on PATH; these tests drive the real kubectl against the sandbox"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "KUBECACHEDIR": str(tmp_path_factory.mktemp("kubectl-cache")),
           "HOME": str(tmp_path_factory.mktemp("kubectl-home"))}
    return Kubectl(binary, env)


@pytest.fixture(scope="module")
def kube(sandbox):
    api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    yield api
    api.close()


@pytest.fixture(scope="module")
def core(kube):
    return client.CoreV1Api(kube)


@pytest.fixture(scope="module")
def apps(kube):
    return client.AppsV1Api(kube)


@pytest.fixture()
def ns(kubectl):
    name = f"kubectl-{uuid.uuid4().hex[:6]}"
    kubectl.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def wait_for(what: str, check, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# --- reading kubectl's tables --------------------------------------------------------------------


def parse_table(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Headers and rows of kubectl's table output; cells sliced at the headers' columns."""
    lines = [line for line in text.splitlines() if line.strip()]
    spans = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    headers = [h for _, h in spans]
    starts = [s for s, _ in spans] + [None]
    rows = [{h: line[starts[i]:starts[i + 1]].strip() for i, h in enumerate(headers)} for line in lines[1:]]
    return headers, rows


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, written out again from its documented steps."""
    s = int(seconds)
    if s < 0:
        return "0s" if s >= -1 else "<invalid>"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def ages(created: dt.datetime | str | None, before: float, after: float) -> set[str]:
    """Every AGE kubectl may print for an object created at `created`, read between two clock readings."""
    if created is None:
        return {"<unknown>"}
    if isinstance(created, str):
        created = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    low, high = before - created.timestamp(), after - created.timestamp()
    return {human_duration(t) for t in range(int(low) - 1, int(high) + 2)}


def get_table(kubectl: Kubectl, *args: str) -> tuple[list[str], list[dict[str, str]], float, float]:
    before = time.time()
    text = kubectl.out("get", *args)
    return (*parse_table(text), before, time.time())


# --- version and discovery -----------------------------------------------------------------------


def test_the_dispatcher_runs_the_kubectl_of_the_servers_minor_version(kubectl):
    versions = kubectl.json("version")
    server, client_version = versions["serverVersion"], versions["clientVersion"]
    assert client_version["major"] == server["major"]
    assert client_version["minor"].rstrip("+") == server["minor"].rstrip("+")


# --- explain -------------------------------------------------------------------------------------


def _words(text: str) -> str:
    return " ".join(text.split())


def test_explain_reads_the_openapi_of_built_in_and_custom_kinds(kubectl):
    swagger = json.loads(contract_path("kubernetes", "swagger.json").read_text())
    spec = swagger["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]
    out = kubectl.out("explain", "deployments.spec.replicas")
    assert re.search(r"^GROUP:\s+apps$", out, re.M) and re.search(r"^KIND:\s+Deployment$", out, re.M)
    assert f"FIELD: replicas <{spec['type']}>" in out
    assert _words(spec["description"]) in _words(out)

    crd = yaml.safe_load(contract_path("velero", "velero.io_schedules.yaml").read_text())
    schedule = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["schedule"]
    out = kubectl.out("explain", "schedules.spec.schedule")
    assert re.search(r"^KIND:\s+Schedule$", out, re.M) and "FIELD: schedule <string>" in out
    assert _words(schedule["description"]) in _words(out)


# --- client-side apply ---------------------------------------------------------------------------


def _deployment(ns: str, name: str, image: str = "nginx:1.25", replicas: int = 2) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": image, "resources": SMALL,
                                                           "ports": [{"containerPort": 80}]}]}}}}


def _configmap(ns: str, name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def _secret(ns: str, name: str) -> dict:
    """A Secret by `data`: `stringData` never shows in the live object, so apply would always patch it."""
    value = base64.b64encode(uuid.uuid4().hex.encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "type": "Opaque", "data": {"password": value}}


def _statefulset(ns: str, name: str, replicas: int, claims: list[dict] | None = None,
                 retention: dict | None = None) -> dict:
    labels = {"app": name}
    spec: dict = {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "db", "image": "mysql:8.0.39", "resources": SMALL,
                                                        "args": ["--datadir=/var/lib/mysql"]}]}}}
    if claims:
        spec["volumeClaimTemplates"] = claims
    if retention:
        spec["persistentVolumeClaimRetentionPolicy"] = retention
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def _verbs(output: str) -> dict[str, str]:
    """`<kind>.<group>/<name> <verb>` lines of apply: {kind/name: verb}."""
    return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in output.splitlines() if line.strip()}


def test_client_side_apply_twice_is_unchanged(kubectl, core, ns):
    docs = [_configmap(ns, "settings", {"mode": "a"}), _secret(ns, "creds"), _deployment(ns, "web")]
    first = _verbs(kubectl.apply(docs).stdout)
    assert first == {"configmap/settings": "created", "secret/creds": "created", "deployment.apps/web": "created"}
    second = _verbs(kubectl.apply(docs).stdout)
    assert set(second.values()) == {"unchanged"} and second.keys() == first.keys()

    docs[0]["data"]["mode"] = "b"
    third = _verbs(kubectl.apply(docs).stdout)
    assert third["configmap/settings"] == "configured" and third["deployment.apps/web"] == "unchanged"
    live = core.read_namespaced_config_map("settings", ns)
    assert live.data == docs[0]["data"]
    last = json.loads(live.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["data"] == docs[0]["data"]


def test_apply_is_validated_strictly_by_the_server(kubectl, ns):
    bad = _deployment(ns, "typo")
    bad["spec"]["replica"] = 3
    proc = kubectl.apply([bad], check=False)
    assert proc.returncode != 0
    assert 'unknown field "spec.replica"' in proc.stderr


# --- server-side apply ---------------------------------------------------------------------------


def _managers(obj: dict) -> dict[tuple[str, str], dict]:
    return {(m["manager"], m["operation"]): m["fieldsV1"] for m in obj["metadata"].get("managedFields") or []}


def test_server_side_apply(kubectl, ns):
    docs = [_configmap(ns, "config", {"a": "1", "b": "2"}), _secret(ns, "token"), _deployment(ns, "api", replicas=1),
            _statefulset(ns, "queue", 1)]
    created = _verbs(kubectl.apply(docs, "--server-side").stdout)
    assert set(created.values()) == {"serverside-applied"} and len(created) == len(docs)
    refs = [f"{d['kind'].lower()}/{d['metadata']['name']}" for d in docs]
    for ref in refs[2:]:  # the controllers write the workloads' status until their pods are ready
        kubectl.run("rollout", "status", ref, "-n", ns, f"--timeout={TIMEOUT}s")
    before = {r: kubectl.json("get", "-n", ns, r, "--show-managed-fields") for r in refs}
    for obj in before.values():
        assert ("kubectl", "Apply") in _managers(obj)
    assert "f:b" in _managers(before["configmap/config"])[("kubectl", "Apply")]["f:data"]

    kubectl.apply(docs, "--server-side")  # the same configuration again: nothing is written
    for ref in refs:
        again = kubectl.json("get", "-n", ns, ref)
        assert again["metadata"]["resourceVersion"] == before[ref]["metadata"]["resourceVersion"], ref

    del docs[0]["data"]["b"]  # a field this manager applied before and no longer does goes away
    kubectl.apply(docs[:1], "--server-side")
    assert kubectl.json("get", "-n", ns, "configmap/config")["data"] == docs[0]["data"]

    other = _deployment(ns, "api", replicas=3)
    proc = kubectl.apply([other], "--server-side", "--field-manager=other", check=False)
    assert proc.returncode != 0
    assert 'conflict with "kubectl"' in proc.stderr and ".spec.replicas" in proc.stderr
    kubectl.apply([other], "--server-side", "--field-manager=other", "--force-conflicts")
    live = kubectl.json("get", "-n", ns, "deployment/api", "--show-managed-fields")
    assert live["spec"]["replicas"] == 3
    owners = _managers(live)
    assert "f:replicas" in owners[("other", "Apply")]["f:spec"]
    assert "f:replicas" not in owners[("kubectl", "Apply")].get("f:spec", {})


# --- the columns of kubectl get ------------------------------------------------------------------


def _pod(ns: str, name: str, node: str, containers: list[str], finalizers: list[str] | None = None) -> dict:
    meta: dict = {"name": name, "namespace": ns}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": c, "image": "busybox:1.36"} for c in containers]}}


def _expected_pod_row(pod: client.V1Pod) -> dict[str, str]:
    """READY, STATUS, RESTARTS of the pods this test put into known states, from the pod objects."""
    statuses = pod.status.container_statuses or []
    ready = sum(1 for s in statuses if s.ready and s.state.running)
    status = pod.status.phase
    for s in reversed(statuses):
        if s.state.waiting and s.state.waiting.reason:
            status = s.state.waiting.reason
        elif s.state.terminated and s.state.terminated.reason:
            status = s.state.terminated.reason
    if pod.metadata.deletion_timestamp and pod.status.phase not in ("Succeeded", "Failed"):
        status = "Terminating"
    return {"READY": f"{ready}/{len(pod.spec.containers)}", "STATUS": status,
            "IP": (pod.status.pod_ip or "<none>"), "NODE": pod.spec.node_name or "<none>"}


def test_get_pods_shows_the_status_the_server_computes(kubectl, core, ns):
    """Pods on a node no kubelet serves, their status written as a kubelet would: crash loop, completed, terminating."""
    stamp = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    kubectl.apply([_pod(ns, "crashing", "ghost-node", ["app", "sidecar"]), _pod(ns, "done", "ghost-node", ["job"]),
                   _pod(ns, "leaving", "ghost-node", ["app"], finalizers=["example.com/hold"])])
    core.patch_namespaced_pod_status("crashing", ns, {"status": {"phase": "Running", "podIP": "10.9.0.7",
                                                                 "podIPs": [{"ip": "10.9.0.7"}], "containerStatuses": [
        {"name": "app", "image": "busybox:1.36", "imageID": "", "ready": False, "restartCount": 4,
         "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting"}},
         "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": iso, "finishedAt": iso}}},
        {"name": "sidecar", "image": "busybox:1.36", "imageID": "", "ready": True, "restartCount": 0,
         "state": {"running": {"startedAt": iso}}}]}})
    core.patch_namespaced_pod_status("done", ns, {"status": {"phase": "Succeeded", "containerStatuses": [
        {"name": "job", "image": "busybox:1.36", "imageID": "", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": iso, "finishedAt": iso}}}]}})
    kubectl.run("delete", "-n", ns, "pod/leaving", "--wait=false")

    headers, rows, before, after = get_table(kubectl, "pods", "-n", ns, "-o", "wide")
    assert headers == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    by_name = {r["NAME"]: r for r in rows}
    assert set(by_name) == {"crashing", "done", "leaving"}
    for name, row in by_name.items():
        pod = core.read_namespaced_pod(name, ns)
        expected = _expected_pod_row(pod)
        assert {k: row[k] for k in expected} == expected, name
        assert row["AGE"] in ages(pod.metadata.creation_timestamp, before, after)
        restarts = sum(s.restart_count for s in pod.status.container_statuses or [])
        finished = [s.last_state.terminated.finished_at for s in pod.status.container_statuses or []
                    if s.last_state and s.last_state.terminated]
        if restarts and finished:
            assert row["RESTARTS"] in {f"{restarts} ({a} ago)" for a in ages(max(finished), before, after)}
        else:
            assert row["RESTARTS"] == str(restarts)
    core.patch_namespaced_pod("leaving", ns, {"metadata": {"finalizers": None}})


def test_get_workloads_claims_and_nodes_with_the_servers_columns(kubectl, core, apps, sandbox_params):
    namespace = next(n.name for n in sandbox_params.namespaces if n.deployments and n.stateful)

    headers, rows, before, after = get_table(kubectl, "deployments", "-n", namespace, "-o", "wide")
    assert headers == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    for row in rows:
        d = apps.read_namespaced_deployment(row["NAME"], namespace)
        labels = ",".join(f"{k}={v}" for k, v in sorted(d.spec.selector.match_labels.items()))
        assert row == {"NAME": d.metadata.name, "READY": f"{d.status.ready_replicas or 0}/{d.spec.replicas}",
                       "UP-TO-DATE": str(d.status.updated_replicas or 0),
                       "AVAILABLE": str(d.status.available_replicas or 0), "AGE": row["AGE"],
                       "CONTAINERS": ",".join(c.name for c in d.spec.template.spec.containers),
                       "IMAGES": ",".join(c.image for c in d.spec.template.spec.containers), "SELECTOR": labels}
        assert row["AGE"] in ages(d.metadata.creation_timestamp, before, after)

    headers, rows, before, after = get_table(kubectl, "statefulsets", "-n", namespace)
    assert headers == ["NAME", "READY", "AGE"] and rows
    for row in rows:
        s = apps.read_namespaced_stateful_set(row["NAME"], namespace)
        assert row["READY"] == f"{s.status.ready_replicas or 0}/{s.spec.replicas}"

    headers, rows, before, after = get_table(kubectl, "pvc", "-n", namespace)
    assert headers == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
                       "VOLUMEATTRIBUTESCLASS", "AGE"] and rows
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    for row in rows:
        c = core.read_namespaced_persistent_volume_claim(row["NAME"], namespace)
        assert row["STATUS"] == c.status.phase and row["VOLUME"] == (c.spec.volume_name or "")
        assert row["CAPACITY"] == (c.status.capacity or {}).get("storage", "")
        assert row["ACCESS MODES"] == ",".join(short[m] for m in c.status.access_modes or [])
        assert row["STORAGECLASS"] == c.spec.storage_class_name and row["VOLUMEATTRIBUTESCLASS"] == "<unset>"
        assert row["AGE"] in ages(c.metadata.creation_timestamp, before, after)

    headers, rows, before, after = get_table(kubectl, "nodes", "-o", "wide")
    assert headers == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                       "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    assert {r["NAME"] for r in rows} == {n.metadata.name for n in core.list_node().items}
    for row in rows:
        n = core.read_node(row["NAME"])
        ready = next(c.status for c in n.status.conditions if c.type == "Ready")
        internal = next((a.address for a in n.status.addresses if a.type == "InternalIP"), "<none>")
        assert row["STATUS"] == ("Ready" if ready == "True" else "NotReady") and row["ROLES"] == "<none>"
        assert row["VERSION"] == n.status.node_info.kubelet_version and row["INTERNAL-IP"] == internal
        assert row["OS-IMAGE"] == n.status.node_info.os_image
        assert row["CONTAINER-RUNTIME"] == n.status.node_info.container_runtime_version

    headers, rows, _, _ = get_table(kubectl, "namespaces")
    assert headers == ["NAME", "STATUS", "AGE"]
    phases = {n.metadata.name: n.status.phase for n in core.list_namespace().items}
    assert {r["NAME"]: r["STATUS"] for r in rows} == phases


def _crd_columns(file: str) -> list[dict]:
    """The vendored CRD's v1 printer columns; none declared: the one the apiextensions server serves then
    (apiextensions-apiserver pkg/apiserver/helpers.go serveDefaultColumnsIfEmpty: Age)."""
    crd = yaml.safe_load(contract_path("velero", file).read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version.get("additionalPrinterColumns") or [
        {"name": "Age", "jsonPath": ".metadata.creationTimestamp", "type": "date"}]


def test_get_custom_resources_with_their_crds_printer_columns(kubectl, sandbox_params):
    namespace = next(a.namespace for a in sandbox_params.eks.addons if a.chart == "velero")
    schedules = kubectl.json("get", "schedules", "-n", namespace)["items"]
    columns = _crd_columns("velero.io_schedules.yaml")
    headers, rows, before, after = get_table(kubectl, "schedules", "-n", namespace)
    assert headers == ["NAME", *(c["name"].upper() for c in columns if not c.get("priority"))]
    by_name = {r["NAME"]: r for r in rows}
    assert set(by_name) == {s["metadata"]["name"] for s in schedules}
    for schedule in schedules:
        row = by_name[schedule["metadata"]["name"]]
        for column in columns:
            value = schedule
            for key in column["jsonPath"].strip(".").split("."):
                value = (value or {}).get(key)
            cell = row[column["name"].upper()]
            if column["type"] == "date":
                assert cell in (ages(value, before, after) if value else {""})
            elif column["type"] == "boolean":
                assert cell == ("" if value is None else str(value).lower())
            else:
                assert cell == ("" if value is None else str(value))

    # Velero v1.18.1's Backup CRD declares no printer columns, so the server serves its default one
    columns = _crd_columns("velero.io_backups.yaml")
    headers, rows, before, after = get_table(kubectl, "backups", "-n", namespace)
    assert headers == ["NAME", *(c["name"].upper() for c in columns if not c.get("priority"))]
    created = {b["metadata"]["name"]: b["metadata"]["creationTimestamp"]
               for b in kubectl.json("get", "backups", "-n", namespace)["items"]}
    assert rows, "the seeded Schedule's backups"
    for row in rows:
        assert row["AGE"] in ages(created[row["NAME"]], before, after)


# --- scale, rollout status, logs, events ---------------------------------------------------------


@pytest.fixture()
def volumes(kubectl, core, ns):
    """A storage class of this test's own (WaitForFirstConsumer) and two volumes of it in one node's zone."""
    node = core.list_node().items[0]
    zone = node.metadata.labels["topology.kubernetes.io/zone"]
    sc = f"{ns}-sc"
    names = [f"{ns}-pv-{i}" for i in range(2)]
    kubectl.apply([{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
                    "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer"}] + [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                  "persistentVolumeReclaimPolicy": "Retain",
                  "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": f"vol-{uuid.uuid4().hex[:17]}"},
                  "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                      {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]}]}}}}
        for name in names])
    yield sc, names, zone
    kubectl.run("delete", "pv", *names, "--wait=false", check=False)
    kubectl.run("delete", "storageclass", sc, check=False)


def _claim_template(storage_class: str) -> dict:
    return {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                                                   "resources": {"requests": {"storage": "1Gi"}}}}


def _pods_of(core, ns: str, app: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=f"app={app}").items


def test_scale_a_statefulset_to_zero_and_back(kubectl, core, apps, ns, volumes):
    storage_class, pv_names, zone = volumes
    kubectl.apply([_statefulset(ns, "db", 2, [_claim_template(storage_class)])])
    status = kubectl.out("rollout", "status", "statefulset/db", "-n", ns, f"--timeout={TIMEOUT}s")
    sts = apps.read_namespaced_stateful_set("db", ns)
    assert sts.spec.update_strategy.rolling_update.partition == 0  # defaulted by the API server
    assert f"partitioned roll out complete: {sts.status.updated_replicas} new pods have been updated" in status
    pods = _pods_of(core, ns, "db")
    assert sorted(p.metadata.name for p in pods) == ["db-0", "db-1"]
    assert all(p.status.phase == "Running" for p in pods)
    for pod in pods:  # each pod on a node of its volume's zone
        assert core.read_node(pod.spec.node_name).metadata.labels["topology.kubernetes.io/zone"] == zone
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(ns).items}
    assert set(claims) == {"data-db-0", "data-db-1"}
    bound = {name: c.spec.volume_name for name, c in claims.items()}
    assert sorted(bound.values()) == sorted(pv_names) and all(c.status.phase == "Bound" for c in claims.values())

    assert kubectl.out("scale", "statefulset/db", "-n", ns, "--replicas=0").strip() == "statefulset.apps/db scaled"
    kubectl.run("wait", "--for=delete", "pod", "-l", "app=db", "-n", ns, f"--timeout={TIMEOUT}s")
    wait_for("the set to report no replicas", lambda: (apps.read_namespaced_stateful_set("db", ns).status.replicas
                                                       or 0) == 0)
    headers, rows, _, _ = get_table(kubectl, "statefulset", "db", "-n", ns)
    assert rows[0]["READY"] == "0/0"
    retained = {c.metadata.name: c.spec.volume_name for c in core.list_namespaced_persistent_volume_claim(ns).items}
    assert retained == bound  # the default retention policy keeps the claims

    kubectl.run("scale", "statefulset/db", "-n", ns, "--replicas=2")
    kubectl.run("rollout", "status", "statefulset/db", "-n", ns, f"--timeout={TIMEOUT}s")
    pods = _pods_of(core, ns, "db")
    assert sorted(p.metadata.name for p in pods) == ["db-0", "db-1"] and all(p.status.phase == "Running" for p in pods)
    for pod in pods:
        claim = next(v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim)
        assert claim == f"data-{pod.metadata.name}"
    assert {c.metadata.name: c.spec.volume_name for c in core.list_namespaced_persistent_volume_claim(ns).items} \
        == bound


def test_scaled_down_claims_go_when_the_retention_policy_says_delete(kubectl, core, ns, volumes):
    storage_class, _, _ = volumes
    kubectl.apply([_statefulset(ns, "cache", 2, [_claim_template(storage_class)],
                                {"whenScaled": "Delete", "whenDeleted": "Retain"})])
    kubectl.run("rollout", "status", "statefulset/cache", "-n", ns, f"--timeout={TIMEOUT}s")
    volume = core.read_namespaced_persistent_volume_claim("data-cache-1", ns).spec.volume_name
    kubectl.run("scale", "statefulset/cache", "-n", ns, "--replicas=1")
    kubectl.run("wait", "--for=delete", "pod/cache-1", "-n", ns, f"--timeout={TIMEOUT}s")

    def claim_gone() -> bool:
        try:
            core.read_namespaced_persistent_volume_claim("data-cache-1", ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for("the condemned pod's claim to go", claim_gone)
    assert core.read_namespaced_persistent_volume_claim("data-cache-0", ns).status.phase == "Bound"
    released = wait_for("its volume to be released", lambda: core.read_persistent_volume(volume).status.phase
                        == "Released" and core.read_persistent_volume(volume))
    assert released.spec.persistent_volume_reclaim_policy == "Retain"


def test_rollout_status_of_a_deployment_and_a_new_template(kubectl, apps, ns):
    kubectl.apply([_deployment(ns, "web")])
    out = kubectl.out("rollout", "status", "deployment/web", "-n", ns, f"--timeout={TIMEOUT}s")
    assert out.strip().endswith('deployment "web" successfully rolled out')
    kubectl.run("set", "image", "deployment/web", "-n", ns, "web=nginx:1.27")
    kubectl.run("rollout", "status", "deployment/web", "-n", ns, f"--timeout={TIMEOUT}s")
    d = apps.read_namespaced_deployment("web", ns)
    assert d.status.observed_generation == d.metadata.generation == 2
    assert d.status.updated_replicas == d.status.available_replicas == d.spec.replicas
    sets = apps.list_namespaced_replica_set(ns).items
    current = [rs for rs in sets if rs.spec.replicas]
    assert len(sets) == 2 and [rs.spec.template.spec.containers[0].image for rs in current] == ["nginx:1.27"]
    assert current[0].metadata.annotations["deployment.kubernetes.io/revision"] == "2"


def test_logs_of_a_container(kubectl, core, ns):
    kubectl.apply([_deployment(ns, "web", replicas=1)])
    kubectl.run("rollout", "status", "deployment/web", "-n", ns, f"--timeout={TIMEOUT}s")
    pod = _pods_of(core, ns, "web")[0]
    name, container = pod.metadata.name, pod.spec.containers[0]
    lines = kubectl.out("logs", name, "-n", ns, "-c", container.name).splitlines()
    assert len(lines) >= 2 and container.image in lines[0] and pod.spec.node_name in lines[0]
    assert kubectl.out("logs", name, "-n", ns, "--tail=1").splitlines() == lines[-1:]
    stamped = kubectl.out("logs", name, "-n", ns, "--tail=1", "--timestamps").strip()
    stamp, _, line = stamped.partition(" ")
    assert line == lines[-1]
    started = pod.status.container_statuses[0].state.running.started_at
    written = dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d*Z$", r"\1+00:00", stamp))
    assert abs((written - started).total_seconds()) < 2
    proc = kubectl.run("logs", name, "-n", ns, "--previous", check=False)
    assert proc.returncode != 0 and f'previous terminated container "{container.name}" in pod "{name}" not found' \
        in proc.stderr


def test_events_of_the_controllers_scheduler_and_kubelet(kubectl, core, ns, volumes):
    storage_class, _, _ = volumes
    kubectl.apply([_statefulset(ns, "db", 1, [_claim_template(storage_class)])])
    kubectl.run("rollout", "status", "statefulset/db", "-n", ns, f"--timeout={TIMEOUT}s")
    pod = core.read_namespaced_pod("db-0", ns)
    container = pod.spec.containers[0].name
    expected = {
        ("Scheduled", "pod/db-0"): f"Successfully assigned {ns}/db-0 to {pod.spec.node_name}",
        ("Started", "pod/db-0"): f"Started container {container}",
        ("Created", "pod/db-0"): f"Created container: {container}",
        ("SuccessfulCreate", "statefulset/db"): "create Pod db-0 in StatefulSet db successful",
    }

    def seen() -> dict | None:
        headers, rows = parse_table(kubectl.out("get", "events", "-n", ns))
        assert headers == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        found = {(r["REASON"], r["OBJECT"]): r for r in rows}
        return found if expected.keys() <= found.keys() else None

    found = wait_for("the events", seen, 20)
    for key, message in expected.items():
        assert found[key]["MESSAGE"] == message and found[key]["TYPE"] == "Normal"
    scheduled = kubectl.out("get", "events", "-n", ns, "--field-selector", "reason=Scheduled", "-o", "name")
    assert len(scheduled.split()) == 1


# --- namespaces held by finalizers -----------------------------------------------------------------


def test_a_namespace_stays_terminating_while_a_finalizer_holds_its_content(kubectl, core):
    name = f"kubectl-held-{uuid.uuid4().hex[:6]}"
    finalizer = "example.com/hold"
    kubectl.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                   {**_configmap(name, "held", {"a": "1"}), "metadata": {"name": "held", "namespace": name,
                                                                        "finalizers": [finalizer]}},
                   _configmap(name, "free", {"b": "2"})])
    kubectl.run("delete", "namespace", name, "--wait=false")

    def conditions() -> dict | None:
        ns = kubectl.json("get", "namespace", name)
        found = {c["type"]: c for c in ns["status"].get("conditions") or []}
        return found if found.get("NamespaceFinalizersRemaining", {}).get("status") == "True" else None

    found = wait_for("the namespace controller's conditions", conditions, 20)
    remaining = core.list_namespaced_config_map(name).items
    assert [c.metadata.name for c in remaining] == ["held"]  # what no finalizer held is gone
    assert found["NamespaceContentRemaining"]["message"] == \
        f"Some resources are remaining: configmaps. has {len(remaining)} resource instances"
    assert found["NamespaceFinalizersRemaining"]["message"] == \
        f"Some content in the namespace has finalizers remaining: {finalizer} in {len(remaining)} resource instances"
    _, rows = parse_table(kubectl.out("get", "namespace", name))
    assert rows[0]["STATUS"] == "Terminating"
    again = kubectl.run("delete", "namespace", name, "--wait=false", check=False)
    assert again.returncode == 1 and again.stderr.startswith(
        f'Error from server (Conflict): Operation cannot be fulfilled on namespaces "{name}": The system is ensuring')

    kubectl.run("patch", "configmap", "held", "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl.run("wait", "--for=delete", f"namespace/{name}", f"--timeout={TIMEOUT}s")

