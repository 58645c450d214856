"""The AWS seed of the sandbox, checked with boto3 against moto.

The session sandbox is checked as the estate params describe. The facts handed to the
Kubernetes seed and the `sandbox.omit` forms are checked on seeds run in a subprocess:
moto keeps its state per process, so a second seed in this process would share the
session sandbox's backends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from opsbook.errors import ParamsError
from opsbook.params import Params, load_params
from opsbook.sandbox.aws.seed import parse_omit, seed_estate

ROOT = Path(__file__).resolve().parents[2]

# Seed moto in a fresh process (through the sandbox's own MotoService), print the env and
# facts as one JSON line, and serve until stdin closes (moto's threads die with the process).
SERVE = r"""
import json, sys, tempfile
from pathlib import Path
from opsbook.params import load_params
from opsbook.sandbox.aws.moto_server import MotoService
from opsbook.sandbox.core import SANDBOX_CREDENTIALS, SandboxContext

params = load_params(sys.argv[1])
ctx = SandboxContext(params=params, state_dir=Path(tempfile.mkdtemp()),
                     env={**SANDBOX_CREDENTIALS, "AWS_DEFAULT_REGION": params.region})
service = MotoService()
env = service.start(ctx)
print(json.dumps({"env": {**ctx.env, **env}, "facts": ctx.facts}), flush=True)
sys.stdin.read()
"""


def params_file(tmp_path: Path, name: str, **overrides: Any) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"extends": str(ROOT / "params/sandbox.yaml"), **overrides}))
    return path


@contextmanager
def seeded_moto(path: Path, log: Path) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """moto seeded from the params file in a subprocess: (its env, the facts)."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            line = proc.stdout.readline()
            assert line, f"the seed failed:\n{log.read_text()[-3000:]}"
            data = json.loads(line)
            yield data["env"], data["facts"]
        finally:
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


class Aws:
    """boto3 clients on one seeded moto."""

    def __init__(self, env: dict[str, str], region: str) -> None:
        self.env, self.region = env, region

    def __call__(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            region_name=self.region,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=self.env.get("AWS_SESSION_TOKEN"),
        )


def tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def expected_pvcs(params: Params) -> dict[str, int]:
    """`<namespace>/data-<workload>-<ordinal>` -> size, from params alone."""
    return {
        f"{ns.name}/data-{w.name}-{i}": w.volume_size_gi
        for ns in params.namespaces
        for w in ns.stateful
        for i in range(w.replicas)
    }


# --- omit: validation --------------------------------------------------------------------


def test_omit_accepts_the_documented_forms(tmp_path: Path) -> None:
    params = load_params("sandbox")
    entries = [
        "nat_gateway/eu-central-1c", "vpn", "vpn_tunnel/2", f"node_group/{params.eks.node_groups[0].name}",
        f"rds/{params.rds[0].identifier}", "bucket/cur", "lock_table", "kms_rotation/ssm", "trail",
        "trail_logging", f"certificate/{params.certificates[0].domain}", f"ssm_parameter/{params.ssm.required[0]}",
    ]  # fmt: skip
    omit = parse_omit(load_params(params_file(tmp_path, "all", sandbox={"omit": entries})))
    assert (
        omit.has("nat_gateway", "eu-central-1c")
        and omit.has("vpn")
        and omit.has("ssm_parameter", params.ssm.required[0])
    )
    assert not omit.has("nat_gateway", "eu-central-1a")


@pytest.mark.parametrize(
    "entry, words",
    [
        ("nat/eu-central-1c", "unknown omission 'nat/eu-central-1c'"),
        (
            "nat_gateway/eu-central-1d",
            "expected nat_gateway/<one of eu-central-1a, eu-central-1b, eu-central-1c>",
        ),
        ("nat_gateway", "expected nat_gateway/<one of"),
        ("vpn/office", "'vpn' takes no qualifier"),
        ("bucket/terraform-state", "terraform_state"),
        ("kms_rotation/alias/smsapi-sandbox-rds", "expected kms_rotation/<one of terraform, rds, ssm>"),
    ],
)
def test_unknown_omissions_are_rejected_naming_the_entry(tmp_path: Path, entry: str, words: str) -> None:
    path = params_file(tmp_path, "bad", sandbox={"omit": ["vpn", entry]})
    with pytest.raises(ParamsError) as caught:
        parse_omit(load_params(path))
    message = str(caught.value)
    assert str(path) in message and "sandbox.omit.1" in message and words in message


