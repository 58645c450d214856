"""Velero's `velero.io/v1` objects through the official kubernetes client (CustomObjectsApi).

Bodies are built here and only here, in the shape of Velero's CRDs (the tests validate
them against the vendored contract, `lib/opsbook/contracts/velero/`). `wait()` watches one
object until it reaches a terminal phase or the timeout passes, reporting progress on the way.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException

from opsbook.errors import OpsbookError, UsageError

GROUP, VERSION = "velero.io", "v1"
API_VERSION = f"{GROUP}/{VERSION}"
BACKUP_TERMINAL = ("Completed", "PartiallyFailed", "Failed", "FailedValidation")
RESTORE_TERMINAL = ("Completed", "PartiallyFailed", "Failed", "FailedValidation")
DELETE_TERMINAL = ("Processed",)
BACKUP_NAME_LABEL = "velero.io/backup-name"
BACKUP_UID_LABEL = "velero.io/backup-uid"
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def label_value(value: str) -> str:
    """A value Kubernetes accepts in a label (63 chars of [-A-Za-z0-9_.], alphanumeric at both ends)."""
    cleaned = re.sub(r"[^-A-Za-z0-9_.]+", "-", value)[:63].strip("-_.")
    if not LABEL_VALUE.match(cleaned):
        raise UsageError(f"cannot make a label value of {value!r}")
    return cleaned


@dataclass
class Progress:
    """What a wait saw: every (phase, done, total) change, with the time it was seen."""

    seen: list[dict[str, Any]] = field(default_factory=list)

    def add(self, obj: dict[str, Any], done_key: str) -> bool:
        status = obj.get("status") or {}
        progress = status.get("progress") or {}
        row = {"phase": status.get("phase") or "New", "done": progress.get(done_key),
               "total": progress.get("totalItems")}
        if self.seen and {k: self.seen[-1][k] for k in row} == row:
            return False
        self.seen.append({"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **row})
        return True


class VeleroApi:
    """The Velero objects of one cluster (in the namespace Velero runs in)."""

    def __init__(self, api_client: Any, namespace: str = "velero") -> None:
        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace

    # --- plain verbs -------------------------------------------------------------------------

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _api_error(exc, f"read {plural}/{name}") from None

    def list(self, plural: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        kwargs = {"label_selector": label_selector} if label_selector else {}
        try:
            return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural,
                                                             **kwargs)["items"]
        except ApiException as exc:
            raise _api_error(exc, f"list {plural}") from None

    def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)
        except ApiException as exc:
            raise _api_error(exc, f"create {plural}/{body['metadata'].get('name', '')}") from None

    def delete(self, plural: str, name: str) -> bool:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise _api_error(exc, f"delete {plural}/{name}") from None

    # --- waiting -----------------------------------------------------------------------------

    def wait(self, plural: str, name: str, terminal: tuple[str, ...], timeout_s: float,
             on_change: Callable[[dict[str, Any]], None] | None = None, done_key: str = "itemsBackedUp",
             progress: Progress | None = None, gone_ok: bool = False) -> dict[str, Any] | None:
        """Watch `name` until its phase is terminal; OpsbookError when the time is up, or when it is deleted
        meanwhile (None instead with `gone_ok`: Velero deletes a DeleteBackupRequest once it has done it)."""
        progress = progress if progress is not None else Progress()
        deadline = time.monotonic() + timeout_s
        obj = self.get(plural, name)
        while True:
            if obj is None:
                if gone_ok:
                    return None
                raise OpsbookError(f"{plural[:-1]} {name} disappeared from namespace {self.namespace} while "
                                   "waiting for it to finish")
            if progress.add(obj, done_key) and on_change:
                on_change(obj)
            if (obj.get("status") or {}).get("phase") in terminal:
                return obj
            left = deadline - time.monotonic()
            if left <= 0:
                phase = (obj.get("status") or {}).get("phase") or "New"
                remedy = (f"Velero has not picked it up: check that the velero deployment runs in {self.namespace}"
                          if phase == "New" else
                          "raise timeout_minutes (or params velero.timeout_minutes) if it is still progressing, "
                          f"else see `velero {plural[:-1]} describe {name}` and its logs")
                raise OpsbookError(f"{plural[:-1]} {name} is still {phase} after {timeout_s:.0f}s (timeout)",
                                   remedy=remedy)
            obj = self._next_change(plural, name, obj, min(left, 30.0))

    def _next_change(self, plural: str, name: str, obj: dict[str, Any], seconds: float) -> dict[str, Any] | None:
        rv = obj["metadata"].get("resourceVersion")
        try:
            stream = watch.Watch().stream(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, plural,
                field_selector=f"metadata.name={name}", resource_version=rv,
                timeout_seconds=max(1, int(seconds)))
            for event in stream:
                if event["type"] == "DELETED":
                    return None
                if event["type"] in ("ADDED", "MODIFIED"):
                    return event["object"]
        except ApiException as exc:
            if exc.status != 410:
                raise _api_error(exc, f"watch {plural}/{name}") from None
        return self.get(plural, name)


def _api_error(exc: ApiException, what: str) -> OpsbookError:
    reason = exc.reason
    try:
        reason = json.loads(exc.body or "{}").get("message") or reason
    except (ValueError, AttributeError):
        pass
    remedy = {404: "check that Velero (its CRDs) is installed in the cluster KUBECONFIG points at",
              401: "renew the kubeconfig's credentials (aws eks update-kubeconfig)",
              403: f"give the kubeconfig's identity RBAC to {what.split()[0]} Velero's objects"}.get(exc.status)
    return OpsbookError(f"the Kubernetes API refused to {what}: {exc.status} {reason}", remedy=remedy)


# --- bodies ----------------------------------------------------------------------------------


def backup_body(name: str, namespaces: list[str], labels: dict[str, str], ttl: str, snapshot_volumes: bool = True,
                storage_location: str | None = None, snapshot_location: str | None = None,
                label_selector: dict[str, Any] | None = None) -> dict[str, Any]:
    # includeClusterResources stays unset: the PVs follow their claims, as by Velero's default
    spec: dict[str, Any] = {"includedNamespaces": list(namespaces), "ttl": ttl, "snapshotVolumes": snapshot_volumes}
    if storage_location:
        spec["storageLocation"] = storage_location
    if snapshot_location and snapshot_volumes:
        spec["volumeSnapshotLocations"] = [snapshot_location]
    if label_selector:
        spec["labelSelector"] = label_selector
    return {"apiVersion": API_VERSION, "kind": "Backup",
            "metadata": {"name": name, "labels": dict(labels)}, "spec": spec}


def restore_body(name: str, backup: str, namespace_mapping: dict[str, str], labels: dict[str, str],
                 label_selector: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"backupName": backup, "includedNamespaces": sorted(namespace_mapping),
                            "namespaceMapping": dict(namespace_mapping), "restorePVs": True,
                            "existingResourcePolicy": "none"}
    if label_selector:
        spec["labelSelector"] = label_selector
    return {"apiVersion": API_VERSION, "kind": "Restore",
            "metadata": {"name": name, "labels": dict(labels)}, "spec": spec}


def delete_request_body(backup: dict[str, Any]) -> dict[str, Any]:
    """The DeleteBackupRequest `velero backup delete` creates for a backup."""
    meta = backup["metadata"]
    return {"apiVersion": API_VERSION, "kind": "DeleteBackupRequest",
            "metadata": {"generateName": f"{meta['name']}-",
                         "labels": {BACKUP_NAME_LABEL: label_value(meta["name"]),
                                    BACKUP_UID_LABEL: meta.get("uid", "")}},
            "spec": {"backupName": meta["name"]}}


def pv_volume_id(pv: Any) -> str | None:
    """The EBS volume id behind a PersistentVolume (CSI driver or the legacy in-tree plugin)."""
    if pv.spec.csi and pv.spec.csi.volume_handle:
        return pv.spec.csi.volume_handle
    if pv.spec.aws_elastic_block_store:
        return pv.spec.aws_elastic_block_store.volume_id.rsplit("/", 1)[-1]
    return None


@contextlib.contextmanager
def fresh_discovery(api_client: Any) -> Iterator[Any]:
    """A dynamic client whose discovery is read now, into a cache of its own.

    The client's default cache is a file in /tmp named by the server's host:port, shared with
    every API server that listened there and kept for hours: a kind installed since (a CRD)
    or a different server on a reused port would be looked up in a stale list.
    """
    with tempfile.TemporaryDirectory(prefix="opsbook-discovery-") as folder:
        yield dynamic.DynamicClient(api_client, cache_file=os.path.join(folder, "discovery.json"))
