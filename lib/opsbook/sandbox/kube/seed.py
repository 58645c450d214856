"""Seed the sandbox's Kubernetes API server with the cluster, through the official kubernetes client.

Built from params (namespaces, workloads, add-ons, buckets) and the facts the AWS seed
recorded (`facts["nodes"]`: the node groups' EC2 instances, `facts["ebs_volumes"]`: one
EBS volume per PVC), so every Node and PersistentVolume points at a resource in moto.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from opsbook.errors import OpsbookError
from opsbook.params import HelmRelease, Params
from opsbook.sandbox.kube import catalog, helm, objects
from opsbook.sandbox.kube.metrics import parse_quantity
from opsbook.sandbox.kube.placement import Placement, PodIPs
from opsbook.sandbox.kube.velero_objects import velero_objects

NODE_KEYS = ("name", "instance_id", "az", "instance_type", "node_group", "private_ip")
VOLUME_KEYS = ("volume_id", "az", "size_gi")
# A stateful workload's nightly maintenance Job last ran this long before the seed, and took this long.
FINISHED_JOB_AGE = dt.timedelta(hours=2)
FINISHED_JOB_RUN = dt.timedelta(seconds=95)
# Age of the releases' revisions: the latest was deployed a week ago, each earlier one 60 days before.
LATEST_DEPLOY_DAYS_AGO = 7
DAYS_BETWEEN_UPGRADES = 60


def volume_key(namespace: str, statefulset: str, ordinal: int) -> str:
    """The key of facts["ebs_volumes"]: a PVC named as a StatefulSet names it."""
    return f"{namespace}/data-{statefulset}-{ordinal}"


def check_facts(facts: dict[str, Any], params: Params | None = None) -> None:
    """Fail clearly when the AWS seed did not leave the nodes and volumes this seed needs."""
    nodes = facts.get("nodes")
    volumes = facts.get("ebs_volumes")
    expected = (
        'facts["nodes"] = [{name, instance_id, az, instance_type, node_group, private_ip}, ...] and '
        'facts["ebs_volumes"] = {"<namespace>/data-<statefulset>-<ordinal>": {volume_id, az, size_gi}}'
    )
    if not nodes or not isinstance(nodes, list):
        raise OpsbookError(f"kube seed: no nodes in the sandbox facts; the AWS seed must run first and record {expected}")
    if not isinstance(volumes, dict):
        raise OpsbookError(f"kube seed: no EBS volumes in the sandbox facts; the AWS seed must record {expected}")
    for node in nodes:
        missing = [k for k in NODE_KEYS if k not in node]
        if missing:
            raise OpsbookError(f"kube seed: node fact {node!r} lacks {', '.join(missing)}; expected {expected}")
        if node["instance_type"] not in catalog.INSTANCE_TYPES:
            raise OpsbookError(f"kube seed: node {node['name']} has instance type {node['instance_type']!r} that "
                               "moto's EC2 catalogue does not know: the sandbox has no shape for it")
    for key, volume in volumes.items():
        missing = [k for k in VOLUME_KEYS if k not in volume]
        if missing:
            raise OpsbookError(f"kube seed: EBS volume fact {key!r} lacks {', '.join(missing)}; expected {expected}")
    if params is not None:
        wanted = [volume_key(ns.name, w.name, i) for ns in params.namespaces for w in ns.stateful
                  for i in range(w.replicas)]
        absent = [key for key in wanted if key not in volumes]
        if absent:
            raise OpsbookError(f"kube seed: no EBS volume fact for the PVCs {', '.join(absent)}; "
                               f"the AWS seed must create one volume per stateful replica")


def seed_cluster(params: Params, kubeconfig: Path, facts: dict[str, Any]) -> dict[str, int]:
    """Create the cluster's objects; return how many of each kind were made."""
    check_facts(facts, params)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        return ClusterSeed(params, api, facts).run()
    finally:
        api.close()


