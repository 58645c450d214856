"""Small CUR 2.0 exports made by hand for the cost models' unit tests: each row a line item
with the columns the CUR SQL reads, written as Data Exports lays them out, read back through
the DuckDB source exactly as a real export is."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from opsbook.cost.sources import CurDuckDb

DEFAULTS: dict[str, Any] = {
    "type": "Usage", "product": "AmazonEC2", "usage_type": "", "operation": "", "resource": "", "region": "eu-central-1",
    "az": "", "account": "111122223333", "instance_type": "", "entity": "AWS", "amount": 0.0, "cost": 0.0,
    "effective": 0.0, "commit": 0.0, "used": 0.0, "tags": {},
}


def line(day: date, **fields: Any) -> dict[str, Any]:
    """One line item on `day`; unnamed fields take DEFAULTS."""
    unknown = set(fields) - set(DEFAULTS)
    assert not unknown, f"unknown line item fields {unknown}"
    return {"day": day, **DEFAULTS, **fields}


def write_cur(folder: Path, rows: list[dict[str, Any]]) -> CurDuckDb:
    """Write the rows as an export under `folder` and open it with the DuckDB source."""
    frame = pd.DataFrame(rows)
    export = folder / "cur" / "hand"
    for period, part in frame.groupby(frame["day"].map(lambda d: d.strftime("%Y-%m"))):
        table = pa.table({
            "line_item_usage_start_date": pa.array(pd.to_datetime(part["day"]).to_numpy(), pa.timestamp("ms")),
            "line_item_line_item_type": part["type"].tolist(),
            "line_item_product_code": part["product"].tolist(),
            "line_item_usage_type": part["usage_type"].tolist(),
            "line_item_operation": part["operation"].tolist(),
            "line_item_resource_id": part["resource"].tolist(),
            "product_region_code": part["region"].tolist(),
            "line_item_availability_zone": part["az"].tolist(),
            "line_item_usage_account_id": part["account"].tolist(),
            "product_instance_type": part["instance_type"].tolist(),
            "bill_billing_entity": part["entity"].tolist(),
            "line_item_usage_amount": part["amount"].astype(float).tolist(),
            "line_item_unblended_cost": part["cost"].astype(float).tolist(),
            "line_item_net_unblended_cost": part["cost"].astype(float).tolist(),
            "savings_plan_savings_plan_effective_cost": part["effective"].astype(float).tolist(),
            "savings_plan_total_commitment_to_date": part["commit"].astype(float).tolist(),
            "savings_plan_used_commitment": part["used"].astype(float).tolist(),
            "resource_tags": pa.array([sorted(t.items()) for t in part["tags"]], pa.map_(pa.string(), pa.string())),
        })
        out = export / "data" / f"BILLING_PERIOD={period}"
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / "hand-00001.snappy.parquet")
    return CurDuckDb(str(export))
