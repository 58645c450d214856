"""Load and validate `params/<env>.yaml` into typed models.

A params file describes one environment of the estate. It may `extends:` another
file (by env name or relative path); mappings merge deeply, lists and scalars of
the child replace the parent's. Unknown keys are rejected, and every error names
the file, the field and what is expected, before any API call is made.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from opsbook.errors import ParamsError
from opsbook.params.cost import (  # re-exported: models stay importable from opsbook.params
    Cost,
    CostAllocation,
    CostAnomaly,
    CostAthena,
    CostBudget,
    CostForecast,
    CostSavings,
    CurExport,
    CurGenerator,
    NodeGroupScenario,
    RegionModel,
    RegionScenario,
    SharedCostRule,
    SmsVolume,
)
from opsbook.params.datadog import (  # re-exported: models stay importable from opsbook.params
    DATADOG_PLACEHOLDERS,
    CloudWatchPrices,
    Datadog,
    DatadogMetrics,
    DatadogMonitor,
    DatadogPlanPrice,
    DatadogPricing,
    DatadogQuery,
)
from opsbook.params.estate import (  # re-exported: models stay importable from opsbook.params
    AwsAccess,
    Buckets,
    Certificate,
    Eks,
    HelmRelease,
    Kms,
    Namespace,
    Network,
    NodeGroup,
    RdsInstance,
    SandboxSeed,
    Ssm,
    StatefulWorkload,
    Targets,
    Vpn,
    Zones,
)
from opsbook.params.stateful import (  # re-exported: models stay importable from opsbook.params
    ACCESS_PLACEHOLDERS,
    AccessTemplate,
    DatabaseAccess,
    RabbitmqAccess,
    StatefulAccess,
    Velero,
)
from opsbook.params.types import (  # re-exported: models stay importable from opsbook.params
    Cidr,
    Model,
    Region,
    SsmName,
    known_regions,
)

PARAMS_DIR_ENV = "OPSBOOK_PARAMS_DIR"
CACHE_DIR_ENV = "OPSBOOK_CACHE_DIR"


def project_root() -> Path:
    """The checkout holding params/, runbooks/ and notebooks/ (OPSBOOK_ROOT overrides)."""
    if root := os.environ.get("OPSBOOK_ROOT"):
        return Path(root).resolve()
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        if (parent / "params").is_dir() and (parent / "runbooks").is_dir():
            return parent
    return Path.cwd()


def cache_dir() -> Path:
    """Where derived files are cached between runs (OPSBOOK_CACHE_DIR overrides)."""
    return Path(os.environ.get(CACHE_DIR_ENV) or project_root() / ".opsbook" / "cache")


def params_dir() -> Path:
    return Path(os.environ.get(PARAMS_DIR_ENV) or project_root() / "params")





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
    stateful_access: StatefulAccess = StatefulAccess()
    velero: Velero = Velero()
    targets: Targets
    cost: Cost = Cost()
    sandbox: SandboxSeed | None = None
    # where it was read from (set by the loader, not the file)
    source: str = ""

    @model_validator(mode="after")
    def _azs_in_region(self) -> Params:
        for az in self.network.azs:
            if not (az.startswith(self.region) and len(az) == len(self.region) + 1):
                raise ValueError(f"network.azs: {az!r} is not an AZ of region {self.region}")
        return self

    @model_validator(mode="after")
    def _added_node_group_known(self) -> Params:
        added = self.cost.generator.added_node_group
        groups = [g.name for g in self.eks.node_groups]
        if added is not None and added not in groups:
            raise ValueError(f"cost.generator.added_node_group: {added!r} is not a node group of eks.node_groups "
                             f"({', '.join(groups)})")
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


def env_names() -> list[str]:
    """Environments in params/ (base-*.yaml files are shared layers, not environments)."""
    return sorted(p.stem for p in params_dir().glob("*.yaml") if not p.stem.startswith("base-"))


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
    known = ", ".join(env_names())
    raise ParamsError(f"no params for environment {env!r}: looked for {candidates[-1]} (known envs: {known})",
                      remedy=f"use a known env, give the path of a params file, or create {candidates[-1]}")


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
        raise ParamsError(f"{path}: field 'extends': {exc.message}", remedy=exc.remedy) from None
    base, chain = read_merged(parent_path, chain)
    return _merge(base, data), chain


_FIELD_PREFIX = re.compile(r"^([a-z_][\w.]*): (.*)$", re.DOTALL)


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"field '{'.'.join(loc)}': unknown key (not part of the params schema; check its spelling)"
    if kind == "missing":
        return f"field '{'.'.join(loc)}': required but missing"
    msg = error["msg"].removeprefix("Value error, ")
    # model-level validators name the sub-field they judge as "sub.field: message"
    if match := _FIELD_PREFIX.match(msg):
        loc, msg = [*loc, match.group(1)], match.group(2)
    field = ".".join(loc) or "(top level)"
    got = error.get("input")
    if kind != "value_error" and not isinstance(got, dict | list):
        return f"field '{field}': {msg[0].lower() + msg[1:]}, got {got!r}"
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


__all__ = [
    "ACCESS_PLACEHOLDERS",
    "AccessTemplate",
    "AwsAccess",
    "Buckets",
    "Certificate",
    "Cidr",
    "CloudWatchPrices",
    "Cost",
    "CostAllocation",
    "CostAnomaly",
    "CostAthena",
    "CostBudget",
    "CostForecast",
    "CostSavings",
    "CurExport",
    "CurGenerator",
    "DATADOG_PLACEHOLDERS",
    "DatabaseAccess",
    "Datadog",
    "DatadogMetrics",
    "DatadogMonitor",
    "DatadogPlanPrice",
    "DatadogPricing",
    "DatadogQuery",
    "Eks",
    "HelmRelease",
    "Kms",
    "Model",
    "Namespace",
    "Network",
    "NodeGroup",
    "NodeGroupScenario",
    "RabbitmqAccess",
    "RdsInstance",
    "Region",
    "RegionModel",
    "RegionScenario",
    "SandboxSeed",
    "SharedCostRule",
    "SmsVolume",
    "Ssm",
    "SsmName",
    "StatefulAccess",
    "StatefulWorkload",
    "Targets",
    "Velero",
    "Vpn",
    "Zones",
    "known_regions",
    "Params",
    "load_params",
    "read_merged",
    "resolve_file",
    "env_names",
    "params_dir",
    "project_root",
    "PARAMS_DIR_ENV",
]
