"""The twin's prices cover everything it can bill, in every region it can be seeded in.

Expected values are recomputed here from the cited rows and from moto's and botocore's own
data, not read back from the rule's code.
"""

from __future__ import annotations

from statistics import median

import botocore.session
import pytest
from moto.ec2.models.instance_types import INSTANCE_TYPES
from opsbook.errors import OpsbookError
from opsbook.formats.aws_usage import REGION_PREFIX, usage_type_in
from opsbook.sandbox.cost.prices import list_price, price_table, quote

AWS_REGIONS = botocore.session.get_session().get_available_regions("ec2", partition_name="aws")
REFERENCE = "eu-central-1"
OTHER_USAGE = [  # (service, usage type in the reference region) the bill has besides instances
    ("AmazonEC2", "EUC1-EBS:VolumeUsage.gp3"), ("AmazonEC2", "EUC1-EBS:VolumeUsage.gp2"),
    ("AmazonEC2", "EUC1-EBS:SnapshotUsage"), ("AmazonEC2", "EUC1-NatGateway-Hours"),
    ("AmazonEC2", "EUC1-NatGateway-Bytes"), ("AWSELB", "EUC1-LoadBalancerUsage"), ("AWSELB", "EUC1-LCUUsage"),
    ("AWSDataTransfer", "EUC1-DataTransfer-Out-Bytes"), ("AWSDataTransfer", "EUC1-DataTransfer-Regional-Bytes"),
    ("AmazonEKS", "EUC1-AmazonEKS-Hours:perCluster"), ("AmazonS3", "EUC1-TimedStorage-ByteHrs"),
    ("awskms", "eu-central-1-KMS-Keys"), ("AWSCloudTrail", "EUC1-DataEventsRecorded"),
    ("AmazonRDS", "EUC1-RDS:Multi-AZ-GP2-Storage"), ("AmazonRDS", "EUC1-RDS:ChargedBackupUsage"),
]


def cited(service: str, region: str, usage_type: str) -> float | None:
    table = price_table()
    prices = {(r.service_code, r.region_code, r.usage_type): r.price_usd for r in table.itertuples()}
    return prices.get((service, region, usage_type))


def test_every_instance_type_of_motos_catalogue_has_a_price_in_every_region() -> None:
    assert set(AWS_REGIONS) <= set(REGION_PREFIX)
    prices = {(r.region_code, r.usage_type): r.price_usd for r in price_table().itertuples()
              if r.service_code == "AmazonEC2"}
    for region in AWS_REGIONS:
        for itype in INSTANCE_TYPES:
            usage = f"{REGION_PREFIX[region]}-BoxUsage:{itype}"
            q = quote("AmazonEC2", region, usage, "RunInstances")
            assert q is not None and q.price_usd > 0, usage
            known = prices.get((region, usage))
            assert (q.derived == "") == (known is not None), usage
            if known is not None:
                assert q.price_usd == known


@pytest.mark.parametrize("multi", [True, False])
def test_rds_classes_have_prices_in_every_region_single_az_half_of_multi_az(multi: bool) -> None:
    families = ("m5", "m6g", "m6i", "m7g", "r5", "r6g", "r6i", "r7g", "t3", "t4g")
    classes = [f"db.{t}" for t in INSTANCE_TYPES if t.split(".")[0] in families and not t.endswith(".metal")]
    assert len(classes) > 50
    for region in AWS_REGIONS:
        for db in classes:
            kind = "Multi-AZUsage" if multi else "InstanceUsage"
            q = quote("AmazonRDS", region, f"{REGION_PREFIX[region]}-{kind}:{db}", "CreateDBInstance:0002")
            assert q is not None and q.price_usd > 0, (region, db)
            if not multi:
                other = quote("AmazonRDS", region, f"{REGION_PREFIX[region]}-Multi-AZUsage:{db}")
                assert other is not None
                if other.derived:
                    assert q.price_usd == pytest.approx(other.price_usd / 2)


def test_volumes_snapshots_nat_load_balancers_and_transfer_have_prices_in_every_region() -> None:
    for region in AWS_REGIONS:
        for service, reference in OTHER_USAGE:
            usage = usage_type_in(reference, region)
            q = quote(service, region, usage)
            assert q is not None and q.price_usd > 0, usage
            assert (q.derived != "") == (cited(service, region, usage) is None)


def test_derived_prices_follow_the_documented_rule() -> None:
    """Rule 1 on the cited reference rows; rule 4's factor of a cited region recomputed from its rows."""
    m6i, r6i = cited("AmazonEC2", REFERENCE, "EUC1-BoxUsage:m6i.large"), cited("AmazonEC2", REFERENCE,
                                                                              "EUC1-BoxUsage:r6i.large")
    assert m6i and r6i
    gib = (r6i - m6i) / 8  # r6i.large has 8 GiB more than m6i.large, same 2 vCPUs
    vcpu = (m6i - 8 * gib) / 2
    expected = 16 * vcpu + 64 * gib  # m6i.4xlarge: 16 vCPU, 64 GiB (not cited)
    assert quote("AmazonEC2", REFERENCE, "EUC1-BoxUsage:m6i.4xlarge").price_usd == pytest.approx(expected)
    table = price_table()
    ours = table[table.region_code == "eu-west-1"]
    ratios = []
    for row in ours.itertuples():
        ref = cited(row.service_code, REFERENCE, usage_type_in(row.usage_type, REFERENCE))
        if ref:
            ratios.append(row.price_usd / ref)
    q = quote("AmazonEC2", "eu-west-1", "EU-BoxUsage:m6i.4xlarge")
    assert q.price_usd == pytest.approx(expected * median(ratios)) and "region factor" in q.derived


def test_what_the_twin_cannot_price_is_named_with_a_remedy() -> None:
    assert quote("AmazonEC2", "cn-north-1", "CNN1-BoxUsage:m6i.large") is None  # another partition
    assert quote("AmazonEC2", REFERENCE, "EUC1-BoxUsage:no.such") is None
    with pytest.raises(OpsbookError, match="no price for AmazonRDS EUC1-Multi-AZUsage:db.z9.huge") as err:
        list_price("AmazonRDS", REFERENCE, "EUC1-Multi-AZUsage:db.z9.huge")
    assert err.value.remedy and "prices.csv" in err.value.remedy
