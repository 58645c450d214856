"""The health check on a sandbox of its own, seeded without one NAT gateway: the check fails
naming the AZ, a strict run of the runbook fails, and breaking its cluster through the API
server fails the Kubernetes checks. The sandbox runs as its own process (`opsbook sandbox up`
with a params file that extends params/sandbox.yaml): moto keeps its state per process, so
a second sandbox in the test process would share the session sandbox's."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import uuid
from pathlib import Path

import pytest
import yaml
from opsbook.clients import Env
from opsbook.inventory import HealthCheckFailed, run_health_check, verdict
from opsbook.params import load_params
from opsbook.sandbox import attach, exported

from tests.notebook_runs import run

ROOT = Path(__file__).resolve().parents[2]
MISSING_AZ = "eu-central-1c"


@pytest.fixture(scope="module")
def no_nat(tmp_path_factory):
    """(params, env) of a running sandbox whose seed left out the NAT gateway of MISSING_AZ."""
    path = tmp_path_factory.mktemp("no-nat") / "sandbox-no-nat.yaml"
    name = f"sandbox-no-nat-{uuid.uuid4().hex[:6]}"  # its own state file, never a stale daemon's
    overlay = {
        "extends": str(ROOT / "params/sandbox.yaml"),
        "env": name,
        "sandbox": {"omit": [f"nat_gateway/{MISSING_AZ}"]},
    }
    path.write_text(yaml.safe_dump(overlay))
    params = load_params(path)
    state = attach.up(params)
    try:
        yield params, state["env"]
    finally:
        attach.down(params.env)
        state_path = attach.state_file(params.env)
        state_path.with_suffix(".log").unlink(missing_ok=True)
        shutil.rmtree(state_path.with_suffix(".d"), ignore_errors=True)


def test_missing_nat_gateway_fails_naming_its_az(no_nat) -> None:
    params, env = no_nat
    with exported(env):
        report = run_health_check(Env(params=params))
    nat = {c.resource: c for c in report.checks if c.check == "vpc.nat_gateway"}
    assert nat[MISSING_AZ].status == "fail" and MISSING_AZ in nat[MISSING_AZ].reason
    assert [az for az, c in nat.items() if c.status == "pass"] == [
        az for az in params.network.azs if az != MISSING_AZ
    ]
    with pytest.raises(HealthCheckFailed, match=f"vpc.nat_gateway\\[{MISSING_AZ}\\]"):
        verdict(report, strict=True)


def test_a_strict_run_of_the_runbook_fails_and_keeps_its_records(no_nat, tmp_path: Path) -> None:

    params, env = no_nat
    with exported(env):
        result = run("health-check", tmp_path, params, {"strict": True})
    assert not result.ok
    assert result.error["ename"] == "HealthCheckFailed" and MISSING_AZ in result.error["evalue"]
    assert f"vpc.nat_gateway[{MISSING_AZ}]" in result.records["check_status"]["fail"]
    assert result.records["summary"]["fail"] >= 1


def _helm_release_secret(name: str, namespace: str, revision: int, chart: str, version: str) -> dict:
    """A Helm 3 release Secret: `release` is base64 (Helm) of gzipped JSON, base64 again in `data`."""
    record = {"name": name, "namespace": namespace, "version": revision, "info": {"status": "deployed"},
              "chart": {"metadata": {"name": chart, "version": version}}}  # fmt: skip
    helm = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v{revision}",
            "labels": {"owner": "helm", "name": name, "status": "deployed", "version": str(revision)},
        },
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(helm).decode()},
    }


def test_kubernetes_checks_fail_on_a_not_ready_node_and_a_wrong_chart(no_nat) -> None:
    """Break the cluster of this sandbox (its own, thrown away after) through the API server."""
    from kubernetes import client

    params, env = no_nat
    addon = params.eks.addons[0]
    with exported(env):
        ctx = Env(params=params)
        core = client.CoreV1Api(ctx.kube)
        node = core.list_node().items[0].metadata.name
        not_ready = {
            "type": "Ready",
            "status": "False",
            "reason": "KubeletNotReady",
            "message": "PLEG is not healthy",
        }
        core.patch_node_status(node, {"status": {"conditions": [not_ready]}})
        revisions = core.list_namespaced_secret(
            addon.namespace, label_selector=f"owner=helm,name={addon.name}"
        ).items
        latest = max(int(s.metadata.labels["version"]) for s in revisions)
        core.create_namespaced_secret(
            addon.namespace,
            _helm_release_secret(addon.name, addon.namespace, latest + 1, addon.chart, "0.0.1"),
        )
        report = run_health_check(ctx)
    rows = {c.name: c for c in report.checks}
    nodes = rows[f"k8s.nodes[{params.eks.cluster_name}]"]
    assert nodes.status == "fail" and node in nodes.reason and "KubeletNotReady" in nodes.reason
    release = rows[f"helm.release[{addon.namespace}/{addon.name}]"]
    assert release.status == "fail" and "0.0.1" in release.reason and addon.version in release.reason
    assert f"revision {latest + 1}" not in release.reason  # a version mismatch, not a failed revision
