"""Load and validate `params/<env>.yaml` into typed models.

A params file describes one environment of the estate. It may `extends:` another
file (by env name or relative path); mappings merge deeply, lists and scalars of
the child replace the parent's. Unknown keys are rejected, and every error names
the file, the field and what is expected, before any API call is made.
"""

from __future__ import annotations

import ipaddress
import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from opsbook.errors import ParamsError

PARAMS_DIR_ENV = "OPSBOOK_PARAMS_DIR"


def project_root() -> Path:
    """The checkout holding params/, runbooks/ and notebooks/ (OPSBOOK_ROOT overrides)."""
    if root := os.environ.get("OPSBOOK_ROOT"):
        return Path(root).resolve()
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        if (parent / "params").is_dir() and (parent / "runbooks").is_dir():
            return parent
    return Path.cwd()


def params_dir() -> Path:
    return Path(os.environ.get(PARAMS_DIR_ENV) or project_root() / "params")


# --- field types ---------------------------------------------------------------------------


@cache
def known_regions() -> frozenset[str]:
    """Every AWS region botocore knows (its bundled endpoint data: no network)."""
    import botocore.session

    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


def _region(value: str) -> str:
    if value not in known_regions():
        raise ValueError(f"expected an AWS region such as eu-central-1, got {value!r}")
    return value


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"expected an IPv4 CIDR such as 10.20.0.0/16, got {value!r} ({exc})") from None
    return str(net)


def _ssm_name(value: str) -> str:
    if not value.startswith("/") or " " in value:
        raise ValueError(f"expected an SSM parameter name starting with '/', got {value!r}")
    return value


Region = Annotated[str, AfterValidator(_region)]
Cidr = Annotated[str, AfterValidator(_cidr)]
SsmName = Annotated[str, AfterValidator(_ssm_name)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    # (a tunnel in production, the local MariaDB in the sandbox)
    endpoint_override: str | None = Field(None, pattern=r"^[\w.-]+:\d+$")


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


class Datadog(Model):
    site: str = "datadoghq.eu"
    api_host: str | None = None
    api_key_ssm: SsmName | None = None
    app_key_ssm: SsmName | None = None


class StatefulWorkload(Model):
    name: str
    kind: Literal["rabbitmq", "mysql"]
    replicas: int = Field(1, ge=1)
    volume_size_gi: int = Field(10, ge=1)
    storage_class: str = "gp3"


class Namespace(Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    team: str
    deployments: list[str] = []
    stateful: list[StatefulWorkload] = []


class Targets(Model):
    rto_minutes: float = Field(gt=0)
    rpo_minutes: float = Field(gt=0)


class SandboxSeed(Model):
    """Knobs for the sandbox twin only (lib/opsbook/sandbox reads them)."""

    omit: list[str] = Field([], description="seed pieces left out, e.g. 'nat_gateway/eu-central-1c'")


class Params(Model):
    env: str
    production: bool = False
    account_id: str = Field(pattern=r"^\d{12}$")
    region: Region
    other_regions: list[Region] = []
    aws: AwsAccess = AwsAccess()
    network: Network
    eks: Eks
    rds: list[RdsInstance] = Field(min_length=1)
    buckets: Buckets
    lock_table: str
    kms: Kms
    zones: Zones
    certificates: list[Certificate] = []
    cert_min_days: int = Field(30, ge=1)
    ssm: Ssm
    trail_name: str
    datadog: Datadog = Datadog()
    namespaces: list[Namespace] = []
    targets: Targets
    sandbox: SandboxSeed | None = None
    # where it was read from (set by the loader, not the file)
    source: str = ""

    @model_validator(mode="after")
    def _azs_in_region(self) -> Params:
        for az in self.network.azs:
            if not (az.startswith(self.region) and len(az) == len(self.region) + 1):
                raise ValueError(f"network.azs: {az!r} is not an AZ of region {self.region}")
        return self

    def rds_instance(self, identifier: str | None = None) -> RdsInstance:
        if identifier is None:
            return self.rds[0]
        for instance in self.rds:
            if instance.identifier == identifier:
                return instance
        names = ", ".join(i.identifier for i in self.rds)
        raise ParamsError(f"{self.source}: no RDS instance {identifier!r} in rds (known: {names})")

    def namespace(self, name: str) -> Namespace:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        known = ", ".join(n.name for n in self.namespaces)
        raise ParamsError(f"{self.source}: no namespace {name!r} in namespaces (known: {known})")


# --- loading -------------------------------------------------------------------------------


def resolve_file(env: str, relative_to: Path | None = None) -> Path:
    """An env name (params/<env>.yaml) or a path to a YAML file."""
    candidates = []
    if env.endswith((".yaml", ".yml")) or "/" in env:
        path = Path(env)
        if not path.is_absolute() and relative_to is not None:
            candidates.append(relative_to / path)
        candidates.append(path)
    else:
        if relative_to is not None:
            candidates.append(relative_to / f"{env}.yaml")
        candidates.append(params_dir() / f"{env}.yaml")
    for path in candidates:
        if path.is_file():
            return path.resolve()
    known = ", ".join(sorted(p.stem for p in params_dir().glob("*.yaml")))
    raise ParamsError(f"no params for environment {env!r}: looked for {candidates[-1]} (known envs: {known})")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ParamsError(f"{path}: YAML syntax error{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of params at the top level, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_merged(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], tuple[Path, ...]]:
    """The file's data with its `extends:` chain merged in, and the chain of files read."""
    if path in _chain:
        loop = " -> ".join(str(p) for p in (*_chain, path))
        raise ParamsError(f"{_chain[0]}: field 'extends': expected a chain without loops, got {loop}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    chain = (*_chain, path)
    if parent is None:
        return data, chain
    if not isinstance(parent, str):
        raise ParamsError(f"{path}: field 'extends': expected an env name or a file path, got {parent!r}")
    try:
        parent_path = resolve_file(parent, relative_to=path.parent)
    except ParamsError as exc:
        raise ParamsError(f"{path}: field 'extends': {exc}") from None
    base, chain = read_merged(parent_path, chain)
    return _merge(base, data), chain


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"field '{field}': unknown key (not part of the params schema; check its spelling)"
    if kind == "missing":
        return f"field '{field}': required but missing"
    msg = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"field '{field}': {msg.lower()}, got {got!r}"
    return f"field '{field}': {msg}"


def load_params(env: str | os.PathLike[str]) -> Params:
    """Validate params for an env name or a file; raise ParamsError naming file and field."""
    path = resolve_file(str(env))
    data, _ = read_merged(path)
    data.setdefault("env", path.stem)
    try:
        return Params.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ParamsError(f"{path}: invalid params:\n  " + "\n  ".join(lines)) from None
