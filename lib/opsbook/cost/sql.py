"""CUR 2.0 SQL for a `CostQuery`: written for DuckDB, rendered for Athena (Trino) with sqlglot.

The SQL reads a table named `cur` (a DuckDB view over the Parquet files; in Athena the
Glue table over the export's data/ folder) whose `billing_period` partition column
('YYYY-MM') prunes files. Amortized cost follows the CUR query library: Savings Plan
covered usage at its effective cost, the negations dropped, and only the unused part of
the recurring fee.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from opsbook.cost.query import UNTAGGED, CostQuery, cur_tag_key, is_tag, periods, tag_key

TABLE = "cur"

METRIC_SQL = {
    "unblended": "line_item_unblended_cost",
    "net_unblended": "line_item_net_unblended_cost",
    "amortized": (
        "CASE line_item_line_item_type"
        " WHEN 'SavingsPlanCoveredUsage' THEN savings_plan_savings_plan_effective_cost"
        " WHEN 'SavingsPlanRecurringFee' THEN savings_plan_total_commitment_to_date - savings_plan_used_commitment"
        " WHEN 'SavingsPlanNegation' THEN 0"
        " WHEN 'SavingsPlanUpfrontFee' THEN 0"
        " ELSE line_item_unblended_cost END"
    ),
}


def sql_name(dim: str) -> str:
    return re.sub(r"\W", "_", dim)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def dimension_sql(dim: str) -> str:
    """The SQL expression behind a dimension."""
    if dim == "team" or is_tag(dim):
        key = _quote(cur_tag_key(tag_key(dim)))
        return f"COALESCE(NULLIF(resource_tags[{key}], ''), {_quote(UNTAGGED)})"
    return {
        "service": "CASE WHEN line_item_line_item_type = 'Tax' THEN 'Tax' ELSE line_item_product_code END",
        "usage_type": "line_item_usage_type",
        "operation": "line_item_operation",
        "region": "COALESCE(NULLIF(product_region_code, ''), 'global')",
        "account": "line_item_usage_account_id",
        "az": "line_item_availability_zone",
        "record_type": "line_item_line_item_type",
        "resource_id": "line_item_resource_id",
        "instance_type": "product_instance_type",
        "billing_entity": "bill_billing_entity",
    }[dim]


def _filter_sql(dim: str, values: tuple[str, ...], negate: bool) -> str:
    expr = dimension_sql(dim)
    exact = [v for v in values if "%" not in v]
    like = [v for v in values if "%" in v]
    parts = []
    if exact:
        parts.append(f"{expr} IN ({', '.join(_quote(v) for v in exact)})")
    parts += [f"{expr} LIKE {_quote(v)}" for v in like]
    clause = "(" + " OR ".join(parts) + ")"
    return f"NOT {clause}" if negate else clause


def cost_sql(query: CostQuery) -> str:
    """DuckDB SQL answering the query in the cost frame's columns."""
    unit = "month" if query.granularity == "MONTHLY" else "day"
    select = [f"date_trunc('{unit}', line_item_usage_start_date) AS period"]
    select += [f"{dimension_sql(d)} AS {sql_name(d)}" for d in query.group_by]
    select += [f"SUM({METRIC_SQL[query.metric]}) AS cost", "SUM(line_item_usage_amount) AS usage_quantity"]
    where = [
        f"billing_period IN ({', '.join(_quote(p) for p in periods(query.start, query.end))})",
        f"line_item_usage_start_date >= TIMESTAMP '{query.start.isoformat()} 00:00:00'",
        f"line_item_usage_start_date < TIMESTAMP '{query.end.isoformat()} 00:00:00'",
    ]
    where += [_filter_sql(d, v, False) for d, v in query.include.items()]
    where += [_filter_sql(d, v, True) for d, v in query.exclude.items()]
    keys = ", ".join(str(i + 1) for i in range(1 + len(query.group_by)))
    return (
        f"SELECT {', '.join(select)}\nFROM {TABLE}\nWHERE {' AND '.join(where)}\n"
        f"GROUP BY {keys}\nORDER BY {keys}"
    )


def column_names(query: CostQuery) -> dict[str, str]:
    """SQL output column -> frame column (tag dimensions need safe SQL names)."""
    return {sql_name(d): d for d in query.group_by}


def to_trino(sql: str, table: str) -> str:
    """The DuckDB SQL rendered for Athena engine v3 (Trino), reading `table` (db.table).

    Map subscripts become element_at(): Trino's `map[key]` fails on a missing key, while
    element_at() gives NULL like DuckDB's subscript does.
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    for bracket in tree.find_all(exp.Bracket):
        bracket.set("safe", True)
    parts = table.split(".")
    replacement = exp.to_table(".".join(f'"{p}"' for p in parts), dialect="trino")
    for node in tree.find_all(exp.Table):
        if node.name == TABLE and not node.args.get("db"):
            node.replace(replacement.copy())
    return tree.sql(dialect="trino", pretty=True)


def from_trino(sql: str, table: str, local: str = TABLE) -> str:
    """Trino SQL back to DuckDB, `table` read as the local view (the Athena emulator's engine)."""
    tree = sqlglot.parse_one(sql, read="trino")
    db, _, name = table.rpartition(".")
    for node in tree.find_all(exp.Table):
        if node.name == name and (node.args.get("db") is None or node.text("db") == db):
            node.replace(exp.to_table(local))
    return tree.sql(dialect="duckdb")
