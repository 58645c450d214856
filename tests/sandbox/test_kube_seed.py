"""The seeded sandbox cluster, checked through the kubernetes client against params and moto."""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path

import boto3
import jsonschema
import pytest
import yaml
from kubernetes import client, config
from opsbook.errors import OpsbookError
from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.kube.crds import crd_files

VELERO_PLURALS = ("backups", "restores", "schedules", "backupstoragelocations", "deletebackuprequests",
                  "volumesnapshotlocations")


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


@pytest.fixture(scope="module")
def ec2(sandbox, sandbox_params):
    return boto3.client("ec2", region_name=sandbox_params.region)


def test_kubeconfig_names_the_cluster(sandbox, sandbox_params):
    cfg = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    name = sandbox_params.eks.cluster_name
    assert cfg["current-context"] == name
    assert [c["name"] for c in cfg["clusters"]] == [name] and [u["name"] for u in cfg["users"]] == [name]
    assert cfg["clusters"][0]["cluster"]["server"].startswith("http://127.0.0.1:")


def test_missing_facts_fail_clearly(sandbox_params, tmp_path):
    from opsbook.sandbox.kube.service import KubeService

    ctx = SandboxContext(params=sandbox_params, state_dir=tmp_path, facts={})
    service = KubeService()
    with pytest.raises(OpsbookError, match=r'facts\["nodes"\]'):
        service.start(ctx)
    assert service.server is None  # nothing was left running
    assert not (tmp_path / "kubeconfig").exists()


def test_namespaces_with_team_labels(core, sandbox_params):
    expected = {ns.name: ns.team for ns in sandbox_params.namespaces}
    found = {n.metadata.name: (n.metadata.labels or {}) for n in core.list_namespace().items}
    for name, team in expected.items():
        assert found[name].get("team") == team, name
    addon_namespaces = {a.namespace for a in sandbox_params.eks.addons} | {"kube-system", "ingress-nginx", "velero",
                                                                          "datadog"}
    assert addon_namespaces <= set(found)


def test_nodes_match_the_ec2_instances(core, ec2, sandbox_params):
    nodes = core.list_node().items
    reservations = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    instances = {i["InstanceId"]: i for r in reservations["Reservations"] for i in r["Instances"]}
    expected_count = sum(g.desired_size for g in sandbox_params.eks.node_groups)
    assert len(nodes) == expected_count
    types = {t["InstanceType"]: t for t in ec2.describe_instance_types(
        InstanceTypes=sorted({g.instance_type for g in sandbox_params.eks.node_groups}))["InstanceTypes"]}
    zones = set()
    for node in nodes:
        labels = node.metadata.labels
        az, instance_id = node.spec.provider_id.removeprefix("aws:///").split("/")
        instance = instances[instance_id]
        assert instance["Placement"]["AvailabilityZone"] == az == labels["topology.kubernetes.io/zone"]
        assert labels["topology.kubernetes.io/region"] == sandbox_params.region
        assert labels["node.kubernetes.io/instance-type"] == instance["InstanceType"]
        assert labels["eks.amazonaws.com/nodegroup"] in {g.name for g in sandbox_params.eks.node_groups}
        internal = [a.address for a in node.status.addresses if a.type == "InternalIP"]
        assert internal == [instance["PrivateIpAddress"]]
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True"
        shape = types[instance["InstanceType"]]
        assert int(node.status.capacity["cpu"]) == shape["VCpuInfo"]["DefaultVCpus"]
        memory_mib = int(node.status.capacity["memory"].removesuffix("Ki")) / 1024
        assert 0.9 * shape["MemoryInfo"]["SizeInMiB"] <= memory_mib <= shape["MemoryInfo"]["SizeInMiB"]
        allocatable_m = int(node.status.allocatable["cpu"].removesuffix("m"))
        assert 0.95 * 1000 * shape["VCpuInfo"]["DefaultVCpus"] < allocatable_m < 1000 * shape["VCpuInfo"]["DefaultVCpus"]
        zones.add(az)
    assert zones == set(sandbox_params.network.azs)


def test_workloads_from_params(core, apps, sandbox_params):
    for ns in sandbox_params.namespaces:
        for name in ns.deployments:
            deployment = apps.read_namespaced_deployment(name, ns.name)
            assert deployment.status.available_replicas == deployment.spec.replicas >= 1
            for container in deployment.spec.template.spec.containers:
                assert container.resources.requests["cpu"] and container.resources.requests["memory"]
                assert container.resources.limits["cpu"] and container.resources.limits["memory"]
        for stateful in ns.stateful:
            sts = apps.read_namespaced_stateful_set(stateful.name, ns.name)
            assert sts.spec.replicas == stateful.replicas == sts.status.ready_replicas
            template = sts.spec.volume_claim_templates[0]
            assert template.spec.resources.requests["storage"] == f"{stateful.volume_size_gi}Gi"
            for ordinal in range(stateful.replicas):
                pod = core.read_namespaced_pod(f"{stateful.name}-{ordinal}", ns.name)
                assert pod.status.phase == "Running"
                claim = core.read_namespaced_persistent_volume_claim(f"data-{stateful.name}-{ordinal}", ns.name)
                assert claim.status.phase == "Bound"
                assert [v.persistent_volume_claim.claim_name for v in pod.spec.volumes
                        if v.persistent_volume_claim] == [claim.metadata.name]


