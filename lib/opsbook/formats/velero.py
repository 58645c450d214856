"""Velero's formats, shared by the drills and the sandbox's Velero emulator (neither owns them).

Object-store keys and tarball paths, the backup format version, Schedule cron expressions
and Go durations, each as Velero v1.18 defines them (source files named below), so that
the drill and its twin cannot quietly agree on a layout of their own.

## Where Velero keeps a backup in its object store

The keys are Velero's (`pkg/persistence/object_store_layout.go`): under the
BackupStorageLocation's bucket and optional prefix, `backups/<name>/` holds

- `velero-backup.json`                  the Backup object as it ended (plain JSON),
- `<name>.tar.gz`                       the manifests: `resources/<group-resource>/namespaces/<ns>/<name>.json`
                                        (cluster-scoped ones under `cluster/`), the same again under
                                        `<version>-preferredversion/`, and `metadata/version`,
- `<name>-logs.gz`                      the backup log,
- `<name>-resource-list.json.gz`        {"apps/v1/StatefulSet": ["ns/name", ...], ...},
- `<name>-volumesnapshots.json.gz`      the native volume snapshots (spec + status.providerSnapshotID),
- `<name>-results.gz`, `<name>-itemoperations.json.gz`, `<name>-podvolumebackups.json.gz`,
  `<name>-csi-volumesnapshots.json.gz`, `<name>-csi-volumesnapshotcontents.json.gz`,
  `<name>-csi-volumesnapshotclasses.json.gz`, `<name>-volumeinfo.json.gz`;

and `restores/<name>/` holds `restore-<name>-logs.gz`, `restore-<name>-results.gz` and
`restore-<name>-resource-list.json.gz`.

## Schedules

Velero Schedule expressions: five-field cron and the `@daily`/`@every 6h` descriptors.

Velero parses `spec.schedule` with robfig/cron's standard parser (minute, hour, day of
month, month, day of week; `*`, lists, ranges, steps; the `@` descriptors). This module
reads the same forms, in UTC, to tell when a Schedule runs next and how far apart its
runs are (the audit compares that interval with the RPO target).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opsbook.errors import UsageError

FORMAT_VERSION = "1.1.0"
VERSION_FILE = "metadata/version"


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

    def backup_metadata(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}velero-backup.json"

    def backup_contents(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}{backup}.tar.gz"

    def backup_log(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}{backup}-logs.gz"

    def backup_resource_list(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}{backup}-resource-list.json.gz"

    def backup_volume_snapshots(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}{backup}-volumesnapshots.json.gz"

    def backup_results(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}{backup}-results.gz"

    def backup_item_operations(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}{backup}-itemoperations.json.gz"

    def backup_pod_volume_backups(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}{backup}-podvolumebackups.json.gz"

    def backup_csi(self, backup: str, what: str) -> str:
        return f"{self.backup_dir(backup)}{backup}-csi-{what}.json.gz"

    def backup_volume_info(self, backup: str) -> str:
        return f"{self.backup_dir(backup)}{backup}-volumeinfo.json.gz"

    def restore_log(self, restore: str) -> str:
        return f"{self.restore_dir(restore)}restore-{restore}-logs.gz"

    def restore_results(self, restore: str) -> str:
        return f"{self.restore_dir(restore)}restore-{restore}-results.gz"

    def restore_resource_list(self, restore: str) -> str:
        return f"{self.restore_dir(restore)}restore-{restore}-resource-list.json.gz"

    def backup_files(self, backup: str) -> dict[str, str]:
        """Every file Velero writes for a backup, by what it holds."""
        return {
            "metadata": self.backup_metadata(backup),
            "contents": self.backup_contents(backup),
            "log": self.backup_log(backup),
            "resource list": self.backup_resource_list(backup),
            "volume snapshots": self.backup_volume_snapshots(backup),
            "results": self.backup_results(backup),
            "item operations": self.backup_item_operations(backup),
            "pod volume backups": self.backup_pod_volume_backups(backup),
            "csi volume snapshots": self.backup_csi(backup, "volumesnapshots"),
            "csi volume snapshot contents": self.backup_csi(backup, "volumesnapshotcontents"),
            "csi volume snapshot classes": self.backup_csi(backup, "volumesnapshotclasses"),
            "volume info": self.backup_volume_info(backup),
        }



# --- the tarball's paths -------------------------------------------------------------------


def group_resource(api_version: str, plural: str) -> str:
    """`persistentvolumeclaims`, `statefulsets.apps`, `backups.velero.io`."""
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
    return gzip.compress(json.dumps(value).encode())


def snapshot_pv_name(snapshot: dict[str, Any]) -> str:
    """A volumesnapshots.json entry's PV name.

    Velero's `SnapshotSpec.PersistentVolumeName` has a malformed json tag, so Go writes it
    under its field name `PersistentVolumeName`; read either spelling.
    """
    spec = snapshot.get("spec") or {}
    return spec.get("PersistentVolumeName") or spec.get("persistentVolumeName") or ""


# --- Schedules: cron and Go durations --------------------------------------------------

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
_NAMES = {
    3: {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_EVERY = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_go_duration(value: str) -> timedelta:
    """A Go duration such as `72h0m0s`, `30m` or `1h30m`."""
    parts = _DURATION_PART.findall(value or "")
    if not parts or "".join(n + u for n, u in parts) != value:
        raise UsageError(f"expected a duration such as 72h0m0s or 30m, got {value!r}")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))


@dataclass(frozen=True)
class Cron:
    expression: str
    sets: tuple[frozenset[int], ...] | None  # None: an @every schedule
    every: timedelta | None
    dom_any: bool = True
    dow_any: bool = True

    def matches(self, at: datetime) -> bool:
        """True when a run is due in the minute of `at` (five-field schedules)."""
        if self.sets is None:
            raise UsageError(f"{self.expression!r} runs every {self.every}, not at set minutes")
        minute, hour, dom, month, dow = self.sets
        at = at.astimezone(UTC)
        day_dow = (at.weekday() + 1) % 7
        if at.minute not in minute or at.hour not in hour or at.month not in month:
            return False
        # cron's rule: when both day fields are restricted, either may match
        if not self.dom_any and not self.dow_any:
            return at.day in dom or day_dow in dow
        return at.day in dom and day_dow in dow

    def next_after(self, after: datetime) -> datetime:
        """The first run strictly after `after`."""
        after = after.astimezone(UTC)
        if self.every is not None:
            return after + self.every
        at = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = at + timedelta(days=366 * 5)
        while at < limit:
            if self.sets is not None and at.month not in self.sets[3]:
                # jump to the first day of the next month
                at = (at.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if self.matches(at):
                return at
            if self.sets is not None and at.hour not in self.sets[1]:
                at = at.replace(minute=0) + timedelta(hours=1)
                continue
            at += timedelta(minutes=1)
        raise UsageError(f"schedule {self.expression!r} never runs")

    def interval(self, at: datetime | None = None) -> timedelta:
        """The longest gap between consecutive runs over the week after `at` (now by default)."""
        if self.every is not None:
            return self.every
        start = self.next_after(at or datetime.now(UTC))
        gap, run, end = timedelta(0), start, start + timedelta(days=8)
        while run < end:
            nxt = self.next_after(run)
            gap = max(gap, nxt - run)
            run = nxt
        return gap


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    name, lo, hi = _FIELDS[index]
    values: set[int] = set()
    for part in text.lower().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"bad step {step_text!r} in the {name} field")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, index), _value(b, index)
        else:
            start = _value(part, index)
            end = hi if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise ValueError(f"{text!r} is out of range {lo}-{hi} for the {name} field")
        values.update(range(start, end + 1, step))
    return frozenset(values), text in ("*", "?")


def _value(text: str, index: int) -> int:
    if text in _NAMES.get(index, {}):
        return _NAMES[index][text]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number for the {_FIELDS[index][0]} field")
    value = int(text)
    return 0 if index == 4 and value == 7 else value  # Sunday is 0 or 7


def parse(expression: str) -> Cron:
    """A Velero schedule expression; UsageError says what is wrong and what is expected."""
    text = " ".join((expression or "").split())
    if match := _EVERY.match(text):
        return Cron(text, None, parse_go_duration(match.group(1)))
    fields = DESCRIPTORS.get(text, text).split(" ")
    if len(fields) != 5:
        raise UsageError(f"schedule {expression!r}: expected five cron fields (minute hour day-of-month month "
                         "day-of-week), a descriptor such as @daily, or @every <duration>")
    try:
        parsed = [_field(f, i) for i, f in enumerate(fields)]
    except ValueError as exc:
        raise UsageError(f"schedule {expression!r}: {exc}") from None
    return Cron(text, tuple(s for s, _ in parsed), None, dom_any=parsed[2][1], dow_any=parsed[4][1])
