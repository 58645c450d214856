"""The EKS add-ons: what Helm has deployed, what params want, and Helm values from params.

- `releases` / `history`: each add-on's chart, chart version, app version, status and
  revisions, read from Helm's release Secrets (no helm binary needed).
- `versions`: deployed against `eks.addons` in params (up to date, upgrade, install...).
- `plan_values`: Helm values rendered from params for ingress-nginx (one NLB),
  cluster-autoscaler (cluster name, ASG auto-discovery tags), external-dns (zones, TXT
  owner), velero (bucket, region) and the Datadog agent (cluster name, site), planned
  as files an engineer applies with helm (no secret goes into them: the Datadog keys
  are referenced by Secret name).
- `helm_dry_run`: where a `helm` binary is on PATH, `helm upgrade --install --dry-run`
  of each add-on with those values; without one, it says so and stops there.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from packaging.version import InvalidVersion, Version

from opsbook.clients import Env
from opsbook.guard import Plan
from opsbook.params import HelmRelease, Params
from opsbook.provision import certificates, files, helm_releases
from opsbook.provision.helm_releases import Release

# where each chart is published (helm upgrade --install NAME CHART --repo URL)
CHART_REPOS = {
    "ingress-nginx": "https://kubernetes.github.io/ingress-nginx",
    "cluster-autoscaler": "https://kubernetes.github.io/autoscaler",
    "external-dns": "https://kubernetes-sigs.github.io/external-dns/",
    "velero": "https://vmware-tanzu.github.io/helm-charts",
    "datadog": "https://helm.datadoghq.com",
}
# velero-plugin-for-aws release made for each Velero minor version (Velero's compatibility matrix)
VELERO_AWS_PLUGIN = {"1.13": "v1.9.2", "1.14": "v1.10.1", "1.15": "v1.11.1", "1.16": "v1.12.1"}
DATADOG_SECRET = "datadog-secret"  # holds api-key and app-key; made from SSM, never written here


# --- what is deployed -----------------------------------------------------------------------


def releases(env: Env) -> list[Release]:
    return helm_releases.read_releases(env.kube)


def current_table(all_releases: list[Release]) -> pd.DataFrame:
    """One row per release: its current revision."""
    rows = [asdict(r) for r in helm_releases.current(all_releases).values()]
    columns = ["namespace", "name", "chart", "chart_version", "app_version", "status", "revision", "last_deployed"]
    return pd.DataFrame(rows, columns=list(Release.__dataclass_fields__))[columns]


def history(all_releases: list[Release]) -> pd.DataFrame:
    """Every revision of every release, newest first within a release."""
    columns = ["namespace", "name", "revision", "status", "chart_version", "app_version", "last_deployed",
               "description"]
    table = pd.DataFrame([asdict(r) for r in all_releases], columns=list(Release.__dataclass_fields__))
    return table.sort_values(["namespace", "name", "revision"], ascending=[True, True, False],
                             ignore_index=True)[columns]


def _order(a: str, b: str) -> int:
    try:
        va, vb = Version(a.lstrip("v")), Version(b.lstrip("v"))
    except InvalidVersion:
        return 0 if a == b else (-1 if a < b else 1)
    return (va > vb) - (va < vb)


def versions(env: Env, all_releases: list[Release]) -> pd.DataFrame:
    """Deployed against wanted (params eks.addons), with what to do about each."""
    now = helm_releases.current(all_releases)
    rows = []
    for want in env.params.eks.addons:
        rel = now.pop((want.namespace, want.name), None)
        if rel is None:
            verdict = "install"
        elif rel.chart != want.chart:
            verdict = f"chart differs ({rel.chart}); reinstall as {want.chart}"
        elif rel.status != "deployed":
            verdict = f"{rel.status}: fix before upgrading (helm history {want.name} -n {want.namespace})"
        else:
            order = _order(rel.chart_version, want.version)
            verdict = {0: "up to date", -1: f"upgrade to {want.version}", 1: "newer than params"}[order]
        rows.append({"add-on": want.name, "namespace": want.namespace, "chart": want.chart,
                     "wanted": want.version, "deployed": rel.chart_version if rel else "—",
                     "wanted app": want.app_version, "deployed app": rel.app_version if rel else "—",
                     "status": rel.status if rel else "—", "revision": rel.revision if rel else "—",
                     "verdict": verdict})
    for (namespace, name), rel in sorted(now.items()):
        rows.append({"add-on": name, "namespace": namespace, "chart": rel.chart, "wanted": "—",
                     "deployed": rel.chart_version, "wanted app": "—", "deployed app": rel.app_version,
                     "status": rel.status, "revision": rel.revision, "verdict": "not in params"})
    return pd.DataFrame(rows)


# --- Helm values from params ----------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What values need beyond params: looked up once, so rendering stays pure."""

    certificate_arn: str | None = None


