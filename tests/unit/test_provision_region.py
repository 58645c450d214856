"""Region readiness logic: CIDR derivation, subnet layout, overlaps naming both ranges, tfvars."""

from __future__ import annotations

import ipaddress

import pytest
from opsbook.errors import UsageError
from opsbook.params import load_params
from opsbook.provision import naming
from opsbook.provision.region import (
    CidrPlan,
    Range,
    _check_cidr,
    derive_tfvars,
    derive_vpc_cidr,
    overlaps,
    shift,
)


def test_derived_cidr_skips_every_taken_range() -> None:
    taken = [Range("10.20.0.0/16", "VPC a"), Range("10.21.0.0/16", "VPC b"), Range("10.22.128.0/17", "office")]
    got = derive_vpc_cidr("10.20.0.0/16", taken)
    assert got == "10.23.0.0/16"
    assert not any(ipaddress.IPv4Network(got).overlaps(r.network) for r in taken)


def test_derived_cidr_wraps_around_the_private_block() -> None:
    taken = [Range(str(n), "x") for n in ipaddress.IPv4Network("10.0.0.0/8").subnets(new_prefix=16)
             if str(n) not in ("10.3.0.0/16",)]
    assert derive_vpc_cidr("10.250.0.0/16", taken) == "10.3.0.0/16"


def test_overlap_message_names_both_ranges() -> None:
    taken = [Range("10.20.0.0/16", "VPC vpc-1 in eu-central-1"), Range("172.16.0.0/20", "office range")]
    assert overlaps("10.20.128.0/17", taken) == ["10.20.128.0/17 overlaps 10.20.0.0/16 (VPC vpc-1 in eu-central-1)"]
    assert overlaps("172.16.0.0/12", taken) == ["172.16.0.0/12 overlaps 172.16.0.0/20 (office range)"]
    assert overlaps("10.99.0.0/16", taken) == []


def test_subnets_keep_their_offsets() -> None:
    assert shift("10.20.16.0/20", "10.20.0.0/16", "10.31.0.0/16") == "10.31.16.0/20"
    assert shift("10.20.192.0/19", "10.20.0.0/16", "10.31.0.0/16") == "10.31.192.0/19"


@pytest.mark.parametrize("value, message", [("10.20.0.0/33", "expected an IPv4 CIDR"),
                                            ("10.20.0.1/16", "expected an IPv4 CIDR"),
                                            ("10.20.0.0/20", "expected a /16")])
def test_bad_vpc_cidr_is_refused(value, message) -> None:
    with pytest.raises(UsageError, match=message):
        _check_cidr(value, "10.20.0.0/16")


def test_tfvars_derive_names_and_ranges_from_params() -> None:
    params = load_params("sandbox")
    cidr = CidrPlan("eu-west-1", "10.21.0.0/16", ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                    ["10.21.0.0/20"] * 3, ["10.21.128.0/19"] * 3, True)
    tfvars = derive_tfvars(params, cidr)
    assert tfvars["region"] == "eu-west-1" and tfvars["vpc_cidr"] == "10.21.0.0/16"
    assert tfvars["buckets"]["terraform_state"] == f"{params.buckets.terraform_state}-eu-west-1"
    assert tfvars["office_cidrs"] == params.network.vpn.office_cidrs
    assert set(tfvars["node_groups"]) == {g.name for g in params.eks.node_groups}
    assert tfvars["cluster_name"] == params.eks.cluster_name


def test_region_parameters_are_checked() -> None:
    params = load_params("sandbox")
    with pytest.raises(UsageError, match="expected an AWS region"):
        naming.target_region(params, "eu-middle-9")
    assert naming.first_other_region(params) == params.other_regions[0]
    assert naming.bucket(params, "b", params.region) == "b" and naming.bucket(params, "b", "eu-west-1") == "b-eu-west-1"
