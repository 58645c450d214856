"""The health check through the real clients against the session sandbox, and the runbook."""

from __future__ import annotations

from pathlib import Path

from opsbook.clients import Env
from opsbook.inventory import run_health_check, verdict
from opsbook.inventory.health import collect_estate

from tests.notebook_runs import run_passing

KUBE_CHECKS = {"k8s.nodes", "k8s.node_spread", "helm.release"}


def test_every_aws_check_passes_on_the_default_sandbox(sandbox_env: Env) -> None:
    report = run_health_check(sandbox_env)
    aws_rows = [c for c in report.checks if c.check not in KUBE_CHECKS]
    assert [c for c in aws_rows if c.status != "pass"] == []
    params = sandbox_env.params
    nat_rows = [c.resource for c in aws_rows if c.check == "vpc.nat_gateway"]
    assert nat_rows == params.network.azs
    assert len([c for c in aws_rows if c.check == "ssm.parameter"]) == len(
        set(params.ssm.required) | set(params.ssm.secure)
    )


def test_the_wrappers_read_what_boto3_reports(sandbox_env: Env) -> None:
    """Spot-check the models against direct boto3 answers (recomputed here, not trusted)."""
    estate = collect_estate(sandbox_env)
    params = sandbox_env.params
    ec2 = sandbox_env.aws("ec2")
    nat_ids = {
        n["NatGatewayId"] for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] == "available"
    }
    assert {n.nat_gateway_id for n in estate.network.nat_gateways} == nat_ids
    db = sandbox_env.aws("rds").describe_db_instances(DBInstanceIdentifier=params.rds[0].identifier)[
        "DBInstances"
    ][0]
    model = estate.db_instances[params.rds[0].identifier]
    assert (model.multi_az, model.backup_retention_days, model.kms_key_id) == (
        db["MultiAZ"], db["BackupRetentionPeriod"], db["KmsKeyId"],
    )  # fmt: skip
    cert = estate.certificates[0]
    described = sandbox_env.aws("acm").describe_certificate(CertificateArn=cert.arn)["Certificate"]
    assert (cert.status, cert.not_after) == (described["Status"], described["NotAfter"])


def test_kubernetes_checks_pass_on_the_sandbox_cluster(sandbox_env: Env) -> None:
    report = run_health_check(sandbox_env)
    kube_rows = [c for c in report.checks if c.check in KUBE_CHECKS]
    assert [c for c in kube_rows if c.status != "pass"] == []
    assert len([c for c in kube_rows if c.check == "helm.release"]) == len(sandbox_env.params.eks.addons)
    # the nodes the API server lists are the node groups' instances
    from kubernetes import client

    names = {n.metadata.name for n in client.CoreV1Api(sandbox_env.kube).list_node().items}
    instances = [
        i
        for r in sandbox_env.aws("ec2").describe_instances(
            Filters=[{"Name": "tag:eks:cluster-name", "Values": [sandbox_env.params.eks.cluster_name]}]
        )["Reservations"]
        for i in r["Instances"]
    ]
    assert names == {i["PrivateDnsName"] for i in instances}


def test_strict_verdict_passes_on_the_default_sandbox(sandbox_env: Env) -> None:
    assert verdict(run_health_check(sandbox_env), strict=True).endswith(" 0 warn, 0 fail")


def test_the_runbook_runs_and_records_every_check(sandbox, sandbox_params, tmp_path: Path) -> None:
    result = run_passing("health-check", tmp_path, sandbox_params)
    records = result.records
    rows = records["checks"]
    assert records["summary"] == {s: sum(r["status"] == s for r in rows) for s in ("pass", "warn", "fail")}
    assert sorted(n for names in records["check_status"].values() for n in names) == sorted(
        f"{r['check']}[{r['resource']}]" for r in rows
    )
    assert [r for r in rows if r["status"] != "pass"] == []
