"""The health checks on hand-built models: a healthy estate passes, and each check fails
(or warns) when the piece it guards is missing or wrong, naming that piece."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opsbook.inventory import checks
from opsbook.inventory.acm import Certificate
from opsbook.inventory.checks import Thresholds
from opsbook.inventory.cloudtrail import Trail
from opsbook.inventory.dynamodb import Table
from opsbook.inventory.eks import Cluster, NodeGroup
from opsbook.inventory.health import Estate, check_estate
from opsbook.inventory.kms import KmsKey
from opsbook.inventory.kube import HelmRelease, KubeNode
from opsbook.inventory.network import NatGateway, Network, Subnet, VpnConnection, VpnTunnel
from opsbook.inventory.rds import DbInstance
from opsbook.inventory.s3 import PUBLIC_ACCESS_FLAGS, Bucket, Encryption
from opsbook.inventory.ssm import ParameterInfo
from opsbook.params import Params, load_params

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ARN = "arn:aws:kms:eu-central-1:123456789012"


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params("sandbox")


def _keys(params: Params) -> list[KmsKey]:
    return [
        KmsKey(
            purpose=purpose,
            alias=alias,
            exists=True,
            key_id=f"id-{purpose}",
            key_arn=f"{ARN}:key/id-{purpose}",
            state="Enabled",
            rotation_enabled=True,
        )
        for purpose, alias in params.kms.model_dump().items()
    ]


def _network(params: Params) -> Network:
    net = params.network
    subnets, nats = [], []
    for i, (az, public, private) in enumerate(
        zip(net.azs, net.public_subnets, net.private_subnets, strict=True)
    ):
        subnets += [
            Subnet(subnet_id=f"subnet-pub{i}", cidr=public, az=az),
            Subnet(subnet_id=f"subnet-prv{i}", cidr=private, az=az),
        ]
        nats.append(
            NatGateway(nat_gateway_id=f"nat-{i}", subnet_id=f"subnet-pub{i}", az=az, state="available")
        )
    vpn = VpnConnection(
        vpn_connection_id="vpn-1",
        state="available",
        customer_gateway_ip=net.vpn.customer_gateway_ip,
        static_routes_only=True,
        routes=list(net.vpn.office_cidrs),
        tunnels=[
            VpnTunnel(outside_ip="198.51.100.1", status="UP"),
            VpnTunnel(outside_ip="198.51.100.2", status="UP"),
        ],
    )
    return Network(
        vpc_cidr=net.vpc_cidr, vpc_id="vpc-1", subnets=subnets, nat_gateways=nats, vpn_connections=[vpn]
    )


def healthy(params: Params) -> Estate:
    """The estate exactly as params describe it."""
    azs = params.network.azs
    keys = _keys(params)
    state = params.buckets.terraform_state
    return Estate(
        network=_network(params),
        cluster=Cluster(
            name=params.eks.cluster_name,
            status="ACTIVE",
            version=params.eks.version,
            node_groups=[
                NodeGroup(name=g.name, status="ACTIVE", desired_size=g.desired_size, azs=list(azs))
                for g in params.eks.node_groups
            ],
        ),
        nodes=[KubeNode(name=f"node-{az}-{k}", ready=True, az=az) for az in azs for k in range(2)],
        helm_releases=[
            HelmRelease(
                name=a.name,
                namespace=a.namespace,
                revision=2,
                status="deployed",
                chart=a.chart,
                chart_version=a.version,
                app_version=a.app_version,
            )
            for a in params.eks.addons
        ],
        db_instances={
            i.identifier: DbInstance(
                identifier=i.identifier,
                status="available",
                engine=i.engine,
                engine_version=i.engine_version,
                multi_az=True,
                backup_retention_days=i.backup_retention_days,
                storage_encrypted=True,
                kms_key_id=f"{ARN}:key/id-rds",
                latest_restorable_time=NOW - timedelta(minutes=3),
            )
            for i in params.rds
        },
        buckets=[
            Bucket(
                name=name,
                exists=True,
                versioning="Enabled",
                encryption=Encryption(algorithm="aws:kms", kms_key_id=f"{ARN}:key/id-terraform"),
                public_access_block=dict.fromkeys(PUBLIC_ACCESS_FLAGS, True),
            )
            if name == state
            else Bucket(name=name, exists=True)
            for name in params.buckets.model_dump().values()
        ],
        lock_table=Table(name=params.lock_table, status="ACTIVE", hash_key="LockID", hash_key_type="S"),
        kms_keys=keys,
        trail=Trail(
            name=params.trail_name,
            s3_bucket=params.buckets.logs,
            multi_region=True,
            log_file_validation=True,
            is_logging=True,
        ),
        certificates=[
            Certificate(
                arn=f"arn:aws:acm:eu-central-1:123456789012:certificate/{c.domain}",
                domain=c.domain,
                alternative_names=[c.domain, *c.alternative_names],
                status="ISSUED",
                not_after=NOW + timedelta(days=200),
            )
            for c in params.certificates
        ],
        ssm_parameters=[
            ParameterInfo(name=n, type="SecureString" if n in params.ssm.secure else "String")
            for n in dict.fromkeys([*params.ssm.required, *params.ssm.secure])
        ],
    )


def only(rows: list[checks.Check], check: str, resource: str | None = None) -> checks.Check:
    found = [r for r in rows if r.check == check and (resource is None or r.resource == resource)]
    assert len(found) == 1, f"expected one {check}[{resource}] row, got {found}"
    return found[0]


def not_passing(rows: list[checks.Check]) -> list[checks.Check]:
    return [r for r in rows if r.status != "pass"]


# --- the healthy estate ---------------------------------------------------------------------


def test_a_healthy_estate_passes_every_check(params) -> None:
    rows = check_estate(healthy(params), params, NOW)
    assert not_passing(rows) == []
    # every kind of check ran, one row per item of params where the check is per item
    kinds = {r.check for r in rows}
    assert kinds == {
        "vpc", "vpc.subnets", "vpc.nat_gateway", "vpn.connection", "vpn.tunnels", "vpn.routes",
        "eks.cluster", "eks.version", "eks.node_group", "k8s.nodes", "k8s.node_spread", "helm.release",
        "rds.instance", "rds.multi_az", "rds.backup_retention", "rds.storage_encrypted", "rds.restore_lag",
        "s3.bucket", "s3.versioning", "s3.encryption", "s3.public_access_block", "dynamodb.lock_table",
        "kms.rotation", "cloudtrail.logging", "acm.expiry", "ssm.parameter",
    }  # fmt: skip
    assert [r.resource for r in rows if r.check == "vpc.nat_gateway"] == params.network.azs
    assert len([r for r in rows if r.check == "helm.release"]) == len(params.eks.addons)
    assert len([r for r in rows if r.check == "kms.rotation"]) == len(params.kms.model_dump())
    assert len([r for r in rows if r.check == "s3.bucket"]) == len(params.buckets.model_dump())


# --- network --------------------------------------------------------------------------------


def test_a_missing_nat_gateway_fails_naming_its_az(params) -> None:
    net = _network(params)
    missing = params.network.azs[-1]
    net = net.model_copy(update={"nat_gateways": [n for n in net.nat_gateways if n.az != missing]})
    rows = checks.check_nat_gateways(net, params)
    bad = not_passing(rows)
    assert [(r.resource, r.status) for r in bad] == [(missing, "fail")]
    assert f"no NAT gateway available in {missing}" in bad[0].reason


def test_a_nat_gateway_not_available_counts_as_missing(params) -> None:
    net = _network(params)
    az = params.network.azs[0]
    nats = [n.model_copy(update={"state": "pending"}) if n.az == az else n for n in net.nat_gateways]
    row = only(
        checks.check_nat_gateways(net.model_copy(update={"nat_gateways": nats}), params),
        "vpc.nat_gateway",
        az,
    )
    assert row.status == "fail" and "nat-0 is pending" in row.reason


def test_a_shared_nat_gateway_is_enough_when_params_say_so(params) -> None:
    shared = params.model_copy(
        update={"network": params.network.model_copy(update={"nat_gateway_per_az": False})}
    )
    net = _network(params)
    net = net.model_copy(update={"nat_gateways": net.nat_gateways[:1]})
    rows = checks.check_nat_gateways(net, shared)
    assert [(r.resource, r.status) for r in rows] == [("vpc-1", "pass")]
    none = checks.check_nat_gateways(net.model_copy(update={"nat_gateways": []}), shared)
    assert [r.status for r in none] == ["fail"]


def test_subnets_missing_or_in_the_wrong_az_fail(params) -> None:
    net = _network(params)
    a, b, c = params.network.azs
    gone = params.network.private_subnets[2]
    moved = params.network.public_subnets[1]
    subnets = [
        s.model_copy(update={"az": a}) if s.cidr == moved else s for s in net.subnets if s.cidr != gone
    ]
    rows = checks.check_vpc(net.model_copy(update={"subnets": subnets}), params)
    bad = {r.resource: r.reason for r in not_passing(rows)}
    assert set(bad) == {b, c}
    assert f"no private subnet {gone} in {c}" in bad[c]
    assert f"public subnet {moved} is in {a}, not {b}" in bad[b]


def test_no_vpc_is_one_failure_and_nothing_else_is_checked_against_it(params) -> None:
    net = Network(vpc_cidr=params.network.vpc_cidr, vpc_id=None)
    rows = (
        checks.check_vpc(net, params) + checks.check_nat_gateways(net, params) + checks.check_vpn(net, params)
    )
    assert [(r.check, r.status) for r in rows] == [("vpc", "fail")]
    assert params.network.vpc_cidr in rows[0].reason


def test_vpn_tunnels_one_down_warns_all_down_fails(params) -> None:
    net = _network(params)
    conn = net.vpn_connections[0]
    one_down = [
        conn.tunnels[0],
        conn.tunnels[1].model_copy(update={"status": "DOWN", "status_message": "IPSEC IS DOWN"}),
    ]
    row = only(
        checks.check_vpn(
            net.model_copy(update={"vpn_connections": [conn.model_copy(update={"tunnels": one_down})]}),
            params,
        ),
        "vpn.tunnels",
    )
    assert row.status == "warn" and "1/2 tunnels UP" in row.reason and "198.51.100.2" in row.reason
    all_down = [t.model_copy(update={"status": "DOWN"}) for t in conn.tunnels]
    row = only(
        checks.check_vpn(
            net.model_copy(update={"vpn_connections": [conn.model_copy(update={"tunnels": all_down})]}),
            params,
        ),
        "vpn.tunnels",
    )
    assert row.status == "fail" and "all 2 tunnels down" in row.reason
    row = only(
        checks.check_vpn(
            net.model_copy(update={"vpn_connections": [conn.model_copy(update={"tunnels": []})]}), params
        ),
        "vpn.tunnels",
    )
    assert row.status == "fail"


def test_vpn_missing_connection_or_route_fails(params) -> None:
    net = _network(params)
    rows = checks.check_vpn(net.model_copy(update={"vpn_connections": []}), params)
    assert [(r.check, r.status) for r in rows] == [("vpn.connection", "fail")]
    assert params.network.vpn.customer_gateway_ip in rows[0].reason
    conn = net.vpn_connections[0]
    dropped = params.network.vpn.office_cidrs[-1]
    fewer = conn.model_copy(update={"routes": [r for r in conn.routes if r != dropped]})
    row = only(checks.check_vpn(net.model_copy(update={"vpn_connections": [fewer]}), params), "vpn.routes")
    assert row.status == "fail" and dropped in row.reason
    bgp = conn.model_copy(update={"static_routes_only": False, "routes": []})
    assert (
        only(checks.check_vpn(net.model_copy(update={"vpn_connections": [bgp]}), params), "vpn.routes").status
        == "pass"
    )
    down = conn.model_copy(update={"state": "pending"})
    assert (
        only(
            checks.check_vpn(net.model_copy(update={"vpn_connections": [down]}), params), "vpn.connection"
        ).status
        == "fail"
    )


# --- EKS and Kubernetes ------------------------------------------------------------------------


def test_cluster_missing_or_at_another_version_fails(params) -> None:
    assert [(r.check, r.status) for r in checks.check_cluster(None, params)] == [("eks.cluster", "fail")]
    cluster = healthy(params).cluster.model_copy(update={"version": "1.29"})
    row = only(checks.check_cluster(cluster, params), "eks.version")
    assert row.status == "fail" and "1.29" in row.reason and params.eks.version in row.reason


def test_node_group_missing_an_az_or_absent_fails(params) -> None:
    cluster = healthy(params).cluster
    first, *rest = cluster.node_groups
    lost = params.network.azs[1]
    narrowed = first.model_copy(update={"azs": [az for az in params.network.azs if az != lost]})
    row = only(
        checks.check_cluster(cluster.model_copy(update={"node_groups": [narrowed, *rest]}), params),
        "eks.node_group",
        first.name,
    )
    assert row.status == "fail" and f"no subnet in {lost}" in row.reason
    row = only(
        checks.check_cluster(cluster.model_copy(update={"node_groups": rest}), params),
        "eks.node_group",
        first.name,
    )
    assert row.status == "fail" and "no node group" in row.reason
    degraded = first.model_copy(update={"status": "DEGRADED"})
    row = only(
        checks.check_cluster(cluster.model_copy(update={"node_groups": [degraded, *rest]}), params),
        "eks.node_group",
        first.name,
    )
    assert row.status == "fail" and "DEGRADED" in row.reason


def test_nodes_not_ready_or_missing_from_an_az_fail(params) -> None:
    nodes = healthy(params).nodes
    sick = nodes[0].model_copy(update={"ready": False, "reason": "KubeletNotReady PLEG is not healthy"})
    row = only(checks.check_nodes([sick, *nodes[1:]], params), "k8s.nodes")
    assert row.status == "fail" and sick.name in row.reason and "PLEG" in row.reason
    az = params.network.azs[2]
    rows = checks.check_nodes([n for n in nodes if n.az != az], params)
    assert only(rows, "k8s.nodes").status == "pass"
    spread = only(rows, "k8s.node_spread")
    assert spread.status == "fail" and az in spread.reason
    assert [r.status for r in checks.check_nodes([], params)] == ["fail"]


def test_addons_missing_failed_or_at_another_chart_version_fail(params) -> None:
    releases = healthy(params).helm_releases
    first, *rest = releases
    addon = params.eks.addons[0]
    rid = f"{addon.namespace}/{addon.name}"
    row = only(checks.check_addons(rest, params), "helm.release", rid)
    assert row.status == "fail" and "no Helm release" in row.reason
    older = first.model_copy(update={"chart_version": "0.0.1"})
    row = only(checks.check_addons([older, *rest], params), "helm.release", rid)
    assert row.status == "fail" and "0.0.1" in row.reason and addon.version in row.reason
    failed = first.model_copy(update={"status": "failed", "revision": 3})
    row = only(checks.check_addons([failed, *rest], params), "helm.release", rid)
    assert row.status == "fail" and "revision 3 is failed" in row.reason
    other = first.model_copy(update={"chart": "something-else"})
    assert only(checks.check_addons([other, *rest], params), "helm.release", rid).status == "fail"


# --- RDS -----------------------------------------------------------------------------------------


def _rds(params, update=None, thresholds: Thresholds | None = None):
    estate = healthy(params)
    ident = params.rds[0].identifier
    db = estate.db_instances[ident].model_copy(update=update or {})
    return checks.check_rds({ident: db}, estate.kms_keys, params, NOW, thresholds or Thresholds()), ident


@pytest.mark.parametrize(
    "update, check, status, words",
    [
        ({"multi_az": False}, "rds.multi_az", "fail", "single-AZ"),
        ({"backup_retention_days": 1}, "rds.backup_retention", "fail", "1 days"),
        ({"backup_retention_days": 0}, "rds.backup_retention", "fail", "0 days"),
        ({"storage_encrypted": False}, "rds.storage_encrypted", "fail", "not encrypted"),
        ({"kms_key_id": f"{ARN}:key/other"}, "rds.storage_encrypted", "warn", "key/other"),
        ({"latest_restorable_time": NOW - timedelta(minutes=45)}, "rds.restore_lag", "warn", "45.0 min"),
        ({"latest_restorable_time": None}, "rds.restore_lag", "fail", "no latest restorable time"),
        ({"status": "modifying"}, "rds.instance", "warn", "modifying"),
    ],
)
def test_rds_checks_fail_on_what_they_guard(params, update, check, status, words) -> None:
    rows, ident = _rds(params, update)
    assert [(r.check, r.status) for r in not_passing(rows)] == [(check, status)]
    assert words in only(rows, check).reason


def test_rds_restore_lag_threshold_is_a_knob(params) -> None:
    lagging = {"latest_restorable_time": NOW - timedelta(minutes=8)}
    assert only(_rds(params, lagging)[0], "rds.restore_lag").status == "pass"
    tight = Thresholds(restore_lag_warn_minutes=5)
    assert only(_rds(params, lagging, tight)[0], "rds.restore_lag").status == "warn"


def test_a_missing_rds_instance_is_one_failure(params) -> None:
    ident = params.rds[0].identifier
    rows = checks.check_rds({ident: None}, _keys(params), params, NOW, Thresholds())
    assert [(r.check, r.resource, r.status) for r in rows] == [("rds.instance", ident, "fail")]


# --- state bucket and lock table -----------------------------------------------------------------


def _state(params, **update):
    estate = healthy(params)
    name = params.buckets.terraform_state
    buckets = [b.model_copy(update=update) if b.name == name else b for b in estate.buckets]
    return checks.check_buckets(buckets, estate.kms_keys, params), name


@pytest.mark.parametrize(
    "update, check, status, words",
    [
        ({"versioning": "Suspended"}, "s3.versioning", "fail", "Suspended"),
        ({"versioning": ""}, "s3.versioning", "fail", "never enabled"),
        ({"encryption": None}, "s3.encryption", "fail", "no default encryption"),
        ({"encryption": Encryption(algorithm="AES256")}, "s3.encryption", "warn", "SSE-S3"),
        (
            {"encryption": Encryption(algorithm="aws:kms", kms_key_id=f"{ARN}:key/other")},
            "s3.encryption",
            "warn",
            "key/other",
        ),
        ({"public_access_block": {}}, "s3.public_access_block", "fail", "no public access block"),
        (
            {"public_access_block": {**dict.fromkeys(PUBLIC_ACCESS_FLAGS, True), "BlockPublicPolicy": False}},
            "s3.public_access_block",
            "fail",
            "BlockPublicPolicy",
        ),
    ],
)
def test_state_bucket_checks_fail_on_what_they_guard(params, update, check, status, words) -> None:
    rows, name = _state(params, **update)
    assert [(r.check, r.status) for r in not_passing(rows)] == [(check, status)]
    assert words in only(rows, check).reason


def test_state_bucket_key_may_be_named_by_alias(params) -> None:
    alias_arn = f"{ARN}:{params.kms.terraform}"
    for name in (params.kms.terraform, alias_arn, "id-terraform"):
        rows, _ = _state(params, encryption=Encryption(algorithm="aws:kms", kms_key_id=name))
        assert only(rows, "s3.encryption").status == "pass", name


def test_a_missing_bucket_fails_and_a_missing_state_bucket_skips_its_details(params) -> None:
    rows, name = _state(params, exists=False)
    assert [(r.check, r.resource, r.status) for r in not_passing(rows)] == [("s3.bucket", name, "fail")]
    assert not [r for r in rows if r.check in ("s3.versioning", "s3.encryption", "s3.public_access_block")]


def test_lock_table_missing_or_without_lockid_fails(params) -> None:
    assert checks.check_lock_table(None, params)[0].status == "fail"
    table = healthy(params).lock_table
    row = checks.check_lock_table(table.model_copy(update={"hash_key": "id"}), params)[0]
    assert row.status == "fail" and "LockID" in row.reason
    row = checks.check_lock_table(table.model_copy(update={"hash_key_type": "N"}), params)[0]
    assert row.status == "fail"


# --- keys, trail, certificates, parameters -------------------------------------------------------


def test_kms_rotation_off_missing_or_disabled_key_fails(params) -> None:
    keys = _keys(params)
    for update, words in [
        ({"rotation_enabled": False}, "rotation disabled"),
        ({"exists": False, "key_id": None, "key_arn": None}, "no KMS key"),
        ({"state": "PendingDeletion"}, "PendingDeletion"),
    ]:
        changed = [keys[0].model_copy(update=update), *keys[1:]]
        bad = not_passing(checks.check_kms(changed, params))
        assert [(r.resource, r.status) for r in bad] == [(keys[0].alias, "fail")]
        assert words in bad[0].reason


def test_trail_missing_or_not_logging_fails(params) -> None:
    assert checks.check_trail(None, params)[0].status == "fail"
    trail = healthy(params).trail
    row = checks.check_trail(trail.model_copy(update={"is_logging": False}), params)[0]
    assert row.status == "fail" and "not logging" in row.reason
    row = checks.check_trail(trail.model_copy(update={"s3_bucket": "elsewhere"}), params)[0]
    assert row.status == "warn" and "elsewhere" in row.reason


def test_certificates_missing_unissued_expiring_or_not_covering_fail(params) -> None:
    cert = healthy(params).certificates[0]
    domain = params.certificates[0].domain
    assert checks.check_certificates([], params, NOW, Thresholds())[0].status == "fail"

    def status(**update):
        row = checks.check_certificates([cert.model_copy(update=update)], params, NOW, Thresholds())[0]
        return row.status, row.reason

    assert status(status="PENDING_VALIDATION")[0] == "fail"
    below = params.cert_min_days - 1
    got = status(not_after=NOW + timedelta(days=below, hours=1))
    assert got[0] == "fail" and f"({below} days)" in got[1]
    assert status(not_after=NOW + timedelta(days=params.cert_min_days + 1))[0] == "warn"
    assert status(not_after=NOW + timedelta(days=params.cert_min_days + 30))[0] == "pass"
    alt = params.certificates[0].alternative_names[0]
    got = status(alternative_names=[domain])
    assert got[0] == "fail" and alt in got[1]
    # an old expired certificate beside a fresh one does not matter
    old = cert.model_copy(update={"status": "EXPIRED", "not_after": NOW - timedelta(days=5)})
    assert checks.check_certificates([old, cert], params, NOW, Thresholds())[0].status == "pass"


def test_ssm_parameters_missing_or_not_secure_fail(params) -> None:
    found = healthy(params).ssm_parameters
    secure = params.ssm.secure[0]
    rows = checks.check_ssm([p for p in found if p.name != secure], params)
    assert [(r.resource, r.status, r.reason) for r in not_passing(rows)] == [(secure, "fail", "missing")]
    plain = [p.model_copy(update={"type": "String"}) if p.name == secure else p for p in found]
    bad = not_passing(checks.check_ssm(plain, params))
    assert [(r.resource, r.status) for r in bad] == [(secure, "fail")] and "SecureString" in bad[0].reason


# --- unreadable sections -------------------------------------------------------------------------


def test_an_unreadable_section_fails_its_rules_and_the_rest_still_run(params) -> None:
    sections = {k: v for k, v in healthy(params).sections.items() if k not in ("nodes", "helm_releases")}
    estate = Estate(errors={"nodes": "no usable kubeconfig", "helm_releases": "no usable kubeconfig"}, **sections)
    rows = check_estate(estate, params, NOW)
    bad = not_passing(rows)
    assert [(r.check, r.status) for r in bad] == [("k8s.nodes", "fail"), ("helm.release", "fail")]
    assert all("could not read" in r.reason and "kubeconfig" in r.reason for r in bad)
    assert len(rows) > 30


def test_every_check_reads_sections_that_a_collector_provides() -> None:
    from opsbook.inventory.registry import CHECKS, COLLECTORS

    sections = set(COLLECTORS.names())
    missing = {name: set(rule.needs) - sections for name, rule in CHECKS.items() if set(rule.needs) - sections}
    assert not missing, f"checks reading sections no collector provides: {missing}"
    assert len(CHECKS.names()) >= 13
