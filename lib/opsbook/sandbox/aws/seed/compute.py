"""EKS: the cluster, its node groups, EC2 instances standing for their nodes, PVC volumes."""

from __future__ import annotations

import json
from itertools import cycle

from opsbook.sandbox.aws.seed.context import Seed, tag_spec

# the EKS optimised AMI stands in as an opaque id: moto runs instances of any image
NODE_AMI = "ami-0eks0a1b2c3d4e5f6"
EBS_TYPES = {"gp2", "gp3", "io1", "io2", "st1", "sc1"}


def _role(seed: Seed, name: str, service: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    role = seed.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return role["Role"]["Arn"]


def seed_cluster(seed: Seed) -> None:
    """The cluster and its managed node groups over the private subnets of every AZ."""
    eks = seed.client("eks")
    private = list(seed.private_subnets.values())
    eks.create_cluster(
        name=seed.name,
        version=seed.params.eks.version,
        roleArn=_role(seed, f"{seed.name}-cluster", "eks.amazonaws.com"),
        resourcesVpcConfig={
            "subnetIds": private + list(seed.public_subnets.values()),
            "endpointPrivateAccess": True,
            "endpointPublicAccess": False,
        },
        tags=seed.tags(seed.name),
    )
    node_role = _role(seed, f"{seed.name}-node", "ec2.amazonaws.com")
    for group in seed.params.eks.node_groups:
        if seed.omit.has("node_group", group.name):
            continue
        eks.create_nodegroup(
            clusterName=seed.name,
            nodegroupName=group.name,
            scalingConfig={
                "minSize": group.min_size,
                "maxSize": group.max_size,
                "desiredSize": group.desired_size,
            },
            subnets=private,
            instanceTypes=[group.instance_type],
            nodeRole=node_role,
            labels={"nodegroup": group.name},
            tags=seed.tags(f"{seed.name}-{group.name}"),
        )
        _nodes(seed, group.name, group.instance_type, group.desired_size)


def _nodes(seed: Seed, group: str, instance_type: str, count: int) -> None:
    """`count` instances spread round-robin over the AZs' private subnets, tagged as EKS does."""
    azs = list(seed.private_subnets)
    per_az = {az: sum(1 for i in range(count) if azs[i % len(azs)] == az) for az in azs}
    tags = seed.tags(
        f"{seed.name}-{group}",
        **{
            "eks:cluster-name": seed.name,
            "eks:nodegroup-name": group,
            f"kubernetes.io/cluster/{seed.name}": "owned",
        },
    )
    ec2 = seed.client("ec2")
    for az, n in per_az.items():
        if not n:
            continue
        reservation = ec2.run_instances(
            ImageId=NODE_AMI,
            InstanceType=instance_type,
            MinCount=n,
            MaxCount=n,
            SubnetId=seed.private_subnets[az],
            TagSpecifications=tag_spec("instance", tags),
        )
        for instance in reservation["Instances"]:
            seed.nodes.append(
                {
                    "name": instance["PrivateDnsName"],
                    "instance_id": instance["InstanceId"],
                    "az": instance["Placement"]["AvailabilityZone"],
                    "instance_type": instance["InstanceType"],
                    "node_group": group,
                    "private_ip": instance["PrivateIpAddress"],
                }
            )


def seed_volumes(seed: Seed) -> dict[str, dict[str, object]]:
    """One EBS volume per PVC of every stateful replica, in the AZ of the node that runs it.

    Replicas go round-robin over the AZs (a StatefulSet's pods spread by topology), and
    within an AZ round-robin over its nodes; the volume is attached to that node.
    """
    ec2 = seed.client("ec2")
    azs = list(seed.params.network.azs)
    by_az = {az: [n for n in seed.nodes if n["az"] == az] for az in azs}
    rotation = {az: cycle(nodes) for az, nodes in by_az.items() if nodes}
    devices: dict[str, int] = {}
    volumes: dict[str, dict[str, object]] = {}
    k = 0
    for ns in seed.params.namespaces:
        for workload in ns.stateful:
            for ordinal in range(workload.replicas):
                az = azs[k % len(azs)]
                k += 1
                pvc = f"data-{workload.name}-{ordinal}"
                node = next(rotation[az]) if az in rotation else None
                volume = ec2.create_volume(
                    AvailabilityZone=az,
                    Size=workload.volume_size_gi,
                    VolumeType=workload.storage_class if workload.storage_class in EBS_TYPES else "gp3",
                    Encrypted=True,
                    TagSpecifications=tag_spec(
                        "volume",
                        seed.tags(
                            f"{seed.name}-{ns.name}-{pvc}",
                            **{
                                "kubernetes.io/created-for/pvc/name": pvc,
                                "kubernetes.io/created-for/pvc/namespace": ns.name,
                                "ebs.csi.aws.com/cluster": "true",
                                f"kubernetes.io/cluster/{seed.name}": "owned",
                            },
                        ),
                    ),
                )
                if node:
                    index = devices.get(node["instance_id"], 0)
                    devices[node["instance_id"]] = index + 1
                    device = f"/dev/xvd{chr(98 + index // 26)}{chr(97 + index % 26)}"  # xvdba, xvdbb, ...
                    ec2.attach_volume(
                        VolumeId=volume["VolumeId"], InstanceId=node["instance_id"], Device=device
                    )
                volumes[f"{ns.name}/{pvc}"] = {
                    "volume_id": volume["VolumeId"],
                    "az": az,
                    "size_gi": workload.volume_size_gi,
                    "node": node["name"] if node else None,
                }
    return volumes