def test_a_bad_omission_fails_before_anything_is_created(tmp_path: Path) -> None:
    params = load_params(params_file(tmp_path, "bad", sandbox={"omit": ["nat_gateway/mars-1a"]}))
    # nothing listens on port 9: any API call would fail with a connection error instead
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    facts: dict[str, Any] = {}
    with pytest.raises(ParamsError, match="mars-1a"):
        seed_estate(params, env, facts)
    assert facts == {}


# --- the session sandbox, as params describe it ---------------------------------------------------


@pytest.fixture(scope="module")
def aws(sandbox, sandbox_params: Params):
    from opsbook.clients import Env

    return Env(params=sandbox_params).aws


def _vpc(ec2: Any, cidr: str) -> dict:
    vpcs = [v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == cidr]
    assert len(vpcs) == 1, f"expected one VPC {cidr}, got {vpcs}"
    return vpcs[0]


def test_network_has_subnets_nat_and_routes_in_every_az(aws, sandbox_params: Params) -> None:
    net = sandbox_params.network
    ec2 = aws("ec2")
    vpc = _vpc(ec2, net.vpc_cidr)["VpcId"]
    by_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
    subnets = {s["CidrBlock"]: s for s in ec2.describe_subnets(Filters=by_vpc)["Subnets"]}
    for az, public, private in zip(net.azs, net.public_subnets, net.private_subnets, strict=True):
        assert subnets[public]["AvailabilityZone"] == az and subnets[private]["AvailabilityZone"] == az
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])[
        "InternetGateways"
    ]
    assert len(igws) == 1
    nats = [n for n in ec2.describe_nat_gateways(Filters=by_vpc)["NatGateways"] if n["State"] == "available"]
    public_ids = {subnets[c]["SubnetId"]: subnets[c]["AvailabilityZone"] for c in net.public_subnets}
    assert sorted(public_ids[n["SubnetId"]] for n in nats) == sorted(net.azs)
    assert all(n["NatGatewayAddresses"][0].get("AllocationId") for n in nats)
    # each private subnet leaves through the NAT gateway of its own AZ, and reaches the office by the VPN gateway
    nat_of_az = {public_ids[n["SubnetId"]]: n["NatGatewayId"] for n in nats}
    tables = ec2.describe_route_tables(Filters=by_vpc)["RouteTables"]
    for cidr in net.private_subnets:
        subnet = subnets[cidr]
        table = next(
            t for t in tables if any(a.get("SubnetId") == subnet["SubnetId"] for a in t["Associations"])
        )
        routes = {r["DestinationCidrBlock"]: r for r in table["Routes"] if "DestinationCidrBlock" in r}
        assert routes["0.0.0.0/0"]["NatGatewayId"] == nat_of_az[subnet["AvailabilityZone"]]
        for office in net.vpn.office_cidrs:
            assert routes[office]["GatewayId"].startswith("vgw-")


def test_vpn_reaches_the_office_with_two_tunnels_up(aws, sandbox_params: Params) -> None:
    vpn_params = sandbox_params.network.vpn
    ec2 = aws("ec2")
    vpc = _vpc(ec2, sandbox_params.network.vpc_cidr)["VpcId"]
    gateways = ec2.describe_vpn_gateways()["VpnGateways"]
    attached = [
        g["VpnGatewayId"]
        for g in gateways
        if any(a["VpcId"] == vpc and a["State"] == "attached" for a in g["VpcAttachments"])
    ]
    assert len(attached) == 1
    cgws = [
        c
        for c in ec2.describe_customer_gateways()["CustomerGateways"]
        if c["IpAddress"] == vpn_params.customer_gateway_ip
    ]
    assert len(cgws) == 1 and cgws[0]["BgpAsn"] == str(vpn_params.bgp_asn)
    (conn,) = [
        c for c in ec2.describe_vpn_connections()["VpnConnections"] if c["VpnGatewayId"] == attached[0]
    ]
    assert conn["State"] == "available" and conn["CustomerGatewayId"] == cgws[0]["CustomerGatewayId"]
    assert conn["Options"]["StaticRoutesOnly"] is True
    assert sorted(r["DestinationCidrBlock"] for r in conn["Routes"]) == sorted(vpn_params.office_cidrs)
    assert [t["Status"] for t in conn["VgwTelemetry"]] == ["UP", "UP"]


