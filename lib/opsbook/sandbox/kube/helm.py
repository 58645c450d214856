"""Helm 3 release records, stored as Secrets exactly as Helm's secrets driver writes them.

Helm encodes a release as base64(gzip(JSON)) and stores that string as the Secret's
`release` key; as Secret data is bytes, the API shows it base64-encoded once more.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

SECRET_TYPE = "helm.sh/release.v1"


def secret_name(release: str, revision: int) -> str:
    return f"sh.helm.release.v1.{release}.v{revision}"


def encode_release(release: dict[str, Any]) -> str:
    """Helm's encodeRelease: JSON, gzip (best compression), standard base64."""
    raw = json.dumps(release, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=9)).decode()


def release_secret(release: dict[str, Any], modified_at: int) -> dict[str, Any]:
    """The Secret Helm's storage driver creates for one revision of a release."""
    encoded = encode_release(release)
    return {
        "metadata": {
            "name": secret_name(release["name"], release["version"]),
            "namespace": release["namespace"],
            "labels": {
                "name": release["name"],
                "owner": "helm",
                "status": release["info"]["status"],
                "version": str(release["version"]),
                "modifiedAt": str(modified_at),
            },
        },
        "type": SECRET_TYPE,
        "data": {"release": base64.b64encode(encoded.encode()).decode()},
    }


def release(name: str, namespace: str, revision: int, status: str, chart: dict[str, Any],
            values: dict[str, Any], manifest: str, first_deployed: str, last_deployed: str) -> dict[str, Any]:
    """A release.Release as Helm marshals it (pkg/release: info, chart, config, manifest, hooks)."""
    description = "Install complete" if revision == 1 else "Upgrade complete"
    return {
        "name": name,
        "info": {
            "first_deployed": first_deployed,
            "last_deployed": last_deployed,
            "deleted": "",
            "description": description,
            "status": status,
            "notes": f"{chart['name']} has been {'installed' if revision == 1 else 'upgraded'}.",
        },
        "chart": {
            "metadata": chart,
            "lock": None,
            "templates": [],
            "values": values,
            "schema": None,
            "files": [],
        },
        "config": values,
        "manifest": manifest,
        "hooks": [],
        "version": revision,
        "namespace": namespace,
    }


def previous_version(version: str, steps: int) -> str:
    """A plausible older semantic version (patch, then minor, then major goes down)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    parts += [0] * (3 - len(parts))
    for _ in range(steps):
        if parts[2] > 0:
            parts[2] -= 1
        elif parts[1] > 0:
            parts[1] -= 1
        else:
            parts[0] = max(0, parts[0] - 1)
    return ".".join(map(str, parts))
