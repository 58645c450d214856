"""Velero's object-store formats, shared by the drills and the sandbox's Velero emulator (neither owns them).

Object-store keys, tarball paths, the backup format version and the per-backup records,
each as Velero v1.18.1 defines them (source files named below), so that the drill and
its twin cannot quietly agree on a layout of their own; `tests/unit/test_velero_formats.py`
pins them to literal examples from Velero's own tests. Schedules and durations are in
`opsbook.formats.velero_schedule`.

## Where Velero keeps a backup (`pkg/persistence/object_store_layout.go`, `object_store.go`)

Under the BackupStorageLocation's bucket and optional prefix, `backups/<name>/` holds what
`PutBackup` writes:

- `velero-backup.json`                  the Backup object (plain JSON, not gzipped),
- `<name>.tar.gz`                       the manifests: `resources/<group-resource>/namespaces/<ns>/<name>.json`
                                        (cluster-scoped ones under `cluster/`), the same again under
                                        `<version>-preferredversion/`, and `metadata/version` ("1.1.0\\n"),
- `<name>-logs.gz`                      the backup log,
- `<name>-podvolumebackups.json.gz`, `<name>-volumesnapshots.json.gz` (the native snapshots),
  `<name>-itemoperations.json.gz`, `<name>-resource-list.json.gz`, `<name>-results.gz`,
  `<name>-volumeinfo.json.gz` (what happened to each PV: snapshotted, or skipped and why).

v1.18 writes no `-csi-volumesnapshots`, `-csi-volumesnapshotcontents` or
`-csi-volumesnapshotclasses` files (removed in v1.17 and v1.18); their keys remain for
reading older backups (`Layout.legacy_csi_files`).

`restores/<name>/` holds `restore-<name>-logs.gz`, `restore-<name>-results.gz`,
`restore-<name>-resource-list.json.gz`, `restore-<name>-itemoperations.json.gz` and
`<name>-volumeinfo.json.gz` (that one without the `restore-` prefix).

The `*.json.gz` files are gzip of Go's `json.Encoder` output: compact, with a newline.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = "1.1.0"  # pkg/backup/backup.go BackupFormatVersion
VERSION_FILE = "metadata/version"
VERSION_FILE_CONTENT = f"{FORMAT_VERSION}\n"  # writeBackupVersion: fmt.Sprintf("%s\n", BackupFormatVersion)


@dataclass(frozen=True)
class Layout:
    """Keys of one backup storage location (bucket prefix may be empty)."""

    prefix: str = ""

    def _root(self, sub: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{sub}/" if prefix else f"{sub}/"

    def backup_dir(self, backup: str) -> str:
        return f"{self._root('backups')}{backup}/"

    def restore_dir(self, restore: str) -> str:
        return f"{self._root('restores')}{restore}/"

    def _backup_file(self, backup: str, suffix: str) -> str:
        return f"{self.backup_dir(backup)}{backup}{suffix}"

    def backup_metadata(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}velero-backup.json"

    def backup_contents(self, backup: str) -> str:
        return self._backup_file(backup, ".tar.gz")

    def backup_log(self, backup: str) -> str:
        return self._backup_file(backup, "-logs.gz")

    def backup_resource_list(self, backup: str) -> str:
        return self._backup_file(backup, "-resource-list.json.gz")

    def backup_volume_snapshots(self, backup: str) -> str:
        return self._backup_file(backup, "-volumesnapshots.json.gz")

    def backup_results(self, backup: str) -> str:
        return self._backup_file(backup, "-results.gz")

    def backup_item_operations(self, backup: str) -> str:
        return self._backup_file(backup, "-itemoperations.json.gz")

    def backup_pod_volume_backups(self, backup: str) -> str:
        return self._backup_file(backup, "-podvolumebackups.json.gz")

    def backup_volume_info(self, backup: str) -> str:
        return self._backup_file(backup, "-volumeinfo.json.gz")

    def restore_log(self, restore: str) -> str:
        return f"{self.restore_dir(restore)}restore-{restore}-logs.gz"

    def restore_results(self, restore: str) -> str:
        return f"{self.restore_dir(restore)}restore-{restore}-results.gz"

    def restore_resource_list(self, restore: str) -> str:
        return f"{self.restore_dir(restore)}restore-{restore}-resource-list.json.gz"

    def restore_item_operations(self, restore: str) -> str:
        return f"{self.restore_dir(restore)}restore-{restore}-itemoperations.json.gz"

    def restore_volume_info(self, restore: str) -> str:
        return f"{self.restore_dir(restore)}{restore}-volumeinfo.json.gz"  # getRestoreVolumeInfoKey: no "restore-"

    def backup_files(self, backup: str) -> dict[str, str]:
        """Every file Velero v1.18 writes for a backup (`PutBackup`), by what it holds."""
        return {
            "metadata": self.backup_metadata(backup),
            "contents": self.backup_contents(backup),
            "log": self.backup_log(backup),
            "pod volume backups": self.backup_pod_volume_backups(backup),
            "volume snapshots": self.backup_volume_snapshots(backup),
            "item operations": self.backup_item_operations(backup),
            "resource list": self.backup_resource_list(backup),
            "results": self.backup_results(backup),
            "volume info": self.backup_volume_info(backup),
        }

    def legacy_csi_files(self, backup: str) -> dict[str, str]:
        """The CSI files Velero before v1.17 wrote (v1.18 only reads them, for older backups)."""
        return {f"csi {what}": self._backup_file(backup, f"-csi-{what}.json.gz")
                for what in ("volumesnapshots", "volumesnapshotcontents", "volumesnapshotclasses")}


# --- the tarball's paths -------------------------------------------------------------------


def group_resource(api_version: str, plural: str) -> str:
    """`persistentvolumeclaims`, `statefulsets.apps`, `backups.velero.io` (GroupResource.String())."""
    group = api_version.rpartition("/")[0]
    return f"{plural}.{group}" if group else plural


def item_paths(group_res: str, version: str, namespace: str | None, name: str) -> list[str]:
    """The tar entries of one item: the classic path and the preferred-version copy (format 1.1)."""
    scope = f"namespaces/{namespace}" if namespace else "cluster"
    return [f"resources/{group_res}/{scope}/{name}.json",
            f"resources/{group_res}/{version}-preferredversion/{scope}/{name}.json"]


@dataclass(frozen=True)
class TarItem:
    group_resource: str
    namespace: str | None
    name: str
    obj: dict[str, Any]


def read_tarball(data: bytes) -> tuple[str, list[TarItem]]:
    """The format version and the items (classic paths only) of a backup tarball."""
    items, version = [], ""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            raw = tar.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == VERSION_FILE:
                version = raw.decode().strip()
                continue
            parts = member.name.split("/")
            if parts[0] != "resources" or not parts[-1].endswith(".json"):
                continue
            # resources/<gr>/namespaces/<ns>/<name>.json or resources/<gr>/cluster/<name>.json
            if len(parts) == 5 and parts[2] == "namespaces":
                items.append(TarItem(parts[1], parts[3], parts[4][:-5], json.loads(raw)))
            elif len(parts) == 4 and parts[2] == "cluster":
                items.append(TarItem(parts[1], None, parts[3][:-5], json.loads(raw)))
    return version, items


def gunzip_json(data: bytes) -> Any:
    return json.loads(gzip.decompress(data))


def gzip_json(value: Any) -> bytes:
    """What Velero's `encode.ToJSONGzip` writes: compact JSON and a newline (Go's json.Encoder), gzipped."""
    return gzip.compress((json.dumps(value, separators=(",", ":")) + "\n").encode())


# --- the records of a backup ---------------------------------------------------------------

# `<backup>-volumesnapshots.json.gz`: a list of volume.Snapshot (internal/volume/native_snapshot.go),
# {"spec": {"backupName", "backupUID", "location", "persistentVolumeName", "providerVolumeID",
# "volumeType", "volumeAZ", "volumeIOPS"}, "status": {"providerSnapshotID", "phase"}}, or `null`
# when the backup took none. Velero marks a snapshot Completed as soon as CreateSnapshot returns
# (pkg/backup/item_backupper.go takePVSnapshot): the EBS snapshot itself may still be pending.
SNAPSHOT_COMPLETED, SNAPSHOT_FAILED = "Completed", "Failed"


def snapshot_pv_name(snapshot: dict[str, Any]) -> str:
    """A volumesnapshots.json entry's PV name (`spec.persistentVolumeName`)."""
    return (snapshot.get("spec") or {}).get("persistentVolumeName") or ""