def test_eks_cluster_node_groups_and_their_instances(aws, sandbox_params: Params) -> None:
    eks_params = sandbox_params.eks
    eks, ec2 = aws("eks"), aws("ec2")
    cluster = eks.describe_cluster(name=eks_params.cluster_name)["cluster"]
    assert (cluster["version"], cluster["status"]) == (eks_params.version, "ACTIVE")
    assert sorted(eks.list_nodegroups(clusterName=eks_params.cluster_name)["nodegroups"]) == sorted(
        g.name for g in eks_params.node_groups
    )
    private = {
        s["SubnetId"]
        for s in ec2.describe_subnets()["Subnets"]
        if s["CidrBlock"] in sandbox_params.network.private_subnets
    }
    instances = [
        i
        for r in ec2.describe_instances(
            Filters=[{"Name": "tag:eks:cluster-name", "Values": [eks_params.cluster_name]}]
        )["Reservations"]
        for i in r["Instances"]
    ]
    for group in eks_params.node_groups:
        described = eks.describe_nodegroup(clusterName=eks_params.cluster_name, nodegroupName=group.name)[
            "nodegroup"
        ]
        assert described["scalingConfig"]["desiredSize"] == group.desired_size
        assert set(described["subnets"]) == private
        mine = [i for i in instances if tags(i["Tags"])["eks:nodegroup-name"] == group.name]
        assert len(mine) == group.desired_size
        assert all(i["SubnetId"] in private and i["InstanceType"] == group.instance_type for i in mine)
        assert all(
            tags(i["Tags"])[f"kubernetes.io/cluster/{eks_params.cluster_name}"] == "owned" for i in mine
        )
        per_az = Counter(i["Placement"]["AvailabilityZone"] for i in mine)
        assert max(per_az.values()) - min(per_az.get(az, 0) for az in sandbox_params.network.azs) <= 1


def test_one_ebs_volume_per_pvc_tagged_like_the_csi_driver(aws, sandbox_params: Params) -> None:
    ec2 = aws("ec2")
    volumes = ec2.describe_volumes(
        Filters=[{"Name": "tag-key", "Values": ["kubernetes.io/created-for/pvc/name"]}]
    )["Volumes"]
    found = {}
    for volume in volumes:
        t = tags(volume["Tags"])
        found[f"{t['kubernetes.io/created-for/pvc/namespace']}/{t['kubernetes.io/created-for/pvc/name']}"] = (
            volume
        )
    expected = expected_pvcs(sandbox_params)
    assert {k: v["Size"] for k, v in found.items()} == expected
    assert all(v["VolumeType"] == "gp3" for v in found.values())
    instances = {i["InstanceId"]: i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    for volume in found.values():
        (attachment,) = volume["Attachments"]
        assert (
            instances[attachment["InstanceId"]]["Placement"]["AvailabilityZone"] == volume["AvailabilityZone"]
        )


def test_rds_is_multi_az_with_backups_and_encrypted_by_the_rds_key(aws, sandbox_params: Params) -> None:
    rds, kms = aws("rds"), aws("kms")
    rds_key = kms.describe_key(KeyId=sandbox_params.kms.rds)["KeyMetadata"]["Arn"]
    for wanted in sandbox_params.rds:
        db = rds.describe_db_instances(DBInstanceIdentifier=wanted.identifier)["DBInstances"][0]
        assert (db["Engine"], db["EngineVersion"], db["DBInstanceClass"]) == (
            wanted.engine, wanted.engine_version, wanted.instance_class,
        )  # fmt: skip
        assert db["MultiAZ"] is True and db["BackupRetentionPeriod"] == wanted.backup_retention_days
        assert db["StorageEncrypted"] is True and db["KmsKeyId"] == rds_key
        group = db["DBSubnetGroup"]
        cidrs = {s["SubnetIdentifier"] for s in group["Subnets"]}
        ec2 = aws("ec2")
        private = {
            s["SubnetId"]
            for s in ec2.describe_subnets()["Subnets"]
            if s["CidrBlock"] in sandbox_params.network.private_subnets
        }
        assert cidrs == private
        assert db["VpcSecurityGroups"] and db["LatestRestorableTime"]


def test_buckets_state_bucket_and_lock_table(aws, sandbox_params: Params) -> None:
    s3, kms = aws("s3"), aws("kms")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert set(sandbox_params.buckets.model_dump().values()) <= names
    state = sandbox_params.buckets.terraform_state
    assert s3.get_bucket_versioning(Bucket=state)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=state)["ServerSideEncryptionConfiguration"]["Rules"][0]
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert (
        default["KMSMasterKeyID"]
        == kms.describe_key(KeyId=sandbox_params.kms.terraform)["KeyMetadata"]["Arn"]
    )
    assert all(s3.get_public_access_block(Bucket=state)["PublicAccessBlockConfiguration"].values())
    # the TLS-only policy stays out of the seed (moto would refuse every request)
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=state)
    table = aws("dynamodb").describe_table(TableName=sandbox_params.lock_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_kms_aliases_rotate_and_ssm_secrets_are_random_secure_strings(aws, sandbox_params: Params) -> None:
    kms, ssm = aws("kms"), aws("ssm")
    for alias in sandbox_params.kms.model_dump().values():
        key = kms.describe_key(KeyId=alias)["KeyMetadata"]
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    secure = sandbox_params.ssm.secure
    values = []
    for name in sandbox_params.ssm.required:
        param = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]
        if name in secure:
            assert param["Type"] == "SecureString" and meta["KeyId"] == sandbox_params.kms.ssm
            values.append(param["Value"])
        else:
            assert param["Type"] == "String"
    assert len(set(values)) == len(values) == len(set(secure)) and all(len(v) >= 32 for v in values)


