"""On-demand list prices from the AWS Pricing API (GetProducts), cached for a run."""

from __future__ import annotations

import json
from typing import Any

from opsbook.errors import OpsbookError


class PriceBook:
    """`price(service, region, usage_type, operation)` in USD per unit, from GetProducts."""

    def __init__(self, pricing: Any) -> None:
        self.pricing = pricing
        self._cache: dict[tuple[str, str, str, str], float | None] = {}

    @classmethod
    def from_env(cls, env: Any) -> PriceBook:
        return cls(env.aws("pricing", region="us-east-1"))  # the Price List API's home region

    @classmethod
    def of(cls, prices: dict[tuple[str, str, str, str], float]) -> PriceBook:
        """A book that knows only these prices, keyed (service, region, usage type, operation):
        hand-made checks of the cost models, offline what-ifs. Anything else has no price."""
        book = cls(None)
        book._cache.update(prices)
        return book

    def lookup(self, service: str, region: str, usage_type: str, operation: str = "") -> float | None:
        """The price, or None when the Price List has no such product."""
        key = (service, region, usage_type, operation)
        if key not in self._cache and self.pricing is None:
            return None
        if key not in self._cache:
            filters = [{"Type": "TERM_MATCH", "Field": "usagetype", "Value": usage_type}]
            if region != "global":
                filters.append({"Type": "TERM_MATCH", "Field": "regionCode", "Value": region})
            if operation:
                filters.append({"Type": "TERM_MATCH", "Field": "operation", "Value": operation})
            prices = []
            for page in self.pricing.get_paginator("get_products").paginate(
                    ServiceCode=service, Filters=filters, FormatVersion="aws_v1"):
                for item in page["PriceList"]:
                    prices += _on_demand(json.loads(item) if isinstance(item, str) else item)
            self._cache[key] = prices[0] if prices else None
        return self._cache[key]

    def price(self, service: str, region: str, usage_type: str, operation: str = "") -> float:
        value = self.lookup(service, region, usage_type, operation)
        if value is None:
            raise OpsbookError(f"the Pricing API has no on-demand price for {service} {usage_type} "
                               f"({operation or 'any operation'}) in {region}")
        return value


def _on_demand(product: dict[str, Any]) -> list[float]:
    """The first-tier USD price of a price-list product's OnDemand term."""
    out = []
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        dims = sorted(term["priceDimensions"].values(), key=lambda d: float(d.get("beginRange", "0") or 0))
        if dims and "USD" in dims[0]["pricePerUnit"]:
            out.append(float(dims[0]["pricePerUnit"]["USD"]))
    return out