def test_every_pod_runs_ready_on_a_known_node(core, sandbox_params):
    nodes = {n.metadata.name for n in core.list_node().items}
    pods = core.list_pod_for_all_namespaces().items
    finished = [p for p in pods if p.status.phase == "Succeeded"]
    pods = [p for p in pods if p.status.phase != "Succeeded"]
    assert len(pods) > 20
    # each stateful namespace keeps its maintenance Job's last pod, finished (Velero restores none of them)
    assert sorted(p.metadata.namespace for p in finished) == sorted(n.name for n in sandbox_params.namespaces
                                                                    if n.stateful)
    for pod in finished:
        assert pod.spec.node_name in nodes and pod.metadata.labels["job-name"]
        assert [s.state.terminated.exit_code for s in pod.status.container_statuses] == [0]
    for pod in pods:
        assert pod.status.phase == "Running", pod.metadata.name
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        assert pod.spec.node_name in nodes
        assert all(s.ready for s in pod.status.container_statuses)


def test_pods_fit_their_nodes(core):
    from kubernetes.utils import parse_quantity

    requested: dict[str, float] = {}
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.status.phase in ("Succeeded", "Failed"):
            continue  # a finished pod holds no resources (the scheduler counts only pods not terminated)
        cpu = sum(parse_quantity(((c.resources and c.resources.requests) or {}).get("cpu", "0"))
                  for c in pod.spec.containers)
        requested[pod.spec.node_name] = requested.get(pod.spec.node_name, 0) + cpu
    for node in core.list_node().items:
        assert requested.get(node.metadata.name, 0) <= parse_quantity(node.status.allocatable["cpu"])


def test_pvs_point_at_ebs_volumes_in_moto(core, ec2):
    # the seed's: what Velero restores made (other tests of this worker drill on the same sandbox)
    # carries the restore's label, and the namespaces those restores made are not the seed's
    restored = "velero.io/restore-name"
    pvs = [pv for pv in core.list_persistent_volume().items if restored not in (pv.metadata.labels or {})]
    claims = {(c.metadata.namespace, c.metadata.name): c
              for c in core.list_persistent_volume_claim_for_all_namespaces().items
              if restored not in (c.metadata.labels or {})}
    assert pvs and len(pvs) == len(claims)
    volumes = {v["VolumeId"]: v for v in ec2.describe_volumes(
        VolumeIds=[pv.spec.csi.volume_handle for pv in pvs])["Volumes"]}
    nodes = {n.metadata.name: n for n in core.list_node().items}
    pods_by_claim = {}
    for pod in core.list_pod_for_all_namespaces().items:
        for volume in pod.spec.volumes or []:
            if volume.persistent_volume_claim:
                pods_by_claim[(pod.metadata.namespace, volume.persistent_volume_claim.claim_name)] = pod
    for pv in pvs:
        assert pv.spec.csi.driver == "ebs.csi.aws.com"
        ebs = volumes[pv.spec.csi.volume_handle]
        zone = pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
        assert zone.key == "topology.kubernetes.io/zone" and zone.values == [ebs["AvailabilityZone"]]
        assert pv.spec.capacity["storage"] == f"{ebs['Size']}Gi"
        # bound both ways
        ref = pv.spec.claim_ref
        claim = claims[(ref.namespace, ref.name)]
        assert claim.metadata.uid == ref.uid and claim.spec.volume_name == pv.metadata.name
        assert pv.metadata.name == f"pvc-{claim.metadata.uid}" and pv.status.phase == "Bound"
        # the pod runs in the volume's AZ, on the instance the volume is attached to when it is attached
        pod = pods_by_claim[(ref.namespace, ref.name)]
        node = nodes[pod.spec.node_name]
        assert node.metadata.labels["topology.kubernetes.io/zone"] == ebs["AvailabilityZone"]
        attached = [a["InstanceId"] for a in ebs.get("Attachments", [])]
        if attached:
            assert node.spec.provider_id.endswith("/" + attached[0])


