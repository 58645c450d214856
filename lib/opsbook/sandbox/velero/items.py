"""Which objects a backup holds, and the tarball Velero writes of them.

Velero backs up every discoverable kind it can list, get, create and delete
(pkg/discovery/helper.go), events included (pkg/backup/backup.go's cohabiting `events`);
it leaves out items labelled `velero.io/exclude-from-backup=true` and items being deleted
(pkg/backup/item_backupper.go `itemInclusionChecks`). An included namespace that does not
exist is an error of the backup (pkg/backup/item_collector.go `collectNamespaces`).
What a restore leaves out is the restore's business (`restores.py`).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.rest import ApiException

from opsbook.formats.velero import VERSION_FILE, VERSION_FILE_CONTENT, group_resource, item_paths

# Velero's default restore order (pkg/cmd/server/config/config.go defaultRestorePriorities);
# everything else follows, alphabetically.
RESTORE_PRIORITY = (
    "customresourcedefinitions", "namespaces", "storageclasses.storage.k8s.io", "persistentvolumes",
    "persistentvolumeclaims", "serviceaccounts", "secrets", "configmaps", "limitranges", "pods",
    "replicasets.apps", "endpoints", "services",
)
# A resource is backed up when the API lets Velero list, get, create and delete it.
NEEDED_VERBS = {"list", "get", "create", "delete"}
EXCLUDE_LABEL = "velero.io/exclude-from-backup"


@dataclass
class Item:
    group_resource: str
    api_version: str
    kind: str
    namespace: str | None
    name: str
    obj: dict[str, Any]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def list_key(self) -> str:
        return f"{self.api_version}/{self.kind}"

    @property
    def list_value(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def selector_string(selector: dict[str, Any] | None) -> str | None:
    """A metav1.LabelSelector as the `labelSelector` query string."""
    if not selector:
        return None
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or None


def backup_resources(dyn: Any) -> list[Any]:
    """The namespaced kinds to back up, found through discovery as Velero does."""
    out, seen = [], set()
    for res in dyn.resources.search():
        if not getattr(res, "namespaced", False) or res.kind.endswith("List") or "/" in (res.name or ""):
            continue
        if not NEEDED_VERBS <= set(res.verbs or []):
            continue
        gr = group_resource(res.group_version, res.name)
        if gr in seen:
            continue
        seen.add(gr)
        out.append(res)
    return out


def _as_item(res_api_version: str, kind: str, plural: str, obj: dict[str, Any]) -> Item:
    obj = dict(obj)
    obj.setdefault("apiVersion", res_api_version)
    obj.setdefault("kind", kind)
    meta = obj["metadata"]
    return Item(group_resource(res_api_version, plural), res_api_version, kind, meta.get("namespace"),
                meta["name"], obj)


@dataclass
class Collected:
    """What a backup found: its items, and the included namespaces that do not exist."""

    items: list[Item] = field(default_factory=list)
    missing_namespaces: list[str] = field(default_factory=list)


def _kept(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    return not meta.get("deletionTimestamp") and (meta.get("labels") or {}).get(EXCLUDE_LABEL) != "true"


def _namespace_items(ctx: Any, ns: str, resources: list[Any], label_selector: str | None) -> list[Item]:
    out = []
    for res in resources:
        listed = res.get(namespace=ns, label_selector=label_selector) if label_selector else res.get(namespace=ns)
        out += [_as_item(res.group_version, res.kind, res.name, obj)
                for obj in listed.to_dict().get("items") or [] if _kept(obj)]
    return out


def collect(ctx: Any, namespaces: list[str], label_selector: str | None) -> Collected:
    """Every object of the namespaces (with the namespaces themselves and the PVs their PVCs use)."""
    out = Collected()
    resources = backup_resources(ctx.dyn)
    for ns in namespaces:
        try:
            namespace = ctx.api.sanitize_for_serialization(ctx.core.read_namespace(ns))
        except ApiException as exc:
            if exc.status != 404:
                raise
            out.missing_namespaces.append(ns)
            continue
        if _kept(namespace):
            out.items.append(_as_item("v1", "Namespace", "namespaces", namespace))
        out.items += _namespace_items(ctx, ns, resources, label_selector)
    pv_names = [(i.obj.get("spec") or {}).get("volumeName") for i in out.items
                if i.group_resource == "persistentvolumeclaims"]
    for pv_name in filter(None, pv_names):
        pv = ctx.api.sanitize_for_serialization(ctx.core.read_persistent_volume(pv_name))
        if _kept(pv):
            out.items.append(_as_item("v1", "PersistentVolume", "persistentvolumes", pv))
    return out


def write_tarball(items: list[Item]) -> bytes:
    """The backup tarball: metadata/version, then every item under both of its paths."""
    buf = io.BytesIO()
    mtime = time.time()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o755  # Velero writes every entry 0755
            tar.addfile(info, io.BytesIO(data))

        add(VERSION_FILE, VERSION_FILE_CONTENT.encode())
        for item in items:
            data = json.dumps(item.obj, separators=(",", ":")).encode()  # json.Marshal: compact
            for path in item_paths(item.group_resource, item.version, item.namespace, item.name):
                add(path, data)
    return buf.getvalue()


def resource_list(items: list[Item]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        out.setdefault(item.list_key, []).append(item.list_value)
    return {k: sorted(v) for k, v in sorted(out.items())}


def restore_order(group_res: str) -> tuple[int, str]:
    if group_res in RESTORE_PRIORITY:
        return RESTORE_PRIORITY.index(group_res), group_res
    return len(RESTORE_PRIORITY), group_res