def _fill(value: Any, ctx: dict[str, str]) -> Any:
    """Replace {placeholders} in every string of a nested value."""
    if isinstance(value, str):
        return value.format(**ctx)
    if isinstance(value, dict):
        return {k: _fill(v, ctx) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(v, ctx) for v in value]
    return value


def _kube_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _succeeded_pod_status(pod: Any, node_ip: str, pod_ip: str, started: dt.datetime,
                          finished: dt.datetime) -> dict[str, Any]:
    """The status the kubelet leaves on a pod whose containers all exited 0."""
    start, end = _kube_time(started), _kube_time(finished)
    conditions = [{"type": t, "status": "False", "reason": "PodCompleted", "lastTransitionTime": end}
                  for t in ("PodReadyToStartContainers", "Ready", "ContainersReady")]
    conditions += [{"type": t, "status": "True", "lastTransitionTime": start} for t in ("Initialized", "PodScheduled")]
    return {
        "phase": "Succeeded", "conditions": conditions, "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": start, "qosClass": pod.status.qos_class,
        "containerStatuses": [{"name": c.name, "image": c.image, "imageID": "", "ready": False, "started": False,
                               "restartCount": 0, "state": {"terminated": {
                                   "exitCode": 0, "reason": "Completed", "startedAt": start, "finishedAt": end}}}
                              for c in pod.spec.containers],
    }