def test_zones_certificate_and_trail(aws, sandbox_params: Params) -> None:
    route53, acm, trail = aws("route53"), aws("acm"), aws("cloudtrail")
    zones = {z["Name"]: z for z in route53.list_hosted_zones()["HostedZones"]}
    public = zones[sandbox_params.zones.public + "."]
    private = zones[sandbox_params.zones.private + "."]
    assert public["Config"]["PrivateZone"] is False and private["Config"]["PrivateZone"] is True
    vpc = _vpc(aws("ec2"), sandbox_params.network.vpc_cidr)["VpcId"]
    assert [v["VPCId"] for v in route53.get_hosted_zone(Id=private["Id"])["VPCs"]] == [vpc]
    records = {
        (r["Name"], r["Type"]): r
        for r in route53.list_resource_record_sets(HostedZoneId=public["Id"])["ResourceRecordSets"]
    }
    for wanted in sandbox_params.certificates:
        (summary,) = [
            c for c in acm.list_certificates()["CertificateSummaryList"] if c["DomainName"] == wanted.domain
        ]
        cert = acm.describe_certificate(CertificateArn=summary["CertificateArn"])["Certificate"]
        assert cert["Status"] == "ISSUED"
        assert set(wanted.alternative_names) <= set(cert["SubjectAlternativeNames"])
        for option in cert["DomainValidationOptions"]:
            record = option["ResourceRecord"]
            written = records[(record["Name"], "CNAME")]
            assert written["ResourceRecords"] == [{"Value": record["Value"]}]
    (described,) = trail.describe_trails(trailNameList=[sandbox_params.trail_name])["trailList"]
    assert described["S3BucketName"] == sandbox_params.buckets.logs
    assert trail.get_trail_status(Name=sandbox_params.trail_name)["IsLogging"] is True
    policy = json.loads(aws("s3").get_bucket_policy(Bucket=sandbox_params.buckets.logs)["Policy"])
    assert {s["Principal"]["Service"] for s in policy["Statement"]} == {"cloudtrail.amazonaws.com"}


# --- facts for the Kubernetes seed, on a seed of its own -----------------------------------------


@pytest.fixture(scope="module")
def default_seed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seed")
    path = params_file(tmp, "default-seed")
    with seeded_moto(path, tmp / "seed.log") as (env, facts):
        params = load_params(path)
        yield params, Aws(env, params.region), facts


def test_facts_name_every_node_instance(default_seed) -> None:
    params, aws, facts = default_seed
    nodes = facts["nodes"]
    assert len(nodes) == sum(g.desired_size for g in params.eks.node_groups)
    reservations = aws("ec2").describe_instances(InstanceIds=[n["instance_id"] for n in nodes])[
        "Reservations"
    ]
    instances = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
    for node in nodes:
        instance = instances[node["instance_id"]]
        assert node["name"] == instance["PrivateDnsName"]
        assert node["name"].endswith(f".{params.region}.compute.internal")
        assert node["private_ip"] == instance["PrivateIpAddress"]
        assert node["az"] == instance["Placement"]["AvailabilityZone"]
        assert node["instance_type"] == instance["InstanceType"]
        t = tags(instance["Tags"])
        assert (
            t["eks:nodegroup-name"] == node["node_group"] and t["eks:cluster-name"] == params.eks.cluster_name
        )
        assert t["Name"]


