"""The sandbox's list-price table: what its bill generator and Pricing emulator charge.

`data/prices.csv` holds on-demand list prices (USD) for what the estate uses, one row per
(service, region, usage type, operation), each with the AWS pricing page it comes from and
the date it was read. It belongs to the twin: the CUR generator prices usage with it and
the Pricing emulator serves it. Against a real account the Pricing API and the CUR are the
authority.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from opsbook.errors import OpsbookError

PRICE_COLUMNS = [
    "service_code", "region_code", "usage_type", "operation", "product_family", "unit",
    "price_usd", "attributes", "description", "source", "as_of", "note",
]


@cache
def price_table() -> pd.DataFrame:
    """The price table, checked: every row has a price, a source and a date."""
    with resources.files("opsbook.sandbox.cost").joinpath("data/prices.csv").open() as fh:
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
            f"no list price for {service_code} {usage_type} in {region} in lib/opsbook/sandbox/cost/data/prices.csv: "
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
