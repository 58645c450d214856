"""EBS snapshot progress: AWS keeps a new snapshot `pending` for minutes; moto completes it at once.

Velero marks a native snapshot Completed as soon as the AWS plugin's CreateSnapshot call
returns (pkg/backup/item_backupper.go `takePVSnapshot`; velero-plugin-for-aws
`volume_snapshotter.go` `CreateSnapshot` does not wait), so a Backup is Completed while
its EBS snapshots are still `pending`. moto, the sandbox's EC2 running in this process,
creates every snapshot `completed`; the emulator therefore sets the state through moto's
in-process EC2 backend: `pending` as soon as the snapshot exists, then `completed` (or
`error`, a fault switch of `volumes.py`) a while after the backup completes. moto's
Progress stays "100%" throughout (a fixed property of its model).
"""

from __future__ import annotations

from typing import Any

from opsbook.sandbox.velero.volumes import Snapshot


def _moto_snapshot(owner: str, region: str, snapshot_id: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[owner][region].snapshots.get(snapshot_id)


def hold(region: str, snap: Snapshot) -> None:
    """The snapshot is `pending`, as a new EBS snapshot is."""
    found = _moto_snapshot(snap.owner, region, snap.record["status"]["providerSnapshotID"])
    if found is not None:
        found.status = "pending"


def release(region: str, snap: Snapshot) -> None:
    """The snapshot reaches its end state (if it still exists: it may have been deleted while pending)."""
    found = _moto_snapshot(snap.owner, region, snap.record["status"]["providerSnapshotID"])
    if found is not None:
        found.status = snap.ends
