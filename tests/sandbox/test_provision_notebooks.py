"""The five provisioning runbooks run through the runner in apply mode (twice: the second run
changes nothing), and no SSM parameter value appears in anything those runs leave behind.

Each runbook gets a region or names of its own so these runs do not meet the library tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import boto3
import pytest
from opsbook.runner import describe_failure

from tests.notebook_runs import run
from tests.sandbox.conftest import put_ssm_markers

PRODUCED: list[Path] = []  # run folders and generated files, scanned by the last test


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("provision-runs")


@pytest.fixture(scope="module")
def markers(sandbox, sandbox_params) -> dict[str, str]:
    """Distinctive values of every type in the env's tree: the sync copies them like the seeded ones."""
    return {name: value for name, (_, value) in put_ssm_markers(sandbox_params, "notebooks").items()}


def _run(name: str, params, work: Path, **overrides):
    result = run(name, work / "runs", params, overrides)
    PRODUCED.append(result.run_dir)
    assert result.ok, describe_failure(result)
    return result


def _twice(name: str, params, work: Path, **overrides):
    first = _run(name, params, work, apply=True, **overrides)
    second = _run(name, params, work, apply=True, **overrides)
    assert second.records["changes_applied"] == 0, f"{name}: the second apply changed something"
    return first, second


def test_bootstrap_backend_applies_once(sandbox, sandbox_params, work) -> None:
    out = work / "backend"
    PRODUCED.append(out)
    first, second = _twice("bootstrap-terraform-backend", sandbox_params, work, region="eu-west-3",
                           output_dir=str(out))
    assert first.records["changes_applied"] == first.records["changes_planned"] > 0
    assert first.records["pending_after"] == second.records["pending_after"] == 0
    assert 'backend "s3"' in (out / "backend.tf").read_text()


def test_region_readiness_writes_tfvars_once(sandbox, sandbox_params, work) -> None:
    out = work / "region"
    PRODUCED.append(out)
    first, _ = _twice("region-readiness", sandbox_params, work, output_dir=str(out))
    assert first.records["ready"] is True and first.records["changes_applied"] > 0
    assert f'vpc_cidr = "{first.records["vpc_cidr"]}"' in (out / "terraform.tfvars").read_text()


def test_certificate_issues_once(sandbox, sandbox_params, work) -> None:
    domain = f"nb-{secrets.token_hex(3)}.{sandbox_params.zones.public}"
    first, second = _twice("certificate", sandbox_params, work, domain=domain,
                           alternative_names=[f"www.{domain}"])
    assert first.records["changes_applied"] == 4 and second.records["pending_after"] == 0


def test_ssm_sync_copies_once(sandbox, sandbox_params, work, markers) -> None:
    plan_only = _run("ssm-parameter-sync", sandbox_params, work)
    assert plan_only.records["changes_applied"] == 0
    first, second = _twice("ssm-parameter-sync", sandbox_params, work)
    assert first.records["changes_applied"] >= len(markers)
    assert second.records["missing_after"] == 0


def test_eks_addons_values_once_and_helm_absent(sandbox, sandbox_params, work) -> None:
    if "KUBECONFIG" not in os.environ:
        pytest.skip("the sandbox has no Kubernetes emulator registered (KUBECONFIG unset)")
    out = work / "helm-values"
    PRODUCED.append(out)
    first, _ = _twice("eks-addons", sandbox_params, work, output_dir=str(out))
    assert first.records["changes_applied"] == len(sandbox_params.eks.addons)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{a.name}-values.yaml" for a in sandbox_params.eks.addons)
    if shutil.which("helm") is None:
        assert first.records["helm"].startswith("helm is not on PATH, so no dry run was made; stopping here")
        assert "helm is not on PATH" in (first.run_dir / "output.ipynb").read_text()
    else:
        assert "helm dry run" in first.records["helm"]


def test_no_ssm_value_in_any_run_output(sandbox, sandbox_params, markers) -> None:
    """Every secure value of the env's tree (source and target regions) and every marker."""
    assert len(PRODUCED) >= 10, "the runs above did not all happen"
    values = set(markers.values()) | {part for v in markers.values() for part in v.split(",")}
    for region in {sandbox_params.region, *sandbox_params.other_regions}:
        ssm = boto3.client("ssm", region_name=region)
        for page in ssm.get_paginator("get_parameters_by_path").paginate(
                Path=sandbox_params.ssm.prefix, Recursive=True, WithDecryption=True):
            values |= {p["Value"] for p in page["Parameters"] if p["Type"] == "SecureString"}
    assert len(values) >= 6
    scanned = 0
    for root in PRODUCED:
        for path in [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]:
            text = path.read_text(errors="replace")
            scanned += 1
            leaked = [v for v in values if v in text]
            assert not leaked, f"{path} shows {len(leaked)} SSM value(s)"
    assert scanned >= 40  # output.ipynb, report.html, results.json, records.jsonl per run, generated files
