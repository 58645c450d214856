"""The estate: account access, network, EKS, RDS, buckets, keys, zones, SSM, namespaces, targets."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from opsbook.params.types import Cidr, Model, SsmName

# --- the estate ----------------------------------------------------------------------------


class AwsAccess(Model):
    """How opsbook reaches the account. Credentials come from the standard chain."""

    profile: str | None = None
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    external_id: str | None = None


class Vpn(Model):
    customer_gateway_ip: str
    bgp_asn: int = Field(65000, ge=1, le=4294967295)
    office_cidrs: list[Cidr] = Field(min_length=1)

    @field_validator("customer_gateway_ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"expected an IPv4 address, got {value!r}") from None
        return value


class Network(Model):
    vpc_cidr: Cidr
    azs: list[str] = Field(min_length=1)
    public_subnets: list[Cidr]
    private_subnets: list[Cidr]
    nat_gateway_per_az: bool = True
    vpn: Vpn

    @model_validator(mode="after")
    def _subnets_fit(self) -> Network:
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        for kind in ("public_subnets", "private_subnets"):
            subnets = getattr(self, kind)
            if len(subnets) != len(self.azs):
                raise ValueError(f"{kind}: expected one subnet per AZ ({len(self.azs)}), got {len(subnets)}")
            for cidr in subnets:
                if not ipaddress.IPv4Network(cidr).subnet_of(vpc):
                    raise ValueError(f"{kind}: {cidr} is not inside the VPC CIDR {self.vpc_cidr}")
        return self


class NodeGroup(Model):
    name: str
    instance_type: str
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int = Field(ge=0)

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"expected min_size <= desired_size <= max_size, got {self.min_size}, "
                f"{self.desired_size}, {self.max_size}"
            )
        return self


class HelmRelease(Model):
    name: str
    namespace: str
    chart: str
    version: str
    app_version: str


class Eks(Model):
    cluster_name: str
    version: str = Field(pattern=r"^1\.\d+$")
    node_groups: list[NodeGroup] = Field(min_length=1)
    addons: list[HelmRelease] = []


class RdsInstance(Model):
    identifier: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")
    engine: Literal["mysql", "mariadb"] = "mysql"
    engine_version: str
    instance_class: str = Field(pattern=r"^db\.")
    allocated_storage_gb: int = Field(100, ge=20)
    multi_az: bool = True
    backup_retention_days: int = Field(7, ge=0, le=35)
    storage_encrypted: bool = True
    database: str
    username: str
    password_ssm: SsmName
    tables: list[str] = []
    # host:port that reaches the instance's data plane from where opsbook runs
    # (a tunnel in production; unset in the sandbox, whose RDS reports loopback endpoints)
    endpoint_override: str | None = Field(None, pattern=r"^[\w.-]+:\d+$")
    # command opsbook runs to reach other instances (a drill's restored copy) through a tunnel,
    # with {host}, {port} (the RDS endpoint) and {local_port} filled in; unset: connect directly
    tunnel_command: str | None = Field(None, pattern=r"\{local_port\}")


class Buckets(Model):
    terraform_state: str
    velero: str
    static: str
    logs: str
    cur: str


class Kms(Model):
    terraform: str = Field(pattern=r"^alias/")
    rds: str = Field(pattern=r"^alias/")
    ssm: str = Field(pattern=r"^alias/")


class Zones(Model):
    public: str
    private: str


class Certificate(Model):
    domain: str
    alternative_names: list[str] = []


class Ssm(Model):
    prefix: SsmName
    required: list[SsmName] = []
    secure: list[SsmName] = []


# Placeholders Datadog queries in params may use (string.Template syntax: Datadog's own



class StatefulWorkload(Model):
    name: str
    kind: Literal["rabbitmq", "mysql"]
    replicas: int = Field(1, ge=1)
    volume_size_gi: int = Field(10, ge=1)
    storage_class: str = "gp3"
    database: str | None = Field(None, description="kind mysql: the schema inside it (default: the namespace, '-' -> '_')")

    def database_name(self, namespace: str) -> str:
        return self.database or namespace.replace("-", "_")


class Namespace(Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    team: str
    deployments: list[str] = []
    stateful: list[StatefulWorkload] = []


# --- stateful workloads on EBS (the Velero drills and audit read these) --------------------



class Targets(Model):
    rto_minutes: float = Field(gt=0)
    rpo_minutes: float = Field(gt=0)


class SandboxSeed(Model):
    """Knobs for the sandbox twin only (lib/opsbook/sandbox reads them)."""

    omit: list[str] = Field([], description="seed pieces left out, e.g. 'nat_gateway/eu-central-1c'")
    snapshot_pending_seconds: float = Field(
        3.0, ge=0, description="EBS snapshots Velero takes stay pending this long after the backup completes")


# --- cost (lib/opsbook/cost reads these) ---------------------------------------------------
