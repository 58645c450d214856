"""Helm 3 releases as Helm's secrets driver stores them: `sh.helm.release.v1.<name>.v<revision>`.

The Secret's `release` key holds base64(gzip(JSON of the release)); the Kubernetes API
shows Secret data base64-encoded once more. Only metadata is kept: the release's
`config` (user-supplied values) can hold credentials and is dropped on decoding.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from dataclasses import dataclass
from typing import Any

from opsbook.errors import OpsbookError

SECRET_TYPE = "helm.sh/release.v1"
NAME_PREFIX = "sh.helm.release.v1."
_GZIP_MAGIC = b"\x1f\x8b\x08"


@dataclass(frozen=True)
class Release:
    """One revision of a Helm release (no values, no manifest)."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str
    first_deployed: str
    last_deployed: str
    description: str


def decode(secret_data: str) -> dict[str, Any]:
    """The release JSON from a Secret's `release` value (as the API returns it)."""
    try:
        helm_text = base64.b64decode(secret_data, validate=True)
        raw = base64.b64decode(helm_text, validate=True)
        if raw[:3] == _GZIP_MAGIC:  # Helm gzips; very old releases were plain JSON
            raw = gzip.decompress(raw)
        return json.loads(raw)
    except (binascii.Error, OSError, EOFError, ValueError) as exc:
        raise OpsbookError(f"not a Helm 3 release record ({type(exc).__name__}: {exc})") from None


def to_release(data: dict[str, Any]) -> Release:
    info = data.get("info", {})
    meta = data.get("chart", {}).get("metadata", {})
    return Release(
        name=data["name"], namespace=data.get("namespace", ""), revision=int(data.get("version", 0)),
        status=info.get("status", "unknown"), chart=meta.get("name", "?"), chart_version=meta.get("version", "?"),
        app_version=meta.get("appVersion", ""), first_deployed=info.get("first_deployed", ""),
        last_deployed=info.get("last_deployed", ""), description=info.get("description", ""),
    )


def read_releases(api_client: Any) -> list[Release]:
    """Every revision of every release in the cluster, read from Helm's release Secrets."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    core = k8s.CoreV1Api(api_client)
    try:
        secrets = core.list_secret_for_all_namespaces(label_selector="owner=helm").items
    except ApiException as exc:
        raise OpsbookError(f"could not list Helm release secrets: HTTP {exc.status} {exc.reason}",
                           remedy="give the identity list on secrets in all namespaces (helm list -A needs the "
                                  "same)") from None
    releases = []
    for secret in secrets:
        if secret.type != SECRET_TYPE or not secret.metadata.name.startswith(NAME_PREFIX):
            continue
        payload = (secret.data or {}).get("release")
        if not payload:
            continue
        try:
            releases.append(to_release(decode(payload)))
        except OpsbookError as exc:
            where = f"{secret.metadata.namespace}/{secret.metadata.name}"
            raise OpsbookError(f"secret {where}: {exc.message}", remedy=exc.remedy) from None
    return sorted(releases, key=lambda r: (r.namespace, r.name, r.revision))


def current(releases: list[Release]) -> dict[tuple[str, str], Release]:
    """(namespace, name) -> the deployed revision, or the latest when none is deployed."""
    out: dict[tuple[str, str], Release] = {}
    for rel in releases:
        key = (rel.namespace, rel.name)
        have = out.get(key)
        if have is None or (rel.status == "deployed") > (have.status == "deployed") or (
                (rel.status == "deployed") == (have.status == "deployed") and rel.revision > have.revision):
            out[key] = rel
    return out
