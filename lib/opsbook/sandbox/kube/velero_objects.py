"""The Velero objects of the cluster: where backups go (S3, EBS snapshots) and the daily schedule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opsbook.params import Params
from opsbook.sandbox.kube import catalog


def velero_objects(params: Params, namespace: str, region: str, stamp: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The BackupStorageLocation, VolumeSnapshotLocation and daily Schedule the Velero chart sets up."""
    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "velero"}}

    yield "backupstoragelocations", {
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "metadata": meta(catalog.VELERO_LOCATION),
        "spec": {"provider": "aws", "default": True, "accessMode": "ReadWrite",
                 "objectStorage": {"bucket": params.buckets.velero}, "config": {"region": region}},
        "status": {"phase": "Available", "lastValidationTime": stamp, "lastSyncedTime": stamp},
    }
    yield "volumesnapshotlocations", {
        "apiVersion": "velero.io/v1", "kind": "VolumeSnapshotLocation", "metadata": meta(catalog.VELERO_LOCATION),
        "spec": {"provider": "aws", "config": {"region": region}},
        "status": {"phase": "Available"},
    }
    stateful = [ns.name for ns in params.namespaces if ns.stateful]
    yield "schedules", {
        "apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": meta(catalog.VELERO_SCHEDULE),
        "spec": {
            "schedule": catalog.VELERO_CRON,
            "useOwnerReferencesInBackup": False,
            "template": {
                "includedNamespaces": stateful,
                "ttl": catalog.VELERO_TTL,
                "snapshotVolumes": True,
                "storageLocation": catalog.VELERO_LOCATION,
                "volumeSnapshotLocations": [catalog.VELERO_LOCATION],
            },
        },
        "status": {"phase": "Enabled"},
    }