def test_default_storage_class(kube):
    classes = client.StorageV1Api(kube).list_storage_class().items
    defaults = [c for c in classes
                if (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
    assert [c.metadata.name for c in defaults] == ["gp3"] and defaults[0].provisioner == "ebs.csi.aws.com"


def decode_helm_release(secret: client.V1Secret) -> dict:
    """Helm 3's secret driver: Secret data (base64) holds base64(gzip(JSON of the release))."""
    helm_string = base64.b64decode(secret.data["release"])
    raw = base64.b64decode(helm_string)
    assert raw[:2] == b"\x1f\x8b"  # gzip magic, as Helm writes it
    return json.loads(gzip.decompress(raw))


def test_helm_release_secrets_decode_to_the_params_chart_versions(core, sandbox_params):
    multi_revision = 0
    for addon in sandbox_params.eks.addons:
        secrets = core.list_namespaced_secret(addon.namespace, label_selector=f"owner=helm,name={addon.name}").items
        assert secrets, addon.name
        releases = []
        for secret in secrets:
            assert secret.type == "helm.sh/release.v1"
            release = decode_helm_release(secret)
            assert secret.metadata.name == f"sh.helm.release.v1.{release['name']}.v{release['version']}"
            assert secret.metadata.labels["status"] == release["info"]["status"]
            assert secret.metadata.labels["version"] == str(release["version"])
            assert release["namespace"] == addon.namespace and release["chart"]["metadata"]["name"] == addon.chart
            releases.append(release)
        releases.sort(key=lambda r: r["version"])
        latest = releases[-1]
        assert latest["info"]["status"] == "deployed"
        assert latest["chart"]["metadata"]["version"] == addon.version
        assert latest["chart"]["metadata"]["appVersion"] == addon.app_version
        assert latest["info"]["first_deployed"] == releases[0]["info"]["last_deployed"]
        for older in releases[:-1]:
            assert older["info"]["status"] == "superseded"
            assert older["chart"]["metadata"]["version"] != addon.version
        if len(releases) > 1:
            multi_revision += 1
        # the release's manifest names workloads that run in the cluster
        docs = [d for d in yaml.safe_load_all(latest["manifest"]) if d]
        assert any(d["kind"] in ("Deployment", "DaemonSet") for d in docs)
    assert multi_revision >= 2


def test_addon_workloads_carry_the_chart_version(apps, sandbox_params):
    for addon in sandbox_params.eks.addons:
        selector = f"app.kubernetes.io/instance={addon.name}"
        workloads = (apps.list_namespaced_deployment(addon.namespace, label_selector=selector).items
                     + apps.list_namespaced_daemon_set(addon.namespace, label_selector=selector).items)
        assert workloads, addon.name
        for workload in workloads:
            assert workload.metadata.labels["helm.sh/chart"] == f"{addon.chart}-{addon.version}"
            images = [c.image for c in workload.spec.template.spec.containers]
            assert any(addon.app_version in image for image in images), images


def _openapi_to_json_schema(node):
    """OpenAPI v3 `nullable` to JSON Schema (independently of the emulator's own translation)."""
    if isinstance(node, dict):
        out = {k: _openapi_to_json_schema(v) for k, v in node.items()
               if k != "nullable" and not k.startswith("x-kubernetes-")}
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_openapi_to_json_schema(v) for v in node]
    return node


def _crd_schemas() -> dict[str, dict]:
    schemas = {}
    for path in crd_files():  # Velero's vendored contract, and the emulator's CRDs for the kinds it lacks
        for crd in yaml.safe_load_all(path.read_text()):
            if crd:
                schemas[crd["spec"]["names"]["plural"]] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schemas


def test_seeded_velero_objects_validate_against_their_crds(kube, sandbox_params):
    custom = client.CustomObjectsApi(kube)
    schemas = _crd_schemas()
    seen = {}
    for plural in VELERO_PLURALS:
        validator = jsonschema.Draft4Validator(_openapi_to_json_schema(schemas[plural]),
                                               format_checker=jsonschema.FormatChecker())
        items = custom.list_cluster_custom_object("velero.io", "v1", plural)["items"]
        for item in items:
            errors = [e.message for e in validator.iter_errors({k: v for k, v in item.items() if k != "metadata"})]
            assert not errors, (plural, item["metadata"]["name"], errors)
        seen[plural] = items
    [bsl] = seen["backupstoragelocations"]
    assert bsl["spec"]["provider"] == "aws" and bsl["spec"]["objectStorage"]["bucket"] == sandbox_params.buckets.velero
    assert bsl["spec"]["config"]["region"] == sandbox_params.region and bsl["status"]["phase"] == "Available"
    assert len(seen["volumesnapshotlocations"]) == 1
    [schedule] = seen["schedules"]
    stateful = {ns.name for ns in sandbox_params.namespaces if ns.stateful}
    assert set(schedule["spec"]["template"]["includedNamespaces"]) == stateful
    assert schedule["spec"]["template"]["snapshotVolumes"] is True and schedule["spec"]["template"]["ttl"]


def test_velero_bucket_exists_in_moto(kube, sandbox_params):
    bsl = client.CustomObjectsApi(kube).list_cluster_custom_object("velero.io", "v1", "backupstoragelocations")
    bucket = bsl["items"][0]["spec"]["objectStorage"]["bucket"]
    boto3.client("s3", region_name=sandbox_params.region).head_bucket(Bucket=bucket)


def test_metrics_api_reports_usage_for_running_pods_and_nodes(kube, core):
    from kubernetes.utils import parse_quantity

    custom = client.CustomObjectsApi(kube)
    pod_metrics = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "pods")["items"]
    running = {(p.metadata.namespace, p.metadata.name) for p in core.list_pod_for_all_namespaces(
        field_selector="status.phase=Running").items}
    assert {(m["metadata"]["namespace"], m["metadata"]["name"]) for m in pod_metrics} == running
    over, under = 0, 0
    requests = {(p.metadata.namespace, p.metadata.name, c.name): (c.resources.requests or {}).get("cpu")
                for p in core.list_pod_for_all_namespaces().items for c in p.spec.containers}
    for metric in pod_metrics:
        for container in metric["containers"]:
            usage = parse_quantity(container["usage"]["cpu"])
            assert usage > 0 and parse_quantity(container["usage"]["memory"]) > 0
            request = requests[(metric["metadata"]["namespace"], metric["metadata"]["name"], container["name"])]
            if request:
                over += usage > parse_quantity(request)
                under += usage < parse_quantity(request)
    assert over and under  # max(request, usage) has both cases to choose from
    again = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "pods")["items"]
    assert again == pod_metrics  # deterministic
    node_metrics = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
    assert {m["metadata"]["name"] for m in node_metrics} == {n.metadata.name for n in core.list_node().items}
    one = node_metrics[0]["metadata"]["name"]
    assert custom.get_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes", one)["usage"]["cpu"]


