"""EKS: the cluster of params and its managed node groups (with the AZs of their subnets)."""

from __future__ import annotations

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS


class NodeGroup(Model):
    name: str
    status: str
    instance_types: list[str] = []
    min_size: int | None = None
    max_size: int | None = None
    desired_size: int | None = None
    subnet_ids: list[str] = []
    azs: list[str] = []  # the AZs its subnets are in


class Cluster(Model):
    name: str
    status: str
    version: str
    node_groups: list[NodeGroup] = []


@COLLECTORS.register("cluster")
def collect_cluster(env: Env) -> Cluster | None:
    """The cluster params name, or None when EKS has no such cluster."""
    eks = env.aws("eks")
    name = env.params.eks.cluster_name
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
    except eks.exceptions.ResourceNotFoundException:
        return None
    names: list[str] = []
    for page in eks.get_paginator("list_nodegroups").paginate(clusterName=name):
        names.extend(page.get("nodegroups", []))
    groups = [eks.describe_nodegroup(clusterName=name, nodegroupName=n)["nodegroup"] for n in names]
    az_of = _subnet_azs(env, sorted({s for g in groups for s in g.get("subnets", [])}))
    return Cluster(
        name=name,
        status=cluster["status"],
        version=cluster["version"],
        node_groups=[_node_group(g, az_of) for g in groups],
    )


def _subnet_azs(env: Env, subnet_ids: list[str]) -> dict[str, str]:
    """Subnet id -> AZ; a filter (not SubnetIds=) so a deleted subnet is just absent."""
    if not subnet_ids:
        return {}
    ec2 = env.aws("ec2")
    az_of: dict[str, str] = {}
    for page in ec2.get_paginator("describe_subnets").paginate(
        Filters=[{"Name": "subnet-id", "Values": subnet_ids}]
    ):
        az_of.update({s["SubnetId"]: s["AvailabilityZone"] for s in page["Subnets"]})
    return az_of


def _node_group(group: dict, az_of: dict[str, str]) -> NodeGroup:
    scaling = group.get("scalingConfig", {})
    subnets = group.get("subnets", [])
    return NodeGroup(
        name=group["nodegroupName"],
        status=group["status"],
        instance_types=group.get("instanceTypes") or [],
        min_size=scaling.get("minSize"),
        max_size=scaling.get("maxSize"),
        desired_size=scaling.get("desiredSize"),
        subnet_ids=subnets,
        azs=sorted({az_of[s] for s in subnets if s in az_of}),
    )
