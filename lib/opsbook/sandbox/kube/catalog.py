"""What the sandbox cluster is built from: node shapes, the add-ons' workloads, workload templates.

Data only; `opsbook.sandbox.kube.seed` turns it into objects from params and the AWS facts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from opsbook.sandbox.aws import catalogue


@dataclass(frozen=True)
class InstanceType:
    vcpu: int
    memory_gib: float
    max_pods: int  # the EKS AMI's ENI-based limit (eni-max-pods.txt)
    arch: str = "amd64"


class _InstanceTypes(Mapping[str, InstanceType]):
    """Every instance type of moto's EC2 catalogue (`sandbox.aws.catalogue`), as a node sees it."""

    def __getitem__(self, name: str) -> InstanceType:
        shape = catalogue.shape(name)
        if shape is None:
            raise KeyError(name)
        arch = {"x86_64": "amd64", "arm64": "arm64"}.get(shape.arch, shape.arch)
        return InstanceType(shape.vcpu, shape.memory_gib, shape.max_pods, arch)

    def __iter__(self) -> Iterator[str]:
        return iter(catalogue.instance_types())

    def __len__(self) -> int:
        return len(catalogue.instance_types())


INSTANCE_TYPES: Mapping[str, InstanceType] = _InstanceTypes()

# What the kubelet reports of an instance's memory (the rest goes to the kernel and firmware).
KUBELET_MEMORY_SHARE = 0.945
ROOT_VOLUME_GI = 80
EVICTION_HARD_MEMORY_MI = 100
NODE_IMAGE = "Amazon Linux 2023.6.20250115"
CONTAINER_RUNTIME = "containerd://1.7.25"
KERNEL = "6.1.124-134.200.amzn2023.x86_64"


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory: str
    cpu_limit: str | None = None
    memory_limit: str | None = None

    def spec(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {"requests": {"cpu": self.cpu, "memory": self.memory}}
        limits = {k: v for k, v in (("cpu", self.cpu_limit), ("memory", self.memory_limit)) if v}
        if limits:
            out["limits"] = limits
        return out


@dataclass(frozen=True)
class Workload:
    """One Deployment or DaemonSet of an add-on; `{release}` in name is the Helm release name."""

    kind: str  # Deployment or DaemonSet
    name: str
    image: str  # `{app_version}` is replaced by the release's app version
    resources: Resources
    replicas: int = 1
    ports: tuple[int, ...] = ()
    host_network: bool = False
    args: tuple[str, ...] = ()
    service_account: str | None = None
    irsa_role: str | None = None  # IAM role suffix for IRSA (`<cluster>-<suffix>`)


@dataclass(frozen=True)
class Chart:
    """An add-on chart: its workloads, metadata, and how many upgrades its release history shows."""

    workloads: tuple[Workload, ...]
    description: str
    home: str
    upgrades: int = 0
    load_balancer: str | None = None  # a Service of type LoadBalancer (the NLB) named like this
    values: dict = field(default_factory=dict)


CHARTS: dict[str, Chart] = {
    "ingress-nginx": Chart(
        workloads=(
            Workload("Deployment", "{release}-controller", "registry.k8s.io/ingress-nginx/controller:v{app_version}",
                     Resources("100m", "90Mi", memory_limit="512Mi"), replicas=2, ports=(80, 443),
                     args=("/nginx-ingress-controller", "--publish-service=$(POD_NAMESPACE)/{release}-controller",
                           "--ingress-class=nginx")),
        ),
        description="Ingress controller for Kubernetes using NGINX as a reverse proxy and load balancer",
        home="https://github.com/kubernetes/ingress-nginx",
        upgrades=2,
        load_balancer="{release}-controller",
        values={"controller": {"replicaCount": 2, "service": {"annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"}}}},
    ),
    "cluster-autoscaler": Chart(
        workloads=(
            Workload("Deployment", "{release}-aws-cluster-autoscaler",
                     "registry.k8s.io/autoscaling/cluster-autoscaler:v{app_version}",
                     Resources("100m", "300Mi", memory_limit="600Mi"), ports=(8085,),
                     args=("./cluster-autoscaler", "--cloud-provider=aws", "--expander=least-waste",
                           "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
                           "k8s.io/cluster-autoscaler/{cluster}"),
                     service_account="{release}-aws-cluster-autoscaler", irsa_role="cluster-autoscaler"),
        ),
        description="Scales Kubernetes worker nodes within autoscaling groups.",
        home="https://github.com/kubernetes/autoscaler",
        values={"autoDiscovery": {"clusterName": "{cluster}"}, "awsRegion": "{region}"},
    ),
    "external-dns": Chart(
        workloads=(
            Workload("Deployment", "{release}", "registry.k8s.io/external-dns/external-dns:v{app_version}",
                     Resources("50m", "64Mi", memory_limit="128Mi"), ports=(7979,),
                     args=("--source=service", "--source=ingress", "--provider=aws", "--policy=upsert-only",
                           "--registry=txt", "--txt-owner-id={cluster}", "--domain-filter={zone}"),
                     service_account="{release}", irsa_role="external-dns"),
        ),
        description="ExternalDNS synchronizes exposed Kubernetes Services and Ingresses with DNS providers.",
        home="https://github.com/kubernetes-sigs/external-dns/",
        values={"provider": {"name": "aws"}, "domainFilters": ["{zone}"], "txtOwnerId": "{cluster}"},
    ),
    "velero": Chart(
        workloads=(
            Workload("Deployment", "{release}", "velero/velero:v{app_version}",
                     Resources("500m", "128Mi", "1", "512Mi"), ports=(8085,),
                     args=("server", "--uploader-type=kopia"),
                     service_account="{release}-server", irsa_role="velero"),
        ),
        description="A Helm chart for velero",
        home="https://github.com/vmware-tanzu/velero",
        upgrades=1,
        values={"configuration": {"backupStorageLocation": [{"name": "default", "provider": "aws",
                                                             "bucket": "{velero_bucket}",
                                                             "config": {"region": "{region}"}}],
                                  "volumeSnapshotLocation": [{"name": "default", "provider": "aws",
                                                              "config": {"region": "{region}"}}]},
                "initContainers": [{"name": "velero-plugin-for-aws",
                                    "image": "velero/velero-plugin-for-aws:v1.11.0"}]},
    ),
    "datadog": Chart(
        workloads=(
            Workload("DaemonSet", "{release}", "gcr.io/datadoghq/agent:{app_version}",
                     Resources("200m", "256Mi", memory_limit="512Mi"), ports=(8125, 8126)),
            Workload("Deployment", "{release}-cluster-agent", "gcr.io/datadoghq/cluster-agent:{app_version}",
                     Resources("200m", "256Mi", memory_limit="512Mi"), ports=(5005,)),
        ),
        description="Datadog Agent",
        home="https://www.datadoghq.com",
        upgrades=1,
        values={"datadog": {"site": "{datadog_site}", "clusterName": "{cluster}",
                            "apiKeyExistingSecret": "datadog-secret"}},
    ),
}

