"""SSM Parameter Store: which required parameters exist, and their types. Names only:
values are never read (DescribeParameters returns none)."""

from __future__ import annotations

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS

BATCH = 50  # values per ParameterStringFilter


class ParameterInfo(Model):
    name: str
    type: str  # String, StringList, SecureString
    kms_key_id: str | None = None


@COLLECTORS.register("ssm_parameters")
def collect_parameters(env: Env) -> list[ParameterInfo]:
    ssm = env.aws("ssm")
    names = list(dict.fromkeys([*env.params.ssm.required, *env.params.ssm.secure]))
    found: list[ParameterInfo] = []
    for start in range(0, len(names), BATCH):
        filters = [{"Key": "Name", "Option": "Equals", "Values": names[start : start + BATCH]}]
        for page in ssm.get_paginator("describe_parameters").paginate(ParameterFilters=filters):
            found.extend(
                ParameterInfo(name=p["Name"], type=p["Type"], kms_key_id=p.get("KeyId"))
                for p in page["Parameters"]
            )
    return found
