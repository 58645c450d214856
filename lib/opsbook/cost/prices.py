"""The repo's list-price table and AWS usage-type region prefixes.

`data/prices.csv` holds on-demand list prices (USD) for what the estate uses, one row per
(service, region, usage type, operation), each with the AWS pricing page it comes from and
the date it was read. It feeds the sandbox only: the CUR generator prices usage with it and
the Pricing emulator serves it. Against a real account the Pricing API and the CUR are the
authority; the one non-AWS price (Datadog) is read from here directly.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import pandas as pd

from opsbook.errors import OpsbookError

# The prefix AWS puts before usage types in each region (EC2, EBS, NAT, ELB, RDS, S3 ...).
# us-east-1 has none for most services; KMS uses the region name itself ("eu-central-1-KMS-Keys").
REGION_PREFIX = {
    "us-east-1": "USE1",
    "us-east-2": "USE2",
    "us-west-1": "USW1",
    "us-west-2": "USW2",
    "ca-central-1": "CAN1",
    "eu-central-1": "EUC1",
    "eu-central-2": "EUC2",
    "eu-west-1": "EU",
    "eu-west-2": "EUW2",
    "eu-west-3": "EUW3",
    "eu-north-1": "EUN1",
    "eu-south-1": "EUS1",
    "eu-south-2": "EUS2",
    "ap-south-1": "APS3",
    "ap-northeast-1": "APN1",
    "ap-northeast-2": "APN2",
    "ap-southeast-1": "APS1",
    "ap-southeast-2": "APS2",
    "sa-east-1": "SAE1",
    "me-south-1": "MES1",
}
_PREFIXES = sorted(set(REGION_PREFIX.values()), key=len, reverse=True)
_PREFIX_RE = re.compile(r"^(?:(" + "|".join(_PREFIXES) + r")-|([a-z]{2}(?:-[a-z]+)+-\d)-)")
PRICE_COLUMNS = [
    "service_code", "region_code", "usage_type", "operation", "product_family", "unit",
    "price_usd", "attributes", "description", "source", "as_of", "note",
]


def strip_region(usage_type: str) -> str:
    """'EUC1-BoxUsage:m6i.large' -> 'BoxUsage:m6i.large'; 'eu-west-1-KMS-Keys' -> 'KMS-Keys'."""
    return _PREFIX_RE.sub("", usage_type, count=1)


def usage_type_in(original: str, region: str) -> str:
    """The usage type `original` would have in `region`: same base, that region's prefix.

    Unprefixed (global) usage types stay as they are; KMS-style ones take the region name.
    """
    match = _PREFIX_RE.match(original)
    if match is None:
        return original
    base = original[match.end():]
    if match.group(2):
        return f"{region}-{base}"
    if region not in REGION_PREFIX:
        raise OpsbookError(f"no usage-type prefix known for region {region!r}; add it to REGION_PREFIX")
    return f"{REGION_PREFIX[region]}-{base}"


def region_of_usage_type(usage_type: str) -> str | None:
    match = _PREFIX_RE.match(usage_type)
    if not match:
        return None
    if match.group(2):
        return match.group(2)
    return {v: k for k, v in REGION_PREFIX.items()}[match.group(1)]


@cache
def price_table() -> pd.DataFrame:
    """The price table, checked: every row has a price, a source and a date."""
    with resources.files("opsbook.cost").joinpath("data/prices.csv").open() as fh:
        table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    if list(table.columns) != PRICE_COLUMNS:
        raise OpsbookError(f"prices.csv: expected columns {PRICE_COLUMNS}, got {list(table.columns)}")
    table["price_usd"] = table["price_usd"].astype(float)
    missing = table[(table["source"] == "") | (table["as_of"] == "")]
    if len(missing):
        raise OpsbookError(f"prices.csv: rows without source or date: {missing['usage_type'].tolist()}")
    return table


def attributes(row: pd.Series | dict) -> dict[str, str]:
    """The 'k=v;k=v' attributes column as a dict."""
    text = row["attributes"]
    return dict(part.split("=", 1) for part in text.split(";") if part) if text else {}


def list_price(service_code: str, region: str, usage_type: str, operation: str | None = None) -> float:
    """A price from the table (the sandbox's source of truth; Datadog everywhere)."""
    table = price_table()
    rows = table[(table.service_code == service_code) & (table.region_code == region) & (table.usage_type == usage_type)]
    if operation is not None and len(rows) > 1:
        rows = rows[rows.operation == operation]
    if rows.empty:
        raise OpsbookError(
            f"no list price for {service_code} {usage_type} in {region} in lib/opsbook/cost/data/prices.csv: "
            "add a row with its AWS pricing page and date"
        )
    return float(rows.iloc[0]["price_usd"])


def instance_shape(instance_type: str) -> tuple[float, float]:
    """(vCPUs, GiB) of an EC2 instance type known to the price table."""
    table = price_table()
    for _, row in table[table.product_family == "Compute Instance"].iterrows():
        attrs = attributes(row)
        if attrs.get("instanceType") == instance_type:
            return float(attrs["vcpu"]), float(attrs["memory"].split()[0])
    raise OpsbookError(f"instance type {instance_type!r} is not in prices.csv: add its rows (vcpu, memory, price)")
