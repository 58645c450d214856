"""EKS add-ons on the sandbox: Helm release secrets read back, compared with params, values files."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil

import pytest
import yaml
from opsbook.provision import addons, steps


@pytest.fixture()
def core(sandbox, sandbox_env):
    if "KUBECONFIG" not in os.environ:
        pytest.skip("the sandbox has no Kubernetes emulator registered (KUBECONFIG unset)")
    from kubernetes import client

    return client.CoreV1Api(sandbox_env.kube)


def _helm_secret(name: str, namespace: str, revision: int, status: str, version: str) -> dict:
    release = {"name": name, "namespace": namespace, "version": revision,
               "info": {"status": status, "first_deployed": "2024-01-01T00:00:00Z",
                        "last_deployed": f"2024-0{revision}-01T00:00:00Z", "description": "test"},
               "chart": {"metadata": {"name": name, "version": version, "appVersion": "9.9"}},
               "config": {"password": "never-shown"}}
    helm = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    return {"metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": namespace,
                         "labels": {"owner": "helm", "name": name, "status": status, "version": str(revision)}},
            "type": "helm.sh/release.v1", "data": {"release": base64.b64encode(helm.encode()).decode()}}


def _deployed_from_secrets(core) -> dict[tuple[str, str], str]:
    """(namespace, name) -> chart version of the deployed revision, decoded here independently."""
    out = {}
    for secret in core.list_secret_for_all_namespaces().items:
        if secret.type != "helm.sh/release.v1":
            continue
        raw = gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"])))
        release = json.loads(raw)
        if release["info"]["status"] == "deployed":
            out[(release["namespace"], release["name"])] = release["chart"]["metadata"]["version"]
    return out


def test_releases_history_and_versions(core, sandbox_env) -> None:
    ns = "opsbook-test-addons"
    core.create_namespace({"metadata": {"name": ns}})
    try:
        for revision, status, version in [(1, "superseded", "1.0.0"), (2, "deployed", "1.1.0"), (3, "failed", "1.2.0")]:
            core.create_namespaced_secret(ns, _helm_secret("extra-chart", ns, revision, status, version))
        found = addons.releases(sandbox_env)
        table = addons.current_table(found).set_index(["namespace", "name"])
        deployed = _deployed_from_secrets(core)
        assert {k: table.loc[k, "chart_version"] for k in deployed} == deployed
        assert table.loc[(ns, "extra-chart"), "revision"] == 2 and table.loc[(ns, "extra-chart"), "status"] == "deployed"
        history = addons.history(found)
        mine = history[history["name"] == "extra-chart"]
        assert list(mine["revision"]) == [3, 2, 1] and "never-shown" not in history.to_string()

        versions = addons.versions(sandbox_env, found).set_index("add-on")
        assert versions.loc["extra-chart", "verdict"] == "not in params"
        for want in sandbox_env.params.eks.addons:
            have = deployed.get((want.namespace, want.name))
            verdict = versions.loc[want.name, "verdict"]
            if have is None:
                assert verdict == "install"
            elif have == want.version:
                assert verdict == "up to date"
            else:
                assert verdict in (f"upgrade to {want.version}", "newer than params")
    finally:
        core.delete_namespace(ns)


def test_values_files_planned_written_and_stable(core, sandbox_env, tmp_path) -> None:
    plan = addons.plan_values(sandbox_env, str(tmp_path))
    assert {c.action for c in plan.changes} == {"create"}
    steps.apply_plan(plan, apply=True)
    velero = yaml.safe_load((tmp_path / "velero-values.yaml").read_text())
    assert velero["configuration"]["backupStorageLocation"][0]["bucket"] == sandbox_env.params.buckets.velero
    assert addons.plan_values(sandbox_env, str(tmp_path)).empty
    edited = yaml.safe_load((tmp_path / "datadog-values.yaml").read_text())
    edited["datadog"]["site"] = "example.invalid"  # an engineer's edit by hand
    (tmp_path / "datadog-values.yaml").write_text(yaml.safe_dump(edited))
    [row] = addons.plan_values(sandbox_env, str(tmp_path)).pending
    assert (row.action, row.current) == ("update", "differs at: datadog.site")


def test_without_helm_it_says_so_and_stops(core, sandbox_env, tmp_path) -> None:
    check = addons.helm_dry_run(sandbox_env, str(tmp_path))
    if shutil.which("helm") is not None:
        pytest.skip("helm is on PATH here")
    assert check.helm is None and not check.ran
    assert check.message.startswith("helm is not on PATH, so no dry run was made; stopping here")
    commands = list(check.commands["command"])
    assert len(commands) == len(sandbox_env.params.eks.addons)
    assert all(c.startswith("helm upgrade --install ") and "--version" in c for c in commands)