def ingress_nginx(p: Params, facts: Facts) -> dict[str, Any]:
    annotations = {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
        "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
    }
    target_ports = {"http": "http", "https": "https"}
    if facts.certificate_arn:  # TLS ends at the NLB with the ACM certificate
        annotations["service.beta.kubernetes.io/aws-load-balancer-ssl-cert"] = facts.certificate_arn
        annotations["service.beta.kubernetes.io/aws-load-balancer-ssl-ports"] = "https"
        target_ports = {"http": "http", "https": "http"}
    return {"controller": {
        "replicaCount": len(p.network.azs),
        "service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "annotations": annotations,
                    "targetPorts": target_ports, "internal": {"enabled": False}},  # one NLB, no second one
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {
                                           "app.kubernetes.io/name": "ingress-nginx",
                                           "app.kubernetes.io/component": "controller"}}}],
    }}


def cluster_autoscaler(p: Params, facts: Facts) -> dict[str, Any]:
    cluster = p.eks.cluster_name
    return {
        "cloudProvider": "aws",
        "awsRegion": p.region,
        "autoDiscovery": {"clusterName": cluster,
                          "tags": ["k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{cluster}"]},
        "extraArgs": {"balance-similar-node-groups": True, "skip-nodes-with-system-pods": False,
                      "expander": "least-waste"},
        "rbac": {"serviceAccount": {"name": "cluster-autoscaler"}},
    }


def external_dns(p: Params, facts: Facts) -> dict[str, Any]:
    return {
        "provider": {"name": "aws"},
        "env": [{"name": "AWS_DEFAULT_REGION", "value": p.region}],
        "domainFilters": [p.zones.public, p.zones.private],
        "txtOwnerId": p.eks.cluster_name,
        "registry": "txt",
        "policy": "upsert-only",
        "sources": ["service", "ingress"],
    }


def velero(p: Params, facts: Facts, app_version: str = "") -> dict[str, Any]:
    minor = ".".join(app_version.lstrip("v").split(".")[:2])
    plugin = VELERO_AWS_PLUGIN.get(minor, VELERO_AWS_PLUGIN[max(VELERO_AWS_PLUGIN, key=Version)])
    return {
        "configuration": {
            "backupStorageLocation": [{"name": "default", "provider": "aws", "bucket": p.buckets.velero,
                                       "config": {"region": p.region}}],
            "volumeSnapshotLocation": [{"name": "default", "provider": "aws", "config": {"region": p.region}}],
        },
        "initContainers": [{"name": "velero-plugin-for-aws", "image": f"velero/velero-plugin-for-aws:{plugin}",
                            "volumeMounts": [{"mountPath": "/target", "name": "plugins"}]}],
        "credentials": {"useSecret": False},  # IRSA: the service account's role reaches S3 and EBS
        "serviceAccount": {"server": {"name": "velero"}},
    }


def datadog(p: Params, facts: Facts) -> dict[str, Any]:
    return {
        "datadog": {"clusterName": p.eks.cluster_name, "site": p.datadog.site,
                    "apiKeyExistingSecret": DATADOG_SECRET, "appKeyExistingSecret": DATADOG_SECRET,
                    "logs": {"enabled": True, "containerCollectAll": True}},
        "clusterAgent": {"enabled": True},
    }


Renderer = Callable[[Params, Facts], dict[str, Any]]
RENDERERS: dict[str, Renderer] = {
    "ingress-nginx": ingress_nginx,
    "cluster-autoscaler": cluster_autoscaler,
    "external-dns": external_dns,
    "velero": lambda p, f: velero(p, f, next((a.app_version for a in p.eks.addons if a.chart == "velero"), "")),
    "datadog": datadog,
}


