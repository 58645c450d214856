"""A Pricing (Price List Query API) emulator serving the twin's prices (AWSPriceListService).

Products come out in the `aws_v1` format the real GetProducts returns: a list of JSON
strings, each with `product` (family, attributes incl. regionCode, usagetype, operation),
`serviceCode` and `terms.OnDemand` price dimensions. Filters: TERM_MATCH, EQUALS,
CONTAINS, ANY_OF, NONE_OF; paging with MaxResults (<= 100) and NextToken.

The catalogue is `cost/prices.py`'s: the cited rows, and the prices its rule derives for
every instance type, RDS class and other usage in every region the twin can be seeded in.
A derived product says so: the attribute `priceBasis: derived` and its price dimension's
description (which ends with the rule and its numbers). A query naming a usage type or a
region only builds the products it can match; an unfiltered one walks the whole catalogue.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from opsbook.formats.aws_usage import region_of_usage_type
from opsbook.sandbox.aws.catalogue import aws_regions
from opsbook.sandbox.cost.prices import Quote, catalogue, cited_quotes, quote
from opsbook.sandbox.json_api import ApiError

TARGET = "AWSPriceListService"
ON_DEMAND = "JRTCKXETXF"
PRICE_DIMENSION = "6YS6EN2CT7"
LOCATIONS = {  # the Price List's names where they differ from botocore's region descriptions
    "eu-central-1": "EU (Frankfurt)", "eu-west-1": "EU (Ireland)", "eu-north-1": "EU (Stockholm)",
    "eu-west-2": "EU (London)", "eu-west-3": "EU (Paris)", "global": "Global",
}
SERVICE_NAMES = {
    "AmazonEC2": "Amazon Elastic Compute Cloud", "AWSELB": "Elastic Load Balancing",
    "AmazonEKS": "Amazon Elastic Container Service for Kubernetes", "AmazonRDS": "Amazon Relational Database Service",
    "AmazonS3": "Amazon Simple Storage Service", "AWSDataTransfer": "AWS Data Transfer",
    "awskms": "AWS Key Management Service", "AWSCloudTrail": "AWS CloudTrail", "AmazonRoute53": "Amazon Route 53",
}


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


@cache
def location(region: str) -> str:
    import botocore.session

    regions = {r: d["description"] for p in botocore.session.get_session().get_data("endpoints")["partitions"]
               for r, d in p["regions"].items()}
    return LOCATIONS.get(region) or regions.get(region, region)


def product_attributes(q: Quote) -> dict[str, str]:
    """The product's attributes as GetProducts shows (and filters) them."""
    attrs = {
        "servicecode": q.service_code, "servicename": SERVICE_NAMES[q.service_code],
        "location": location(q.region_code), "locationType": "AWS Region", "regionCode": q.region_code,
        "usagetype": q.usage_type, "operation": q.operation, **q.attributes,
    }
    if q.derived:
        attrs["priceBasis"] = "derived"
    return attrs


def product(q: Quote) -> dict[str, Any]:
    """A quote as a price-list product (aws_v1)."""
    sku = hashlib.sha256(f"{q.service_code}/{q.region_code}/{q.usage_type}/{q.operation}"
                         .encode()).hexdigest()[:16].upper()
    attrs = product_attributes(q)
    description = q.description
    if q.derived:
        description = f"{q.description}; derived price (the sandbox's rule, not an AWS page): {q.derived}"
    effective = f"{q.as_of}T00:00:00Z"
    term = f"{sku}.{ON_DEMAND}"
    return {
        "product": {"productFamily": q.product_family, "attributes": attrs, "sku": sku},
        "serviceCode": q.service_code,
        "terms": {"OnDemand": {term: {
            "priceDimensions": {f"{term}.{PRICE_DIMENSION}": {
                "unit": q.unit, "endRange": "Inf", "description": description, "appliesTo": [],
                "rateCode": f"{term}.{PRICE_DIMENSION}", "beginRange": "0",
                "pricePerUnit": {"USD": f"{q.price_usd:.10f}"},
            }},
            "sku": sku, "effectiveDate": effective, "offerTermCode": ON_DEMAND, "termAttributes": {},
        }}},
        "version": q.as_of.replace("-", "") + "000000",
        "publicationDate": effective,
    }


def _term(filters: list[dict[str, Any]], field: str) -> str | None:
    """The value a TERM_MATCH/EQUALS filter pins `field` to, if any."""
    return next((str(f.get("Value")) for f in filters
                 if f.get("Field") == field and f.get("Type") in ("TERM_MATCH", "EQUALS")), None)


def candidates(code: str, filters: list[dict[str, Any]]) -> list[Quote]:
    """The quotes a query can match (narrowed by its usage type or region before any filter runs)."""
    if code not in SERVICE_NAMES:
        return []
    usage, region = _term(filters, "usagetype"), _term(filters, "regionCode")
    if usage:
        where = region or region_of_usage_type(usage) or "global"
        cited = cited_quotes().get((code, where, usage))
        found = cited or [q for q in [quote(code, where, usage)] if q is not None]
        return list(found)
    regions = [region] if region else sorted({*aws_regions(), *(r for (_, r, _) in cited_quotes())})
    return [q for r in regions for q in catalogue(code, r)]


def _matches(attrs: dict[str, str], flt: dict[str, Any], family: str) -> bool:
    kind, field, value = flt.get("Type"), flt.get("Field"), flt.get("Value")
    if not field or value is None:
        raise invalid("Each filter needs Type, Field and Value")
    have = family if field == "productFamily" else attrs.get(field)
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
        found = [q for q in candidates(code, filters)
                 if all(_matches(product_attributes(q), f, q.product_family) for f in filters)]
        out = self._paged(found, body, "PriceList")
        out["PriceList"] = [json.dumps(product(q)) for q in out["PriceList"]]
        out["FormatVersion"] = "aws_v1"
        return out

    @staticmethod
    def _attribute_names(code: str) -> set[str]:
        return {k for q in candidates(code, []) for k in product_attributes(q)}

    def describe_services(self, body: dict[str, Any]) -> dict[str, Any]:
        codes = [body["ServiceCode"]] if body.get("ServiceCode") else sorted(SERVICE_NAMES)
        services = []
        for code in codes:
            names = sorted(self._attribute_names(code))
            services.append({"ServiceCode": code, "AttributeNames": names})
        out = self._paged(services, body, "Services")
        out["FormatVersion"] = "aws_v1"
        return out

    def get_attribute_values(self, body: dict[str, Any]) -> dict[str, Any]:
        code, name = body.get("ServiceCode"), body.get("AttributeName")
        if not code or not name:
            raise invalid("ServiceCode and AttributeName are required")
        if code not in SERVICE_NAMES:
            raise ApiError("NotFoundException", f"Service {code} was not found")
        values = sorted({attrs[name] for attrs in map(product_attributes, candidates(code, [])) if name in attrs})
        return self._paged([{"Value": v} for v in values], body, "AttributeValues")
