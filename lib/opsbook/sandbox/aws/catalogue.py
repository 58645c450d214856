"""What the sandbox's AWS can be: the regions, their AZs and the EC2 instance types moto knows.

- regions: botocore's endpoint data for EC2 in the `aws` partition (the regions an estate
  can be seeded in; moto has AZs for each);
- AZs: moto's `RegionsAndZonesBackend.zones` (some regions skip letters);
- instance types: moto's `ec2/resources/instance_types.json` (DescribeInstanceTypes data):
  vCPUs, memory, architecture, ENIs and IPv4 addresses per ENI.

The price table derives prices for these types, the Kubernetes seed sizes its nodes by
them, and the estate generator draws from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

# The instance families RDS offers for MySQL and MariaDB (https://aws.amazon.com/rds/instance-types/),
# named as their EC2 families: RDS class `db.<type>` runs on EC2 type `<type>`.
RDS_FAMILIES = ("m5", "m5d", "m6g", "m6gd", "m6i", "m7g", "r5", "r5b", "r5d", "r6g", "r6gd", "r6i", "r7g",
                "t3", "t4g", "x2g")


@dataclass(frozen=True)
class InstanceShape:
    vcpu: int
    memory_gib: float
    arch: str  # x86_64, arm64, or a Mac host's x86_64_mac / arm64_mac
    max_pods: int  # the EKS AMI's limit: ENIs x (IPv4 addresses per ENI - 1) + 2


@cache
def aws_regions() -> tuple[str, ...]:
    """The regions botocore's endpoint data lists for EC2 in the `aws` partition."""
    import botocore.session

    return tuple(sorted(botocore.session.get_session().get_available_regions("ec2", partition_name="aws")))


@cache
def zones(region: str) -> tuple[str, ...]:
    """The AZ names moto knows in a region (ap-northeast-1 has no b)."""
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    return tuple(sorted(z.name for z in RegionsAndZonesBackend.zones.get(region, [])))


@cache
def instance_types() -> dict[str, dict[str, Any]]:
    """moto's EC2 instance-type catalogue, by type name."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    return INSTANCE_TYPES


@cache
def shape(instance_type: str) -> InstanceShape | None:
    """The shape of a type of moto's catalogue; None for a type it does not know.

    Max pods follow amazon-eks-ami's `eni-max-pods.txt` formula
    (https://github.com/awslabs/amazon-eks-ami/blob/main/templates/shared/runtime/eni-max-pods.txt).
    """
    info = instance_types().get(instance_type)
    if info is None:
        return None
    net = info["NetworkInfo"]
    return InstanceShape(
        vcpu=info["VCpuInfo"]["DefaultVCpus"],
        memory_gib=info["MemoryInfo"]["SizeInMiB"] / 1024,
        arch=info["ProcessorInfo"]["SupportedArchitectures"][-1],
        max_pods=net["MaximumNetworkInterfaces"] * (net["Ipv4AddressesPerInterface"] - 1) + 2,
    )


def rds_instance_type(db_class: str) -> str | None:
    """The EC2 type behind an RDS class (`db.r6g.large` -> `r6g.large`) of a family RDS offers, else None."""
    itype = db_class.removeprefix("db.")
    if not db_class.startswith("db.") or itype.split(".")[0] not in RDS_FAMILIES or itype.endswith(".metal"):
        return None
    return itype if itype in instance_types() else None


@cache
def rds_classes() -> tuple[str, ...]:
    """Every RDS class the sandbox knows: `db.<type>` for the RDS families' types in moto's catalogue."""
    return tuple(sorted(f"db.{t}" for t in instance_types() if rds_instance_type(f"db.{t}")))
