"""Region readiness on the sandbox: AZs, quotas against usage, CIDR overlaps, terraform.tfvars."""

from __future__ import annotations

import ipaddress

import pytest
import yaml
from opsbook.clients import Env
from opsbook.errors import OpsbookError, UsageError
from opsbook.params import load_params, params_dir
from opsbook.provision import files, region


def _source_vpc(env: Env) -> dict:
    """The source VPC as moto has it (found by its CIDR from params, not through opsbook)."""
    vpcs = env.aws("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": [env.params.network.vpc_cidr]}])["Vpcs"]
    assert len(vpcs) == 1, "the seed made one VPC with the params CIDR"
    return vpcs[0]


def test_the_second_region_is_ready_with_a_free_cidr(sandbox_env) -> None:
    ready = region.readiness(sandbox_env)
    assert ready.region == sandbox_env.params.other_regions[0]
    assert ready.ready, ready.verdict()
    checks = ready.checks.set_index("check")
    zones = sandbox_env.aws("ec2", ready.region).describe_availability_zones()["AvailabilityZones"]
    assert checks.loc["availability zones", "limit"] == len([z for z in zones if z["State"] == "available"]) >= 3
    vpcs_used = len(sandbox_env.aws("ec2", ready.region).describe_vpcs()["Vpcs"])
    assert checks.loc["quota: VPCs per Region", "used"] == vpcs_used
    assert checks.loc["quota: RDS DB instances", "need"] == len(sandbox_env.params.rds)
    # the derived range overlaps nothing: every VPC of every region, and the office ranges
    planned = ipaddress.IPv4Network(ready.cidr.vpc_cidr)
    for name in (r["RegionName"] for r in sandbox_env.aws("ec2").describe_regions()["Regions"]):
        for vpc in sandbox_env.aws("ec2", name).describe_vpcs()["Vpcs"]:
            assert not planned.overlaps(ipaddress.IPv4Network(vpc["CidrBlock"])), (name, vpc["CidrBlock"])
    for office in sandbox_env.params.network.vpn.office_cidrs:
        assert not planned.overlaps(ipaddress.IPv4Network(office))
    assert all(ipaddress.IPv4Network(s).subnet_of(planned) for s in ready.cidr.public_subnets + ready.cidr.private_subnets)
    assert ready.cidr.azs == sorted(z["ZoneName"] for z in zones)[:3]


def test_overlap_with_an_existing_vpc_names_both_ranges(sandbox_env) -> None:
    vpc = _source_vpc(sandbox_env)
    given = str(ipaddress.IPv4Network(vpc["CidrBlock"]))
    ready = region.readiness(sandbox_env, vpc_cidr=given)
    assert not ready.ready
    [problem] = ready.cidr.problems
    assert problem == f"{given} overlaps {vpc['CidrBlock']} (VPC {vpc['VpcId']} in {sandbox_env.params.region})"
    assert problem in ready.verdict()


def test_overlap_with_an_office_range_given_by_params(sandbox, tmp_path) -> None:
    """A params file whose office range covers the range the region would get."""
    base = load_params("sandbox")
    free = region.readiness(Env(params=base, run_id="t")).cidr.vpc_cidr
    office = str(ipaddress.IPv4Network(free).supernet(new_prefix=12))
    data = {"extends": str(params_dir() / "sandbox.yaml"), "env": "sandbox",
            "network": {"vpn": {"customer_gateway_ip": "203.0.113.10", "office_cidrs": [office]}}}
    path = tmp_path / "sandbox-office.yaml"
    path.write_text(yaml.safe_dump(data))
    env = Env(params=load_params(path), run_id="t")
    ready = region.readiness(env, vpc_cidr=free)
    assert ready.cidr.problems == [f"{free} overlaps {office} (office range behind the VPN "
                                   "(network.vpn.office_cidrs))"]
    derived = region.readiness(env)  # left to itself, it picks a range outside the office one
    assert derived.ready and not ipaddress.IPv4Network(derived.cidr.vpc_cidr).overlaps(ipaddress.IPv4Network(office))


def test_a_full_quota_fails_until_it_is_raised(sandbox_env) -> None:
    target = "ap-southeast-2"  # only this test uses it
    ec2 = sandbox_env.aws("ec2", target)
    sq = sandbox_env.aws("service-quotas", target)
    limit = int(sq.get_service_quota(ServiceCode="vpc", QuotaCode="L-F678F1CE")["Quota"]["Value"])
    used = len(ec2.describe_vpcs()["Vpcs"])
    for i in range(limit - used):
        ec2.create_vpc(CidrBlock=f"10.{200 + i}.0.0/16")
    ready = region.readiness(sandbox_env, target)
    assert not ready.ready
    row = ready.checks.set_index("check").loc["quota: VPCs per Region"]
    assert (row["used"], row["need"], row["limit"], bool(row["ok"])) == (limit, 1, limit, False)
    assert f"--desired-value {limit + 1}" in row["detail"]
    sq.request_service_quota_increase(ServiceCode="vpc", QuotaCode="L-F678F1CE", DesiredValue=limit + 1)
    assert region.readiness(sandbox_env, target).ready


def test_tfvars_written_once_compared_and_kept(sandbox_env, tmp_path) -> None:
    ready = region.readiness(sandbox_env)
    plan = region.plan_tfvars(sandbox_env, ready, str(tmp_path))
    assert {c.action for c in plan.changes} == {"create"}
    assert region.apply_tfvars(plan, ready, apply=True).changed == len(plan.changes)
    path = tmp_path / "terraform.tfvars"
    written = files.read_hcl(path)
    assert (written["region"], written["vpc_cidr"], written["azs"]) == (ready.region, ready.cidr.vpc_cidr,
                                                                       ready.cidr.azs)
    assert region.plan_tfvars(sandbox_env, ready, str(tmp_path)).empty
    # an engineer's edit: one derived variable changed, one of their own added
    path.write_text(path.read_text().replace(f'"{ready.cidr.vpc_cidr}"', '"10.99.0.0/16"') + 'extra = "mine"\n')
    plan = region.plan_tfvars(sandbox_env, ready, str(tmp_path))
    assert [(c.attribute, c.current, c.desired, c.action) for c in plan.pending] == [
        ("vpc_cidr", "10.99.0.0/16", ready.cidr.vpc_cidr, "update")]
    region.apply_tfvars(plan, ready, apply=True)
    assert files.read_hcl(path)["extra"] == "mine" and files.read_hcl(path)["vpc_cidr"] == ready.cidr.vpc_cidr


def test_no_tfvars_for_a_region_that_is_not_ready(sandbox_env, tmp_path) -> None:
    ready = region.readiness(sandbox_env, vpc_cidr=sandbox_env.params.network.vpc_cidr)
    plan = region.plan_tfvars(sandbox_env, ready, str(tmp_path))
    assert region.apply_tfvars(plan, ready, apply=False).changed == 0  # plan mode just reports
    with pytest.raises(OpsbookError, match="not writing terraform.tfvars.*overlaps"):
        region.apply_tfvars(plan, ready, apply=True)
    assert not (tmp_path / "terraform.tfvars").exists()
    with pytest.raises(UsageError, match="expected a /16"):
        region.readiness(sandbox_env, vpc_cidr="10.99.0.0/20")
