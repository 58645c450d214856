"""Field types every params model uses, and the strict base model."""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
)

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
