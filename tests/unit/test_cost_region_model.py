"""Re-pricing a month's usage into another region, on a CUR and a price book made by hand."""

from __future__ import annotations

import math
from datetime import date

import pytest
from opsbook.cost import region_model
from opsbook.cost.pricebook import PriceBook

from tests.unit.hand_cur import line, write_cur

OCT = date(2025, 10, 1)
DAY = date(2025, 10, 10)
PRICES = {
    ("AmazonEC2", "eu-central-1", "EUC1-BoxUsage:m6i.large", "RunInstances"): 0.115,
    ("AmazonEC2", "eu-west-1", "EU-BoxUsage:m6i.large", "RunInstances"): 0.107,
    ("awskms", "eu-central-1", "eu-central-1-KMS-Keys", "CreateKey"): 1.0,
    ("awskms", "eu-west-1", "eu-west-1-KMS-Keys", "CreateKey"): 1.0,
    ("AmazonRoute53", "global", "HostedZone", ""): 0.5,
}


@pytest.fixture()
def lines(tmp_path, sandbox_like):
    source = write_cur(tmp_path, [
        line(DAY, usage_type="EUC1-BoxUsage:m6i.large", operation="RunInstances", amount=744.0, cost=744 * 0.115),
        line(DAY, product="awskms", usage_type="eu-central-1-KMS-Keys", operation="CreateKey", amount=3.0, cost=3.0),
        line(DAY, product="AmazonRoute53", usage_type="HostedZone", region="", amount=2.0, cost=1.0),
        # another region's usage is not in the home basket
        line(DAY, usage_type="EU-BoxUsage:m6i.large", region="eu-west-1", operation="RunInstances", amount=10.0, cost=1.07),
    ])
    return region_model.basket(source, sandbox_like, OCT)


@pytest.fixture()
def sandbox_like():
    from opsbook.params import load_params

    return load_params("sandbox")  # home region eu-central-1


def test_basket_is_the_home_regions_usage_and_the_global_lines(lines) -> None:
    assert sorted(lines["base_usage_type"]) == ["BoxUsage:m6i.large", "HostedZone", "KMS-Keys"]
    assert lines.set_index("base_usage_type").loc["BoxUsage:m6i.large", "component"] == "compute nodes"


def test_usage_repriced_in_another_region(lines) -> None:
    priced = region_model.price(lines, "eu-west-1", "eu-central-1", PriceBook.of(PRICES), 15.0)
    by = priced.set_index("base_usage_type")
    # 744 instance hours at eu-west-1's $0.107 = $79.608 (they cost $85.56 at home)
    assert by.loc["BoxUsage:m6i.large", "priced_as"] == "EU-BoxUsage:m6i.large"
    assert by.loc["BoxUsage:m6i.large", "monthly_cost"] == pytest.approx(744 * 0.107)
    # KMS usage types carry the region's name: eu-west-1-KMS-Keys, 3 keys at $1
    assert by.loc["KMS-Keys", "priced_as"] == "eu-west-1-KMS-Keys"
    assert by.loc["KMS-Keys", "monthly_cost"] == pytest.approx(3.0)
    # Route 53 is global: 2 zones at $0.50 wherever the estate runs
    assert by.loc["HostedZone", "monthly_cost"] == pytest.approx(1.0)
    assert priced["monthly_cost"].sum() == pytest.approx(744 * 0.107 + 3.0 + 1.0)


def test_home_region_priced_as_billed_reproduces_the_bill(lines) -> None:
    priced = region_model.price(lines, "eu-central-1", "eu-central-1", PriceBook.of(PRICES), 15.0)
    assert priced["monthly_cost"].sum() == pytest.approx(lines["cost"].sum())  # 85.56 + 3 + 1


def test_a_usage_type_without_a_price_is_not_a_zero(lines) -> None:
    book = PriceBook.of({k: v for k, v in PRICES.items() if k[1] != "eu-west-1" or "BoxUsage" not in k[2]})
    priced = region_model.price(lines, "eu-west-1", "eu-central-1", book, 15.0).set_index("base_usage_type")
    assert math.isnan(priced.loc["BoxUsage:m6i.large", "monthly_cost"])
