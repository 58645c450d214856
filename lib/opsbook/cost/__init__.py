"""Cost analysis for finance: CUR / Athena / Cost Explorer sources, allocation, forecast, models.

`open_source(env)` gives the cost source params name; every source answers a `CostQuery`
with the same DataFrame schema (see query.py).
"""

from opsbook.cost.query import CostQuery
from opsbook.cost.sources import CostSource, open_source

__all__ = ["CostQuery", "CostSource", "open_source"]
