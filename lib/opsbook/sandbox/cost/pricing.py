"""A Pricing (Price List Query API) emulator serving the repo's price table (AWSPriceListService).

Products come out in the `aws_v1` format the real GetProducts returns: a list of JSON
strings, each with `product` (family, attributes incl. regionCode, usagetype, operation),
`serviceCode` and `terms.OnDemand` price dimensions. Filters: TERM_MATCH, EQUALS,
CONTAINS, ANY_OF, NONE_OF; paging with MaxResults (<= 100) and NextToken.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from opsbook.sandbox.cost.prices import attributes, price_table
from opsbook.sandbox.json_api import ApiError

TARGET = "AWSPriceListService"
ON_DEMAND = "JRTCKXETXF"
PRICE_DIMENSION = "6YS6EN2CT7"
LOCATIONS = {
    "eu-central-1": "EU (Frankfurt)", "eu-west-1": "EU (Ireland)", "eu-north-1": "EU (Stockholm)",
    "eu-west-2": "EU (London)", "eu-west-3": "EU (Paris)", "us-east-1": "US East (N. Virginia)", "global": "Global",
}
SERVICE_NAMES = {
    "AmazonEC2": "Amazon Elastic Compute Cloud", "AWSELB": "Elastic Load Balancing",
    "AmazonEKS": "Amazon Elastic Container Service for Kubernetes", "AmazonRDS": "Amazon Relational Database Service",
    "AmazonS3": "Amazon Simple Storage Service", "AWSDataTransfer": "AWS Data Transfer",
    "awskms": "AWS Key Management Service", "AWSCloudTrail": "AWS CloudTrail", "AmazonRoute53": "Amazon Route 53",
}


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def build_products() -> dict[str, list[dict[str, Any]]]:
    """service code -> price-list products (AWS services only: Datadog is no AWS price)."""
    products: dict[str, list[dict[str, Any]]] = {}
    for _, row in price_table().iterrows():
        if row["service_code"] not in SERVICE_NAMES:
            continue
        sku = hashlib.sha256(f"{row['service_code']}/{row['region_code']}/{row['usage_type']}/{row['operation']}"
                             .encode()).hexdigest()[:16].upper()
        attrs = {
            "servicecode": row["service_code"], "servicename": SERVICE_NAMES[row["service_code"]],
            "location": LOCATIONS.get(row["region_code"], row["region_code"]),
            "locationType": "AWS Region", "regionCode": row["region_code"],
            "usagetype": row["usage_type"], "operation": row["operation"],
            **attributes(row),
        }
        effective = f"{row['as_of']}T00:00:00Z"
        term = f"{sku}.{ON_DEMAND}"
        products.setdefault(row["service_code"], []).append({
            "product": {"productFamily": row["product_family"], "attributes": attrs, "sku": sku},
            "serviceCode": row["service_code"],
            "terms": {"OnDemand": {term: {
                "priceDimensions": {f"{term}.{PRICE_DIMENSION}": {
                    "unit": row["unit"], "endRange": "Inf", "description": row["description"], "appliesTo": [],
                    "rateCode": f"{term}.{PRICE_DIMENSION}", "beginRange": "0",
                    "pricePerUnit": {"USD": f"{row['price_usd']:.10f}"},
                }},
                "sku": sku, "effectiveDate": effective, "offerTermCode": ON_DEMAND, "termAttributes": {},
            }}},
            "version": row["as_of"].replace("-", "") + "000000",
            "publicationDate": effective,
        })
    return products


def _matches(attrs: dict[str, str], flt: dict[str, Any], product: dict[str, Any]) -> bool:
    kind, field, value = flt.get("Type"), flt.get("Field"), flt.get("Value")
    if not field or value is None:
        raise invalid("Each filter needs Type, Field and Value")
    have = product["product"].get("productFamily") if field == "productFamily" else attrs.get(field)
    if have is None:
        return kind == "NONE_OF"
    if kind in ("TERM_MATCH", "EQUALS"):
        return have.lower() == str(value).lower()
    if kind == "CONTAINS":
        return str(value).lower() in have.lower()
    if kind in ("ANY_OF", "NONE_OF"):
        options = [v.strip().lower() for v in str(value).split(",")]
        return (have.lower() in options) == (kind == "ANY_OF")
    raise invalid(f"Filter Type must be one of TERM_MATCH, EQUALS, CONTAINS, ANY_OF, NONE_OF, got {kind!r}")


class PricingEmulator:
    def __init__(self) -> None:
        self.products = build_products()

    def handlers(self) -> dict[str, Any]:
        return {
            f"{TARGET}.GetProducts": self.get_products,
            f"{TARGET}.DescribeServices": self.describe_services,
            f"{TARGET}.GetAttributeValues": self.get_attribute_values,
        }

    def _paged(self, items: list, body: dict, key: str) -> dict[str, Any]:
        size = int(body.get("MaxResults") or 100)
        if not 1 <= size <= 100:
            raise invalid("MaxResults must be between 1 and 100")
        try:
            offset = int(body.get("NextToken") or 0)
        except ValueError:
            raise ApiError("InvalidNextTokenException", "The NextToken is invalid") from None
        out: dict[str, Any] = {key: items[offset: offset + size]}
        if offset + size < len(items):
            out["NextToken"] = str(offset + size)
        return out

    def get_products(self, body: dict[str, Any]) -> dict[str, Any]:
        fmt = body.get("FormatVersion", "aws_v1")
        if fmt != "aws_v1":
            raise invalid(f"FormatVersion must be aws_v1, got {fmt!r}")
        code = body.get("ServiceCode")
        if not code:
            raise invalid("ServiceCode is required")
        filters = body.get("Filters") or []
        found = [p for p in self.products.get(code, [])
                 if all(_matches(p["product"]["attributes"], f, p) for f in filters)]
        out = self._paged([json.dumps(p) for p in found], body, "PriceList")
        out["FormatVersion"] = "aws_v1"
        return out

    def describe_services(self, body: dict[str, Any]) -> dict[str, Any]:
        codes = [body["ServiceCode"]] if body.get("ServiceCode") else sorted(self.products)
        services = []
        for code in codes:
            names = sorted({k for p in self.products.get(code, []) for k in p["product"]["attributes"]})
            services.append({"ServiceCode": code, "AttributeNames": names})
        out = self._paged(services, body, "Services")
        out["FormatVersion"] = "aws_v1"
        return out

    def get_attribute_values(self, body: dict[str, Any]) -> dict[str, Any]:
        code, name = body.get("ServiceCode"), body.get("AttributeName")
        if not code or not name:
            raise invalid("ServiceCode and AttributeName are required")
        if code not in self.products:
            raise ApiError("NotFoundException", f"Service {code} was not found")
        values = sorted({p["product"]["attributes"][name] for p in self.products[code]
                         if name in p["product"]["attributes"]})
        return self._paged([{"Value": v} for v in values], body, "AttributeValues")