# `<backup>-volumeinfo.json.gz`: a list of BackupVolumeInfo (internal/volume/volumes_information.go),
# one per PV: how its data was backed up (`backupMethod`), or `skipped` with `skippedReason`.
NATIVE_SNAPSHOT, CSI_SNAPSHOT, POD_VOLUME_BACKUP = "NativeSnapshot", "CSISnapshot", "PodVolumeBackup"
# the reasons pkg/backup/item_backupper.go records for a PV it did not snapshot
SKIPPED_NO_SNAPSHOTTER = "no applicable volumesnapshotter found"
SKIPPED_BY_POLICY = "not satisfy the criteria for VolumePolicy or the legacy snapshot way"


@dataclass(frozen=True)
class VolumeInfo:
    """One entry of `<backup>-volumeinfo.json.gz`, as far as a drill needs it."""

    pv: str
    pvc_namespace: str
    pvc: str
    method: str  # NativeSnapshot, CSISnapshot, PodVolumeBackup, or "" when skipped
    skipped: bool
    skipped_reason: str
    result: str  # "succeeded" / "failed" ("" when skipped)
    snapshot_handle: str

    @classmethod
    def of(cls, entry: dict[str, Any]) -> VolumeInfo:
        info = entry.get("nativeSnapshotInfo") or entry.get("csiSnapshotInfo") or {}
        return cls(entry.get("pvName", ""), entry.get("pvcNamespace", ""), entry.get("pvcName", ""),
                   entry.get("backupMethod", ""), bool(entry.get("skipped")), entry.get("skippedReason", ""),
                   entry.get("result", ""), info.get("snapshotHandle", ""))


# `<backup>-results.gz`: {"errors": Result, "warnings": Result}, Result = {"velero": [...],
# "cluster": [...], "namespaces": {ns: [...]}} with empty parts left out (pkg/util/results/result.go).
# Each message is built by pkg/util/logging/log_counter_hook.go from the log entry's fields.
MISSING_NAMESPACE = "fail to get the namespace {} specified in backup.Spec.IncludedNamespaces"


def result_message(message: str, resource: str = "", name: str = "", error: str = "") -> str:
    """A results entry as Velero's LogHook writes it: ` resource: /r name: /n message: /m error: /e`."""
    text = f" resource: /{resource}" if resource else ""
    text += f" name: /{name}" if name else ""
    text += f" message: /{message}"
    return text + (f" error: /{error}" if error else "")