def test_facts_give_each_pvc_its_volume_in_its_nodes_az(default_seed) -> None:
    params, aws, facts = default_seed
    volumes = facts["ebs_volumes"]
    assert {k: v["size_gi"] for k, v in volumes.items()} == expected_pvcs(params)
    described = aws("ec2").describe_volumes(VolumeIds=[v["volume_id"] for v in volumes.values()])["Volumes"]
    by_id = {v["VolumeId"]: v for v in described}
    node_by_name = {n["name"]: n for n in facts["nodes"]}
    for key, fact in volumes.items():
        namespace, pvc = key.split("/")
        volume = by_id[fact["volume_id"]]
        assert volume["AvailabilityZone"] == fact["az"] and volume["Size"] == fact["size_gi"]
        t = tags(volume["Tags"])
        assert (t["kubernetes.io/created-for/pvc/namespace"], t["kubernetes.io/created-for/pvc/name"]) == (
            namespace,
            pvc,
        )
        node = node_by_name[fact["node"]]
        assert node["az"] == fact["az"]
        assert volume["Attachments"][0]["InstanceId"] == node["instance_id"]
    # a StatefulSet's replicas land in different AZs
    rabbit = [v["az"] for k, v in volumes.items() if k.startswith("rabbitmq/")]
    assert len(set(rabbit)) == min(len(rabbit), len(params.network.azs))


# --- omissions, on a seed of their own -----------------------------------------------------------


@pytest.fixture(scope="module")
def omitted_seed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seed-omit")
    base = load_params("sandbox")
    omit = {
        "nat": "nat_gateway/eu-central-1c",
        "tunnel": "vpn_tunnel/2",
        "group": f"node_group/{base.eks.node_groups[-1].name}",
        "rotation": "kms_rotation/ssm",
        "parameter": f"ssm_parameter/{base.ssm.required[-1]}",
        "logging": "trail_logging",
        "bucket": "bucket/cur",
        "certificate": f"certificate/{base.certificates[0].domain}",
        "rds": f"rds/{base.rds[0].identifier}",
        "lock": "lock_table",
    }
    path = params_file(tmp, "omit-seed", sandbox={"omit": list(omit.values())})
    with seeded_moto(path, tmp / "seed.log") as (env, facts):
        params = load_params(path)
        yield params, Aws(env, params.region), facts


def test_omitted_nat_gateway_leaves_its_az_without_one(omitted_seed) -> None:
    params, aws, _ = omitted_seed
    ec2 = aws("ec2")
    subnet_az = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets()["Subnets"]}
    nats = ec2.describe_nat_gateways()["NatGateways"]
    assert sorted(subnet_az[n["SubnetId"]] for n in nats) == ["eu-central-1a", "eu-central-1b"]
    assert len(ec2.describe_addresses()["Addresses"]) == 2
    private_c = next(
        s for s in ec2.describe_subnets()["Subnets"] if s["CidrBlock"] == params.network.private_subnets[2]
    )
    table = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [private_c["SubnetId"]]}]
    )["RouteTables"][0]
    assert "0.0.0.0/0" not in {r.get("DestinationCidrBlock") for r in table["Routes"]}


def test_omitted_pieces_are_absent_or_off(omitted_seed) -> None:
    params, aws, facts = omitted_seed
    (conn,) = aws("ec2").describe_vpn_connections()["VpnConnections"]
    assert [t["Status"] for t in conn["VgwTelemetry"]] == ["UP", "DOWN"]
    kept = params.eks.node_groups[0].name
    assert aws("eks").list_nodegroups(clusterName=params.eks.cluster_name)["nodegroups"] == [kept]
    assert {n["node_group"] for n in facts["nodes"]} == {kept}
    assert all(v["node"] in {n["name"] for n in facts["nodes"]} for v in facts["ebs_volumes"].values())
    kms = aws("kms")
    rotation = {
        alias: kms.get_key_rotation_status(KeyId=kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"])[
            "KeyRotationEnabled"
        ]
        for alias in params.kms.model_dump().values()
    }
    assert rotation == {params.kms.terraform: True, params.kms.rds: True, params.kms.ssm: False}
    names = {p["Name"] for p in aws("ssm").describe_parameters()["Parameters"]}
    assert params.ssm.required[-1] not in names and params.ssm.required[0] in names
    assert aws("cloudtrail").get_trail_status(Name=params.trail_name)["IsLogging"] is False
    buckets = {b["Name"] for b in aws("s3").list_buckets()["Buckets"]}
    assert params.buckets.cur not in buckets and params.buckets.logs in buckets
    assert aws("acm").list_certificates()["CertificateSummaryList"] == []
    assert aws("rds").describe_db_instances()["DBInstances"] == []
    assert aws("dynamodb").list_tables()["TableNames"] == []
