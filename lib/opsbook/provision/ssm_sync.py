"""SSM parameter trees compared between regions or environments, and missing ones copied.

Values are read with decryption only to be hashed (SHA-256) at once; the comparison
says `same` or `differs`, never a value nor a hash. A copy reads the value at apply
time, wrapped in `Secret` (so any accidental print or record is masked), and writes it
into the target region encrypted with that region's key (params `kms.ssm`, the same
alias name in every region); when that alias is missing in the target region, the plan
creates the key first. Parameters that differ are only reported, unless `overwrite`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from opsbook.clients import Env, error_code
from opsbook.errors import OpsbookError, UsageError
from opsbook.guard import Change, Plan, aws_tags, ownership_tags
from opsbook.provision import naming
from opsbook.secrets import Secret

PURPOSE = "ssm-sync"


@dataclass(frozen=True)
class Parameter:
    """A parameter's metadata and a digest of its value (the value itself is not kept)."""

    name: str
    relative: str
    type: str
    key: str | None
    tier: str
    data_type: str
    last_modified: datetime | None
    version: int
    digest: str


@dataclass(frozen=True)
class Tree:
    """Where a tree lives: environment, region, prefix."""

    env: Env
    region: str
    prefix: str

    @property
    def label(self) -> str:
        return f"{self.env.name}:{self.region}:{self.prefix}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _alias_names(env: Env, region: str) -> dict[str, str]:
    """Key id and ARN -> alias name, so KMS keys show as aliases."""
    kms = env.aws("kms", region)
    out: dict[str, str] = {}
    for page in kms.get_paginator("list_aliases").paginate():
        for alias in page["Aliases"]:
            if alias.get("TargetKeyId"):
                out[alias["TargetKeyId"]] = alias["AliasName"]
    return out


def _key_label(key: str | None, aliases: dict[str, str]) -> str | None:
    if not key:
        return None
    key_id = key.split("/")[-1] if key.startswith("arn:") and ":key/" in key else key
    return aliases.get(key_id, key)


def read_tree(tree: Tree) -> dict[str, Parameter]:
    """Every parameter under the prefix, by name relative to it."""
    ssm = tree.env.aws("ssm", tree.region)
    prefix = tree.prefix.rstrip("/")
    meta: dict[str, dict[str, Any]] = {}
    for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [prefix or "/"]}]):
        for item in page["Parameters"]:
            meta[item["Name"]] = item
    digests: dict[str, str] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix or "/", Recursive=True,
                                                                     WithDecryption=True):
        for item in page["Parameters"]:
            digests[item["Name"]] = _digest(item["Value"])  # the value goes no further than this line
    aliases = _alias_names(tree.env, tree.region)
    out = {}
    for name, item in meta.items():
        relative = name[len(prefix):] if prefix else name
        out[relative] = Parameter(
            name=name, relative=relative, type=item["Type"], key=_key_label(item.get("KeyId"), aliases),
            tier=item.get("Tier", "Standard"), data_type=item.get("DataType", "text"),
            last_modified=item.get("LastModifiedDate"), version=int(item.get("Version", 0)),
            digest=digests.get(name, ""),
        )
    return out


def compare(source: dict[str, Parameter], target: dict[str, Parameter]) -> pd.DataFrame:
    """Side by side: names, types, KMS keys, last modified; values as same/differs only."""
    rows = []
    for rel in sorted(set(source) | set(target)):
        s, t = source.get(rel), target.get(rel)
        if s and t:
            status = "same" if (s.digest == t.digest and s.type == t.type) else "differs"
            value = "same" if s.digest == t.digest else "differs"
        else:
            status = "missing in target" if s else "only in target"
            value = "—"
        rows.append({
            "parameter": rel, "status": status, "value": value,
            "source type": s and s.type, "target type": t and t.type,
            "source key": s and s.key, "target key": t and t.key,
            "source modified": s and s.last_modified, "target modified": t and t.last_modified,
        })
    columns = ["parameter", "status", "value", "source type", "target type", "source key", "target key",
               "source modified", "target modified"]
    return pd.DataFrame(rows, columns=columns).astype(object).where(lambda t: t.notna(), "—")


# --- the plan -------------------------------------------------------------------------------


