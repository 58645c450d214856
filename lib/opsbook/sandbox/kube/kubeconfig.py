"""The kubeconfig through which real clients reach the emulated API server."""

from __future__ import annotations

from pathlib import Path

import yaml

# Any bearer token is accepted; a token is still written so clients send Authorization as on EKS.
SANDBOX_TOKEN = "sandbox"


def write_kubeconfig(path: Path, cluster_name: str, server_url: str) -> Path:
    """A kubeconfig whose cluster, user and context are named after the EKS cluster."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server_url}}],
        "users": [{"name": cluster_name, "user": {"token": SANDBOX_TOKEN}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