# A chart the catalog does not know still gets one Deployment named after its release.
GENERIC_WORKLOAD = Workload("Deployment", "{release}", "{chart}:{app_version}", Resources("100m", "128Mi"))

# EKS-managed add-ons (not Helm releases) every cluster runs in kube-system.
EKS_ADDONS: tuple[Workload, ...] = (
    Workload("Deployment", "coredns", "602401143452.dkr.ecr.{region}.amazonaws.com/eks/coredns:v1.11.3-eksbuild.2",
             Resources("100m", "70Mi", memory_limit="170Mi"), replicas=2, ports=(53,)),
    Workload("DaemonSet", "aws-node",
             "602401143452.dkr.ecr.{region}.amazonaws.com/amazon-k8s-cni:v1.19.2-eksbuild.1",
             Resources("25m", "64Mi"), host_network=True, ports=(61678,)),
    Workload("DaemonSet", "kube-proxy",
             "602401143452.dkr.ecr.{region}.amazonaws.com/eks/kube-proxy:v{kube_version}.0-minimal-eksbuild.2",
             Resources("100m", "64Mi"), host_network=True),
    Workload("Deployment", "ebs-csi-controller",
             "602401143452.dkr.ecr.{region}.amazonaws.com/eks/aws-ebs-csi-driver:v1.38.1",
             Resources("10m", "40Mi", memory_limit="256Mi"), replicas=2, ports=(9808,),
             service_account="ebs-csi-controller-sa", irsa_role="ebs-csi"),
    Workload("DaemonSet", "ebs-csi-node", "602401143452.dkr.ecr.{region}.amazonaws.com/eks/aws-ebs-csi-driver:v1.38.1",
             Resources("10m", "40Mi", memory_limit="256Mi"), ports=(9808,)),
)

# The namespaces add-ons live in (params add the microservices' and rabbitmq's).
ADDON_NAMESPACES = ("kube-system", "ingress-nginx", "velero", "datadog")
PLATFORM_TEAM = "platform"

# The microservices (params.namespaces[].deployments) and their databases / brokers.
APP_IMAGE = "{account}.dkr.ecr.{region}.amazonaws.com/smsapi/{name}:2025.01.2"
APP_REPLICAS = 2
APP_RESOURCES = Resources("250m", "512Mi", "1", "1Gi")
APP_PORT = 8080


@dataclass(frozen=True)
class StatefulTemplate:
    image: str
    resources: Resources
    ports: dict[str, int]
    mount_path: str


STATEFUL: dict[str, StatefulTemplate] = {
    "mysql": StatefulTemplate("mysql:8.0.39", Resources("500m", "1Gi", "2", "2Gi"), {"mysql": 3306},
                              "/var/lib/mysql"),
    "rabbitmq": StatefulTemplate("rabbitmq:3.13.7-management", Resources("500m", "1Gi", "1", "2Gi"),
                                 {"amqp": 5672, "management": 15672, "clustering": 25672}, "/var/lib/rabbitmq"),
}

STORAGE_CLASS = "gp3"
EBS_CSI_DRIVER = "ebs.csi.aws.com"

# Velero: the daily schedule of the stateful namespaces.
VELERO_NAMESPACE = "velero"
VELERO_LOCATION = "default"
VELERO_SCHEDULE = "daily"
VELERO_CRON = "0 2 * * *"
VELERO_TTL = "720h0m0s"