def _go_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class ClusterSeed:
    """One seeding run: namespaces, nodes, storage, add-ons, microservices, Velero."""

    def __init__(self, params: Params, api: client.ApiClient, facts: dict[str, Any]) -> None:
        self.params = params
        self.facts = facts
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.nodes: list[dict[str, Any]] = sorted(facts["nodes"], key=lambda n: n["name"])
        self.placement = Placement(self.nodes)
        self.pod_ips = PodIPs(params, self.nodes)
        self.counts: dict[str, int] = {}
        # one clock reading for the whole seed: release revisions are dated from it, so two
        # revisions of a release never straddle a second boundary
        self.seeded_at = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def _count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def run(self) -> dict[str, int]:
        self.seed_namespaces()
        self.seed_nodes()
        self.seed_storage_class()
        for workload in catalog.EKS_ADDONS:
            self.seed_workload("kube-system", workload, self._ctx(), {"eks.amazonaws.com/component": workload.name})
        for release in self.params.eks.addons:
            self.seed_release(release)
        for ns in self.params.namespaces:
            for name in ns.deployments:
                self.seed_microservice(ns.name, ns.team, name, ns.stateful)
            for stateful in ns.stateful:
                self.seed_statefulset(ns.name, ns.team, stateful)
            if ns.stateful:
                self.seed_finished_job(ns.name, ns.team, ns.stateful[0])
        self.seed_velero()
        return self.counts

    # --- namespaces, nodes, storage ------------------------------------------------------------

    def seed_namespaces(self) -> None:
        wanted = {name: catalog.PLATFORM_TEAM for name in catalog.ADDON_NAMESPACES}
        wanted.update({a.namespace: catalog.PLATFORM_TEAM for a in self.params.eks.addons})
        wanted.update({ns.name: ns.team for ns in self.params.namespaces})
        existing = {n.metadata.name for n in self.core.list_namespace().items}
        for name, team in wanted.items():
            labels = {"team": team}
            if name in existing:  # kube-system and friends come with the cluster
                self.core.patch_namespace(name, {"metadata": {"labels": labels}})
            else:
                self.core.create_namespace({"metadata": {"name": name, "labels": labels}})
            self._count("namespaces")

    def seed_nodes(self) -> None:
        for fact in self.nodes:
            self.core.create_node(objects.node(fact, self.params.region, self.params.eks.version))
            self._count("nodes")

    def seed_storage_class(self) -> None:
        self.storage.create_storage_class({
            "metadata": {"name": catalog.STORAGE_CLASS,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": catalog.EBS_CSI_DRIVER,
            "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4"},
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": True,
        })
        self._count("storageclasses")

    # --- pods and workloads --------------------------------------------------------------------

    def _ctx(self, **extra: str) -> dict[str, str]:
        return {
            "cluster": self.params.eks.cluster_name, "region": self.params.region,
            "account": self.params.account_id, "zone": self.params.zones.public,
            "velero_bucket": self.params.buckets.velero, "datadog_site": self.params.datadog.site,
            "kube_version": self.params.eks.version, **extra,
        }

    def _pod(self, namespace: str, name: str, labels: dict[str, str], spec: dict[str, Any], owner: dict[str, Any],
             node: dict[str, Any] | None) -> bool:
        """Create a pod Running on its node, or Pending when no node could take it; True when it runs."""
        body = {"metadata": {"name": name, "labels": labels, "ownerReferences": [owner]}, "spec": dict(spec)}
        if node is not None:
            body["spec"]["nodeName"] = node["name"]
        pod = self.core.create_namespaced_pod(namespace, body)
        self._count("pods")
        if node is None:
            status = objects.unschedulable_pod_status(len(self.nodes))
        else:
            ip = node["private_ip"] if spec.get("hostNetwork") else self.pod_ips.allocate(node["az"])
            status = objects.running_pod_status(pod, node["private_ip"], ip)
        self.core.patch_namespaced_pod_status(name, namespace, {"status": status})
        return node is not None

    def _pod_resources(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The pod's total requests (what the scheduler fits onto a node)."""
        cpu = sum(parse_quantity(c["resources"]["requests"]["cpu"]) for c in spec["containers"])
        memory = sum(parse_quantity(c["resources"]["requests"]["memory"]) for c in spec["containers"])
        return {"requests": {"cpu": str(cpu), "memory": str(memory)}}

    def _deployment(self, namespace: str, name: str, labels: dict[str, str], selector: dict[str, str],
                    spec: dict[str, Any], replicas: int, annotations: dict[str, str] | None = None) -> None:
        template = {"metadata": {"labels": {**labels, **selector}}, "spec": spec}
        deployment = self.apps.create_namespaced_deployment(namespace, {
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": selector}, "template": template,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
        })
        pod_hash = objects.short_hash(namespace, name, yaml.safe_dump(template))
        rs_labels = {**labels, **selector, "pod-template-hash": pod_hash}
        rs_name = f"{name}-{pod_hash}"
        rs = self.apps.create_namespaced_replica_set(namespace, {
            "metadata": {"name": rs_name, "labels": rs_labels,
                         "ownerReferences": [objects.owner("Deployment", "apps/v1", deployment)],
                         "annotations": {"deployment.kubernetes.io/revision": "1",
                                         "deployment.kubernetes.io/desired-replicas": str(replicas)}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {**selector, "pod-template-hash": pod_hash}},
                     "template": {"metadata": {"labels": rs_labels}, "spec": spec}},
        })
        ready = 0
        for i in range(replicas):
            pod_name = f"{rs_name}-{objects.short_hash(rs_name, str(i), length=5)}"
            node = self.placement.place(self._pod_resources(spec))
            ready += self._pod(namespace, pod_name, rs_labels, spec, objects.owner("ReplicaSet", "apps/v1", rs), node)
        self.apps.patch_namespaced_replica_set_status(rs_name, namespace,
                                                      objects.replicaset_status(replicas, ready, 1))
        self.apps.patch_namespaced_deployment_status(name, namespace, objects.deployment_status(replicas, ready, 1))
        self._count("deployments")

    def _daemonset(self, namespace: str, name: str, labels: dict[str, str], selector: dict[str, str],
                   spec: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
        template = {"metadata": {"labels": {**labels, **selector}}, "spec": spec}
        ds = self.apps.create_namespaced_daemon_set(namespace, {
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
            "spec": {"selector": {"matchLabels": selector}, "template": template,
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
        })
        revision = objects.short_hash(namespace, name, yaml.safe_dump(template))
        pod_labels = {**labels, **selector, "controller-revision-hash": revision, "pod-template-generation": "1"}
        ready = 0
        for node in self.nodes:
            pod_name = f"{name}-{objects.short_hash(name, node['name'], length=5)}"
            placed = self.placement.place(self._pod_resources(spec), [node["name"]])
            ready += self._pod(namespace, pod_name, pod_labels, spec, objects.owner("DaemonSet", "apps/v1", ds), placed)
        self.apps.patch_namespaced_daemon_set_status(name, namespace,
                                                     objects.daemonset_status(len(self.nodes), ready, 1))
        self._count("daemonsets")

    @staticmethod
    def _container(name: str, image: str, resources: catalog.Resources, ports: Any = (),
                   args: Any = (), env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        container: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                                     "resources": resources.spec()}
        if isinstance(ports, dict):
            container["ports"] = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()]
        elif ports:
            container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in ports]
        if args:
            container["args"] = list(args)
        if env:
            container["env"] = env
        return container

    def _workload_bodies(self, namespace: str, workload: catalog.Workload, ctx: dict[str, str],
                         labels: dict[str, str]) -> tuple[str, dict[str, str], dict[str, Any], dict | None]:
        name = workload.name.format(**ctx)
        selector = {"app.kubernetes.io/name": name}
        if "release" in ctx:
            selector["app.kubernetes.io/instance"] = ctx["release"]
        spec: dict[str, Any] = {
            "containers": [self._container(name.split("-")[-1] if workload.kind == "DaemonSet" else name,
                                           workload.image.format(**ctx), workload.resources, workload.ports,
                                           _fill(workload.args, ctx))],
            "dnsPolicy": "ClusterFirst",
        }
        if workload.host_network:
            spec["hostNetwork"] = True
        account = None
        if workload.service_account:
            sa_name = workload.service_account.format(**ctx)
            spec["serviceAccountName"] = sa_name
            annotations = {}
            if workload.irsa_role:
                role = f"arn:aws:iam::{self.params.account_id}:role/{self.params.eks.cluster_name}-{workload.irsa_role}"
                annotations["eks.amazonaws.com/role-arn"] = role
            account = {"metadata": {"name": sa_name, "namespace": namespace, "labels": labels,
                                    "annotations": annotations}}
        return name, selector, spec, account

    def seed_workload(self, namespace: str, workload: catalog.Workload, ctx: dict[str, str],
                      labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        name, selector, spec, account = self._workload_bodies(namespace, workload, ctx, labels)
        if account is not None:
            self.core.create_namespaced_service_account(namespace, account)
        if workload.kind == "DaemonSet":
            self._daemonset(namespace, name, labels, selector, spec, annotations)
        else:
            self._deployment(namespace, name, labels, selector, spec, workload.replicas, annotations)

    # --- Helm releases ---------------------------------------------------------------------------

    def seed_release(self, release: HelmRelease) -> None:
        chart = catalog.CHARTS.get(release.chart)
        workloads = chart.workloads if chart else (catalog.GENERIC_WORKLOAD,)
        revisions = (chart.upgrades if chart else 0) + 1
        history = [(helm.previous_version(release.version, revisions - r), helm.previous_version(release.app_version,
                                                                                       revisions - r))
                   for r in range(1, revisions + 1)]
        history[-1] = (release.version, release.app_version)
        for revision, (version, app_version) in enumerate(history, start=1):
            ctx = self._ctx(release=release.name, chart=release.chart, app_version=app_version)
            labels = self._helm_labels(release, version, app_version)
            annotations = {"meta.helm.sh/release-name": release.name,
                           "meta.helm.sh/release-namespace": release.namespace}
            manifest = self._manifest(release, workloads, ctx, labels, chart)
            self._release_secret(release, revision, revisions, version, app_version, chart, manifest, ctx)
            if revision == revisions:
                for workload in workloads:
                    self.seed_workload(release.namespace, workload, ctx, labels, annotations)
                if chart and chart.load_balancer:
                    self._load_balancer(release.namespace, chart.load_balancer.format(**ctx), labels, annotations)

    @staticmethod
    def _helm_labels(release: HelmRelease, version: str, app_version: str) -> dict[str, str]:
        return {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": release.name,
                "app.kubernetes.io/part-of": release.chart, "app.kubernetes.io/version": app_version,
                "helm.sh/chart": f"{release.chart}-{version}", "team": catalog.PLATFORM_TEAM}

    def _manifest(self, release: HelmRelease, workloads: Any, ctx: dict[str, str], labels: dict[str, str],
                  chart: catalog.Chart | None) -> str:
        """The rendered manifest Helm records: one YAML document per object, with its template source."""
        docs = []
        for workload in workloads:
            name, selector, spec, account = self._workload_bodies(release.namespace, workload, ctx, labels)
            if account is not None:
                docs.append(("serviceaccount.yaml", {"apiVersion": "v1", "kind": "ServiceAccount", **account}))
            body = {"apiVersion": "apps/v1", "kind": workload.kind,
                    "metadata": {"name": name, "namespace": release.namespace, "labels": labels},
                    "spec": {"selector": {"matchLabels": selector},
                             "template": {"metadata": {"labels": {**labels, **selector}}, "spec": spec}}}
            if workload.kind == "Deployment":
                body["spec"]["replicas"] = workload.replicas
            docs.append((f"{workload.kind.lower()}.yaml", body))
        if chart and chart.load_balancer:
            docs.append(("service.yaml", {"apiVersion": "v1", "kind": "Service", **self._lb_body(
                release.namespace, chart.load_balancer.format(**ctx), labels, {})}))
        return "".join(f"---\n# Source: {release.chart}/templates/{src}\n{yaml.safe_dump(doc, sort_keys=False)}"
                       for src, doc in docs)

    def _release_secret(self, release: HelmRelease, revision: int, latest: int, version: str, app_version: str,
                        chart: catalog.Chart | None, manifest: str, ctx: dict[str, str]) -> None:
        deployed = [self.seeded_at - dt.timedelta(days=LATEST_DEPLOY_DAYS_AGO + DAYS_BETWEEN_UPGRADES * (latest - r))
                    for r in range(1, latest + 1)]
        metadata = {"name": release.chart, "version": version, "appVersion": app_version, "apiVersion": "v2",
                    "type": "application"}
        if chart:
            metadata.update({"description": chart.description, "home": chart.home, "sources": [chart.home]})
        record = helm.release(
            release.name, release.namespace, revision, "deployed" if revision == latest else "superseded",
            metadata, _fill(chart.values if chart else {}, ctx), manifest,
            first_deployed=_go_time(deployed[0]), last_deployed=_go_time(deployed[revision - 1]),
        )
        self.core.create_namespaced_secret(release.namespace,
                                           helm.release_secret(record, int(deployed[revision - 1].timestamp())))
        self._count("helm_release_secrets")

    def _lb_body(self, namespace: str, name: str, labels: dict[str, str], annotations: dict[str, str]) -> dict:
        return {
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": {
                **annotations,
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
            }},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                     "selector": {"app.kubernetes.io/name": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"},
                               {"name": "https", "port": 443, "targetPort": 443, "protocol": "TCP"}]},
        }

    def _load_balancer(self, namespace: str, name: str, labels: dict[str, str], annotations: dict[str, str]) -> None:
        self.core.create_namespaced_service(namespace, self._lb_body(namespace, name, labels, annotations))
        hostname = self.facts.get("nlb_dns_name") or (
            f"k8s-{namespace[:9]}-{name[:9]}-{objects.short_hash(namespace, name)}"
            f".elb.{self.params.region}.amazonaws.com")
        self.core.patch_namespaced_service_status(
            name, namespace, {"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}})
        self._count("services")

    # --- microservices and their stateful workloads -------------------------------------------------

    def seed_microservice(self, namespace: str, team: str, name: str, stateful: Any) -> None:
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "smsapi", "team": team}
        env = [{"name": "APP_ENV", "value": self.params.env}]
        databases = [w for w in stateful if w.kind == "mysql"]
        if databases:
            db = databases[0].name
            env.append({"name": "DB_HOST", "value": f"{db}-0.{db}.{namespace}.svc.cluster.local"})
        image = catalog.APP_IMAGE.format(account=self.params.account_id, region=self.params.region, name=name)
        spec = {"containers": [self._container(name, image, catalog.APP_RESOURCES, {"http": catalog.APP_PORT},
                                               env=env)],
                "dnsPolicy": "ClusterFirst"}
        self._deployment(namespace, name, labels, {"app.kubernetes.io/name": name}, spec, catalog.APP_REPLICAS)
        self.core.create_namespaced_service(namespace, {
            "metadata": {"name": name, "labels": labels},
            "spec": {"selector": {"app.kubernetes.io/name": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": catalog.APP_PORT}]},
        })
        self._count("services")

    def seed_statefulset(self, namespace: str, team: str, workload: Any) -> None:
        template = catalog.STATEFUL[workload.kind]
        name = workload.name
        selector = {"app.kubernetes.io/name": name}
        labels = {**selector, "app.kubernetes.io/component": workload.kind, "team": team}
        self.core.create_namespaced_service(namespace, {
            "metadata": {"name": name, "labels": labels},
            "spec": {"clusterIP": "None", "selector": selector,
                     "ports": [{"name": n, "port": p} for n, p in template.ports.items()]},
        })
        self._count("services")
        spec = {
            "containers": [self._container(workload.kind, template.image, template.resources, template.ports)],
            "dnsPolicy": "ClusterFirst",
        }
        spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": template.mount_path}]
        claim_template = objects.pvc("data", namespace, labels, workload.volume_size_gi, workload.storage_class)
        del claim_template["metadata"]["namespace"], claim_template["metadata"]["finalizers"]
        sts = self.apps.create_namespaced_stateful_set(namespace, {
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": workload.replicas, "serviceName": name, "selector": {"matchLabels": selector},
                     "podManagementPolicy": "Parallel", "updateStrategy": {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": labels}, "spec": spec},
                     "volumeClaimTemplates": [claim_template]},
        })
        revision = objects.revision_name(name, {"metadata": {"labels": labels}, "spec": spec})
        ready = 0
        for ordinal in range(workload.replicas):
            pod_name = f"{name}-{ordinal}"
            volume = self.facts["ebs_volumes"][volume_key(namespace, name, ordinal)]
            node = self._stateful_node(self._pod_resources(spec), volume)
            claim_name = self._claim(namespace, f"data-{pod_name}", labels, volume, workload, node)
            pod_spec = {**spec, "hostname": pod_name, "subdomain": name,
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]}
            pod_labels = {**labels, "statefulset.kubernetes.io/pod-name": pod_name,
                          "apps.kubernetes.io/pod-index": str(ordinal), "controller-revision-hash": revision}
            ready += self._pod(namespace, pod_name, pod_labels, pod_spec,
                               objects.owner("StatefulSet", "apps/v1", sts), node)
        self.apps.patch_namespaced_stateful_set_status(
            name, namespace, objects.statefulset_status(workload.replicas, ready, 1, revision))
        self._count("statefulsets")

    def _stateful_node(self, resources: dict[str, Any], volume: dict[str, Any]) -> dict[str, Any] | None:
        """The node the volume is attached to (the AWS seed's `node`) if it fits the pod, else one in its AZ."""
        attached = volume.get("node")
        if attached in self.placement.nodes:
            node = self.placement.place(resources, [attached])
            if node is not None:
                return node
        in_az = [n["name"] for n in self.nodes if n["az"] == volume["az"]]
        return self.placement.place(resources, in_az)

    def _claim(self, namespace: str, claim_name: str, labels: dict[str, str], volume: dict[str, Any],
               workload: Any, node: dict[str, Any] | None) -> str:
        """A PVC and, once its pod has a node (WaitForFirstConsumer), the EBS-backed PV bound to it."""
        claim = self.core.create_namespaced_persistent_volume_claim(
            namespace, objects.pvc(claim_name, namespace, labels, volume["size_gi"], workload.storage_class))
        self._count("persistentvolumeclaims")
        if node is None:
            return claim_name  # stays Pending, as an unscheduled pod's claim does
        volume_body = objects.pv(claim, volume, workload.storage_class)
        pv_name = volume_body["metadata"]["name"]
        self.core.create_persistent_volume(volume_body)
        self.core.patch_persistent_volume_status(pv_name, {"status": {"phase": "Bound"}})
        self.core.patch_namespaced_persistent_volume_claim(claim_name, namespace,
                                                           objects.bound_claim_patch(pv_name, node["name"]))
        self.core.patch_namespaced_persistent_volume_claim_status(claim_name, namespace,
                                                                  objects.bound_claim_status(volume["size_gi"]))
        self._count("persistentvolumes")
        return claim_name

    def seed_finished_job(self, namespace: str, team: str, workload: Any) -> None:
        """What a CronJob of the workload left from its last run: a finished Job and its Succeeded pod.

        Velero backs both up and restores neither (pkg/restore/restore.go `isCompleted`), so a
        restore drill must not count them as missing.
        """
        name = f"{workload.name}-maintenance-{int(self.seeded_at.timestamp()) // 60}"  # a CronJob's naming
        started = self.seeded_at - FINISHED_JOB_AGE
        finished = started + FINISHED_JOB_RUN
        labels = {"app.kubernetes.io/name": f"{workload.name}-maintenance", "app.kubernetes.io/component": "maintenance",
                  "team": team, "batch.kubernetes.io/job-name": name, "job-name": name}
        template = catalog.STATEFUL[workload.kind]
        spec = {"containers": [self._container("maintenance", template.image, template.resources)],
                "restartPolicy": "Never", "dnsPolicy": "ClusterFirst"}
        job = self._finished_job(namespace, name, labels, spec, started, finished)
        node = self.nodes[0]
        pod = self.core.create_namespaced_pod(namespace, {
            "metadata": {"name": f"{name}-{objects.short_hash(namespace, name, length=5)}", "labels": labels,
                         "ownerReferences": [objects.owner("Job", "batch/v1", job)]},
            "spec": {**spec, "nodeName": node["name"]}})
        self.core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": _succeeded_pod_status(
            pod, node["private_ip"], self.pod_ips.allocate(node["az"]), started, finished)})
        self._count("pods")

    def _finished_job(self, namespace: str, name: str, labels: dict[str, str], spec: dict[str, Any],
                      started: dt.datetime, finished: dt.datetime) -> Any:
        """The Job, Complete."""
        batch = client.BatchV1Api(self.core.api_client)
        job = batch.create_namespaced_job(namespace, {
            "metadata": {"name": name, "labels": labels},
            "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6, "manualSelector": True,
                     "selector": {"matchLabels": {"batch.kubernetes.io/job-name": name}},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}})
        done = _kube_time(finished)
        batch.patch_namespaced_job_status(name, namespace, {"status": {
            "startTime": _kube_time(started), "completionTime": done, "succeeded": 1, "active": 0, "ready": 0,
            "conditions": [{"type": t, "status": "True", "lastProbeTime": done, "lastTransitionTime": done}
                           for t in ("SuccessCriteriaMet", "Complete")]}})
        self._count("jobs")
        return job

    # --- Velero ----------------------------------------------------------------------------------

    def seed_velero(self) -> None:
        namespace = next((a.namespace for a in self.params.eks.addons if a.chart == "velero"),
                         catalog.VELERO_NAMESPACE)
        region = self.params.region
        stamp = objects.now()
        for plural, body in velero_objects(self.params, namespace, region, stamp):
            self.custom.create_namespaced_custom_object("velero.io", "v1", namespace, plural, body)
            self._count(plural)
