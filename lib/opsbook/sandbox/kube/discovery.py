"""Discovery documents: /version, /api, /apis and the resource lists of each group version."""

from __future__ import annotations

from typing import Any

from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.resources import Registry

# The Kubernetes version whose API server this emulates: the printers, server-side apply, the
# workload controllers and the namespace deleter are read from the 1.32 line, so /version says
# 1.32 unless told otherwise. It also picks the client: the installed kubectl is Google's
# dispatcher, which runs the kubectl of the server's minor version (kubectl.1.32 here).
KUBERNETES_VERSION = "1.32"
# Patch release and build suffix EKS reports for the sandbox's cluster version.
EKS_PATCH = "9"
EKS_BUILD = "eks-8cce635"


def version(kube_version: str = KUBERNETES_VERSION) -> dict[str, Any]:
    """What /version answers on EKS (minor carries a '+', gitVersion the EKS build)."""
    major, minor = kube_version.split(".")[:2]
    return {
        "major": major,
        "minor": f"{minor}+",
        "gitVersion": f"v{major}.{minor}.{EKS_PATCH}-{EKS_BUILD}",
        "gitCommit": "8cce635fd2b0cb4f6c5e2b6dbbd2e5c4ff48c5e0",
        "gitTreeState": "clean",
        "buildDate": "2025-01-24T04:57:46Z",
        "goVersion": "go1.22.10",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(name, versions) for name, versions in sorted(registry.groups().items())]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> dict[str, Any]:
    versions = registry.groups().get(name)
    if not versions:
        raise ApiError(404, f"the server could not find the requested resource (group {name})")
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(registry: Registry, group_name: str, version_name: str) -> dict[str, Any]:
    types = sorted(registry.in_version(group_name, version_name), key=lambda t: t.plural)
    gv = f"{group_name}/{version_name}" if group_name else version_name
    if not types:
        raise ApiError(404, f"the server could not find the requested resource ({gv})")
    resources = [entry for rtype in types for entry in rtype.discovery()]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