def facts(env: Env) -> Facts:
    """The ACM certificate for the NLB: the first params certificate, when one is usable."""
    if not env.params.certificates:
        return Facts()
    first = env.params.certificates[0]
    want = certificates.Wanted(first.domain, tuple(sorted({first.domain, *first.alternative_names})))
    cert = certificates.current_certificate(certificates.list_certificates(env, env.params.region), want)
    return Facts(certificate_arn=cert["CertificateArn"] if cert and cert["Status"] == "ISSUED" else None)


def render(params: Params, known: Facts) -> dict[str, dict[str, Any]]:
    """Release name -> Helm values, for every add-on in params whose chart has a renderer."""
    return {a.name: RENDERERS[a.chart](params, known) for a in params.eks.addons if a.chart in RENDERERS}


def values_path(folder: Path, release: str) -> Path:
    return folder / f"{release}-values.yaml"


def plan_values(env: Env, output_dir: str = "", known: Facts | None = None) -> Plan:
    """One row per values file; applying writes them (a local change: no production approval)."""
    folder = files.output_dir(env.params, output_dir, "helm-values")
    rendered = render(env.params, known if known is not None else facts(env))
    plan = Plan(f"Helm values of {env.name}")
    for name, values in rendered.items():
        path = values_path(folder, name)
        current = files.read_yaml(path) if path.is_file() else None
        text = f"# Helm values for {name}, rendered by opsbook from params/{env.name}.yaml\n" + files.to_yaml(values)
        plan.add(files.file_row(f"file {path}", "helm values", current, values,
                                lambda p=path, t=text: files.write_text(p, t)))
    return plan


# --- helm ----------------------------------------------------------------------------------


@dataclass
class HelmCheck:
    """The outcome of offering `helm upgrade --install --dry-run`."""

    helm: str | None
    message: str
    commands: pd.DataFrame
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return bool(self.results)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.results) if self.results else self.commands

    def _repr_html_(self) -> str:
        return f"<p>{self.message}</p>" + self.table().to_html(index=False)

    def __repr__(self) -> str:
        return self.message


def helm_command(addon: HelmRelease, values_file: Path, kube_context: str | None = None) -> list[str]:
    cmd = ["helm", "upgrade", "--install", addon.name, addon.chart, "--repo", CHART_REPOS.get(addon.chart, "?"),
           "--version", addon.version, "--namespace", addon.namespace, "--create-namespace",
           "--values", str(values_file)]
    return cmd + (["--kube-context", kube_context] if kube_context else [])


def helm_dry_run(env: Env, output_dir: str = "", run: bool = True, timeout_s: int = 300) -> HelmCheck:
    """Dry-run each add-on's upgrade through helm when it is on PATH; else say so and stop."""
    rendered = render(env.params, facts(env))
    folder = files.output_dir(env.params, output_dir, "helm-values")
    addons = [a for a in env.params.eks.addons if a.name in rendered]
    commands = pd.DataFrame([{"add-on": a.name, "command": " ".join(helm_command(a, values_path(folder, a.name)))}
                             for a in addons])
    helm = shutil.which("helm")
    if helm is None:
        return HelmCheck(None, "helm is not on PATH, so no dry run was made; stopping here. Install Helm 3 "
                               "(https://helm.sh/docs/intro/install/) and run this step again, or apply the "
                               "values files with the commands below.", commands)
    if not run:
        return HelmCheck(helm, f"helm found at {helm}; dry run not requested (helm_dry_run=False)", commands)
    results = []
    with tempfile.TemporaryDirectory(prefix="opsbook-helm-") as tmp:
        for addon in addons:
            path = values_path(Path(tmp), addon.name)
            files.write_text(path, files.to_yaml(rendered[addon.name]))
            cmd = [helm, *helm_command(addon, path)[1:], "--dry-run"]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
                ok, tail = done.returncode == 0, (done.stderr or done.stdout).strip().splitlines()[-3:]
            except subprocess.TimeoutExpired:
                ok, tail = False, [f"timed out after {timeout_s}s"]
            results.append({"add-on": addon.name, "dry run": "ok" if ok else "failed", "helm says": " | ".join(tail)})
    failed = [r["add-on"] for r in results if r["dry run"] != "ok"]
    message = (f"helm dry run passed for {len(results)} add-on(s)" if not failed else
               f"helm dry run failed for: {', '.join(failed)}")
    return HelmCheck(helm, message, commands, results)