def trees(env: Env, target_region: str = "", target_env: str = "", prefix: str = "") -> tuple[Tree, Tree]:
    """Source: the env's home region; target: another region (default other_regions[0]) or env."""
    from opsbook.clients import open_env

    other = env if not target_env or target_env == env.name else open_env(target_env, run_id=env.run_id)
    if other is env:
        region = naming.first_other_region(env.params, target_region)
    else:
        region = naming.target_region(other.params, target_region)
    if other is env and region == env.params.region:
        raise UsageError(f"target_region: {region} is the source region itself",
                         remedy="pick another region, or a target_env")
    source_prefix = prefix or env.params.ssm.prefix
    if not source_prefix.startswith("/"):
        raise UsageError(f"prefix: expected an SSM path starting with '/', got {source_prefix!r}")
    if not source_prefix.startswith(env.params.ssm.prefix):
        raise UsageError(f"prefix: expected a path under the env's tree {env.params.ssm.prefix}, got {source_prefix}")
    target_prefix = other.params.ssm.prefix + source_prefix[len(env.params.ssm.prefix):]
    return Tree(env, env.params.region, source_prefix), Tree(other, region, target_prefix)


class _Copier:
    def __init__(self, source: Tree, target: Tree) -> None:
        self.source, self.target = source, target
        self.src = source.env.aws("ssm", source.region)
        self.dst = target.env.aws("ssm", target.region)
        self.kms = target.env.aws("kms", target.region)
        self.alias = target.env.params.kms.ssm
        self.tags = ownership_tags(target.env.run_id, PURPOSE, target.env.now().isoformat(timespec="seconds"))

    def create_key(self) -> None:
        key = self.kms.create_key(
            Description=f"SSM parameters of {self.target.env.name} in {self.target.region} (opsbook)",
            Tags=[{"TagKey": k, "TagValue": v} for k, v in self.tags.items()])["KeyMetadata"]
        self.kms.enable_key_rotation(KeyId=key["KeyId"])
        self.kms.create_alias(AliasName=self.alias, TargetKeyId=key["KeyId"])

    def copy(self, param: Parameter, target_name: str, overwrite: bool) -> None:
        value = Secret(self.src.get_parameter(Name=param.name, WithDecryption=True)["Parameter"]["Value"],
                       name=param.name)
        kwargs: dict[str, Any] = {"Name": target_name, "Type": param.type, "Tier": param.tier,
                                  "DataType": param.data_type}
        if param.type == "SecureString":
            kwargs["KeyId"] = self.alias
        if overwrite:
            kwargs["Overwrite"] = True
        else:
            kwargs["Tags"] = aws_tags(self.tags)
        try:
            self.dst.put_parameter(Value=value.reveal(), **kwargs)
        except Exception as exc:  # noqa: BLE001 - any error's text may quote the value: never show it
            reason = error_code(exc) or type(exc).__name__
            raise OpsbookError(f"could not write {target_name} in {self.target.region}: {reason}",
                               remedy=f"check the role may ssm:PutParameter, and kms:Encrypt with {self.alias}") from None


def key_exists(env: Env, region: str, alias: str) -> bool:
    kms = env.aws("kms", region)
    try:
        kms.describe_key(KeyId=alias)
    except kms.exceptions.NotFoundException:
        return False
    return True


def plan_sync(env: Env, target_region: str = "", target_env: str = "", prefix: str = "",
              overwrite: bool = False) -> tuple[Plan, pd.DataFrame]:
    """The comparison, and the plan copying what the target lacks (and, with overwrite, what differs)."""
    source, target = trees(env, target_region, target_env, prefix)
    src, dst = read_tree(source), read_tree(target)
    table = compare(src, dst)
    plan = Plan(f"SSM {source.label} -> {target.label}", production=target.env.params.production)
    copier = _Copier(source, target)
    needs_key = any(p.type == "SecureString" and (rel not in dst or overwrite) for rel, p in src.items())
    if needs_key:
        have = key_exists(target.env, target.region, copier.alias)
        plan.add(Change(f"kms {copier.alias} ({target.region})", "key", "exists" if have else None,
                        "customer managed key", "no-op" if have else "create", do=copier.create_key))
    for rel, param in sorted(src.items()):
        name = target.prefix.rstrip("/") + rel
        desired = f"{param.type}" + (f", key {copier.alias}" if param.type == "SecureString" else "")
        have = dst.get(rel)
        if have is None:
            plan.add(Change(f"ssm {name} ({target.region})", "parameter", None, desired, "create",
                            do=lambda p=param, n=name: copier.copy(p, n, False)))
        elif have.digest != param.digest or have.type != param.type:
            current = f"{have.type}" + (f", key {have.key}" if have.key else "") + ", value differs" * (
                have.digest != param.digest)
            action = "update" if overwrite else "no-op"
            plan.add(Change(f"ssm {name} ({target.region})", "parameter",
                            current if overwrite else f"{current} (kept: overwrite is off)", desired, action,
                            do=lambda p=param, n=name: copier.copy(p, n, True)))
    return plan, table

