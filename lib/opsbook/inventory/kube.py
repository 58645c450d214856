"""Kubernetes (official client, from the env's kubeconfig): nodes and Helm releases.

Helm 3 keeps each release revision in a Secret `sh.helm.release.v1.<name>.v<revision>`
of type `helm.sh/release.v1`, labelled owner=helm, name, status and version; its
`release` field is base64 of gzipped JSON (on top of the Secret's own base64).
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS

ZONE_LABEL = "topology.kubernetes.io/zone"
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
HELM_SECRET_TYPE = "helm.sh/release.v1"
GZIP_MAGIC = b"\x1f\x8b"
REQUEST_TIMEOUT = 15  # seconds per API call: an unreachable API server fails the section, not the run


class KubeNode(Model):
    name: str
    ready: bool
    reason: str = ""  # why not Ready (the condition's reason / message)
    az: str | None = None
    node_group: str | None = None
    kubelet_version: str | None = None


class HelmRelease(Model):
    name: str
    namespace: str
    revision: int
    status: str  # deployed, failed, pending-upgrade, superseded, ...
    chart: str
    chart_version: str
    app_version: str | None = None


@COLLECTORS.register("nodes")
def collect_nodes(env: Env) -> list[KubeNode]:
    from kubernetes import client

    nodes = client.CoreV1Api(env.kube).list_node(_request_timeout=REQUEST_TIMEOUT)
    return [_node(n) for n in nodes.items]


def _node(node: Any) -> KubeNode:
    labels = node.metadata.labels or {}
    ready = next((c for c in (node.status.conditions or []) if c.type == "Ready"), None)
    is_ready = ready is not None and ready.status == "True"
    if is_ready:
        reason = ""
    elif ready is None:
        reason = "no Ready condition"
    else:
        reason = " ".join(filter(None, [ready.reason, ready.message])) or f"Ready={ready.status}"
    info = node.status.node_info
    return KubeNode(
        name=node.metadata.name,
        ready=is_ready,
        reason=reason,
        az=labels.get(ZONE_LABEL),
        node_group=labels.get(NODEGROUP_LABEL),
        kubelet_version=info.kubelet_version if info else None,
    )


def decode_release(data: str) -> dict[str, Any]:
    """A Helm release record from a Secret's `release` field as the API returns it."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return json.loads(raw)


def collect_helm_releases(env: Env, namespaces: list[str]) -> list[HelmRelease]:
    """The current revision of every Helm release in `namespaces`.

    Current = the highest deployed revision; a release with none deployed shows its
    latest revision (failed, pending-install, ...), so the check can say so.
    """
    from kubernetes import client

    core = client.CoreV1Api(env.kube)
    releases: list[HelmRelease] = []
    for namespace in dict.fromkeys(namespaces):
        secrets = core.list_namespaced_secret(
            namespace, label_selector="owner=helm", _request_timeout=REQUEST_TIMEOUT
        ).items
        by_name: dict[str, list[Any]] = {}
        for secret in secrets:
            if secret.type == HELM_SECRET_TYPE and secret.data and "release" in secret.data:
                by_name.setdefault((secret.metadata.labels or {}).get("name", ""), []).append(secret)
        for revisions in by_name.values():
            releases.append(current_release(namespace, revisions))
    return releases


def current_release(namespace: str, secrets: list[Any]) -> HelmRelease:
    """The highest deployed revision among one release's Secrets (else its latest)."""

    def labels(s: Any) -> dict[str, str]:
        return s.metadata.labels or {}

    def revision(s: Any) -> int:
        return int(labels(s).get("version", "0"))

    deployed = [s for s in secrets if labels(s).get("status") == "deployed"]
    chosen = max(deployed or secrets, key=revision)
    record = decode_release(chosen.data["release"])
    meta = record.get("chart", {}).get("metadata", {})
    return HelmRelease(
        name=record.get("name", labels(chosen).get("name", "")),
        namespace=record.get("namespace", namespace),
        revision=int(record.get("version", revision(chosen))),
        status=record.get("info", {}).get("status", labels(chosen).get("status", "")),
        chart=meta.get("name", ""),
        chart_version=meta.get("version", ""),
        app_version=meta.get("appVersion"),
    )


@COLLECTORS.register("helm_releases")
def collect_addon_releases(env: Env) -> list[HelmRelease]:
    """The Helm releases in the namespaces of the add-ons params name."""
    return collect_helm_releases(env, [a.namespace for a in env.params.eks.addons])
