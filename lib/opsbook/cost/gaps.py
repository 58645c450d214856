"""What a cost model could not price, measure or find: rows that say why, never a zero or an omission.

A model's table carries a `gap` column: empty when the row's figure is there, else the
reason it is not (naming the item: "cn-north-1: no price for AmazonEC2 ...BoxUsage:m6i.large").
Totals are of what could be computed, and whoever shows them says how many items they
leave out and which (`summary`, `headline`); `check(strict=True)` turns any gap into a
failed run.
"""

from __future__ import annotations

import pandas as pd

from opsbook.errors import OpsbookError

GAP = "gap"


def reasons(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Every gap of the tables, as '<table>: <reason>' (each reason once)."""
    out: list[str] = []
    for name, table in tables.items():
        if GAP in table.columns:
            out += [f"{name}: {r}" for r in dict.fromkeys(table.loc[table[GAP] != "", GAP])]
    return out


def count(tables: dict[str, pd.DataFrame]) -> int:
    """Rows whose figure is missing."""
    return sum(int((t[GAP] != "").sum()) for t in tables.values() if GAP in t.columns)


def summary(tables: dict[str, pd.DataFrame], limit: int = 5) -> str:
    """One sentence for a conclusion: how many items are left out of the totals, and which."""
    found = reasons(tables)
    if not found:
        return ""
    listed = "; ".join(found[:limit]) + (f"; and {len(found) - limit} more" if len(found) > limit else "")
    return f"{count(tables)} item(s) could not be priced or measured and are not in the totals: {listed}."


def headline(tables: dict[str, pd.DataFrame], limit: int = 3) -> dict[str, object]:
    """The gaps for a run's headline: their number, and the first few of them."""
    found = reasons(tables)
    return {"unpriced": count(tables), **({"unpriced items": "; ".join(found[:limit])} if found else {})}


def check(tables: dict[str, pd.DataFrame], strict: bool) -> int:
    """With `strict`, fail when anything is unpriced or unmeasured; returns the gap count."""
    gaps = count(tables)
    if strict and gaps:
        raise OpsbookError(f"strict: {summary(tables, limit=20)}",
                           remedy="add the missing prices, usage or volume (the gap column says what is "
                                  "missing), or run without strict to see the partial totals")
    return gaps