def test_seed_leaves_pods_pending_when_nodes_lack_room(sandbox_params, tmp_path):
    """With one small node (as when params omit a node group), the seed still succeeds: pods wait Pending."""
    from opsbook.sandbox.kube.kubeconfig import write_kubeconfig
    from opsbook.sandbox.kube.seed import seed_cluster
    from opsbook.sandbox.kube.server import KubeApiServer

    az = sandbox_params.network.azs[0]
    facts = {
        "nodes": [{"name": "ip-10-20-128-9.eu-central-1.compute.internal", "instance_id": "i-0small", "az": az,
                   "instance_type": "t3.medium", "node_group": "general", "private_ip": "10.20.128.9"}],
        "ebs_volumes": {f"{ns.name}/data-{w.name}-{i}": {"volume_id": f"vol-{ns.name}-{i}", "az": az,
                                                        "size_gi": w.volume_size_gi}
                        for ns in sandbox_params.namespaces for w in ns.stateful for i in range(w.replicas)},
    }
    server = KubeApiServer(controllers=False).start()  # as the sandbox service seeds: controllers after the seed
    try:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "small", server.url)
        seed_cluster(sandbox_params, kubeconfig, facts)
        api = config.new_client_from_config(config_file=str(kubeconfig))
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        pods = core.list_pod_for_all_namespaces().items
        pending = [p for p in pods if p.status.phase == "Pending"]
        running = [p for p in pods if p.status.phase == "Running"]
        assert pending and running
        for pod in pending:
            assert pod.spec.node_name is None
            assert [(c.type, c.status, c.reason) for c in pod.status.conditions] == [
                ("PodScheduled", "False", "Unschedulable")]
        # a Pending pod's claim waits for its first consumer: no volume is bound to it
        bound = {pv.spec.claim_ref.name for pv in core.list_persistent_volume().items}
        for claim in core.list_persistent_volume_claim_for_all_namespaces().items:
            users = [p for p in pods if any(v.persistent_volume_claim and
                                            v.persistent_volume_claim.claim_name == claim.metadata.name
                                            for v in p.spec.volumes or [])
                     and p.metadata.namespace == claim.metadata.namespace]
            assert (claim.status.phase == "Bound") == (users[0].status.phase == "Running")
            assert (claim.metadata.name in bound) == (claim.status.phase == "Bound")
        for deployment in apps.list_deployment_for_all_namespaces().items:
            selector = ",".join(f"{k}={v}" for k, v in deployment.spec.selector.match_labels.items())
            ready = [p for p in core.list_namespaced_pod(deployment.metadata.namespace, label_selector=selector).items
                     if p.status.phase == "Running"]
            assert (deployment.status.ready_replicas or 0) == len(ready)
        api.close()
    finally:
        server.stop()
