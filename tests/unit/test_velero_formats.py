"""Velero's formats (lib/opsbook/formats/velero*.py) pinned to literal examples taken from Velero's and
robfig/cron's own sources and tests, so the drill and the emulator cannot agree on a wrong layout.

Sources (read at tags): vmware-tanzu/velero v1.18.1, robfig/cron v3.0.1.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from datetime import UTC, datetime, timedelta

import pytest
from opsbook.errors import UsageError
from opsbook.formats.velero import (
    VERSION_FILE,
    VERSION_FILE_CONTENT,
    Layout,
    VolumeInfo,
    gzip_json,
    item_paths,
    read_tarball,
    result_message,
    snapshot_pv_name,
)
from opsbook.formats.velero_schedule import CronError, parse, parse_go_duration

# --- the object store: pkg/persistence/object_store_test.go ---------------------------------------


def test_backup_files_are_those_put_backup_writes() -> None:
    # TestPutBackup "normal case" expectedKeys (lines 247-254), plus the results file PutBackup's map also writes
    # (object_store.go 287-294; the test passes no results reader)
    assert sorted(Layout("").backup_files("backup-1").values()) == sorted([
        "backups/backup-1/velero-backup.json",
        "backups/backup-1/backup-1.tar.gz",
        "backups/backup-1/backup-1-logs.gz",
        "backups/backup-1/backup-1-podvolumebackups.json.gz",
        "backups/backup-1/backup-1-volumesnapshots.json.gz",
        "backups/backup-1/backup-1-itemoperations.json.gz",
        "backups/backup-1/backup-1-resource-list.json.gz",
        "backups/backup-1/backup-1-volumeinfo.json.gz",
        "backups/backup-1/backup-1-results.gz",
    ])
    # "normal case with backup store prefix": prefix "prefix-1/"
    assert Layout("prefix-1/").backup_metadata("backup-1") == "prefix-1/backups/backup-1/velero-backup.json"
    assert Layout("prefix-1/").backup_volume_info("backup-1") == "prefix-1/backups/backup-1/backup-1-volumeinfo.json.gz"


def test_v1_18_writes_no_csi_files_but_knows_their_keys() -> None:
    files = Layout("").backup_files("test-backup")
    assert not [k for k in files.values() if "-csi-" in k]
    # TestGetCSIVolumeSnapshotClasses / TestGetCSIVolumeSnapshots (lines 807, 839)
    legacy = Layout("").legacy_csi_files("test-backup")
    assert legacy["csi volumesnapshotclasses"] == "backups/test-backup/test-backup-csi-volumesnapshotclasses.json.gz"
    assert legacy["csi volumesnapshots"] == "backups/test-backup/test-backup-csi-volumesnapshots.json.gz"


def test_download_request_keys() -> None:
    # TestGetDownloadURL, "scheduled backup with prefix" and "restore with prefix" (lines 730-760)
    layout = Layout("velero-backups/")
    name = "my-backup-20170913154901"
    assert layout.backup_contents(name) == f"velero-backups/backups/{name}/{name}.tar.gz"
    assert layout.backup_log(name) == f"velero-backups/backups/{name}/{name}-logs.gz"
    assert layout.backup_volume_snapshots(name) == f"velero-backups/backups/{name}/{name}-volumesnapshots.json.gz"
    assert layout.backup_item_operations(name) == f"velero-backups/backups/{name}/{name}-itemoperations.json.gz"
    assert layout.backup_resource_list(name) == f"velero-backups/backups/{name}/{name}-resource-list.json.gz"
    assert layout.restore_log("my-backup") == "velero-backups/restores/my-backup/restore-my-backup-logs.gz"
    assert layout.restore_results("my-backup") == "velero-backups/restores/my-backup/restore-my-backup-results.gz"
    assert (layout.restore_item_operations("my-backup")
            == "velero-backups/restores/my-backup/restore-my-backup-itemoperations.json.gz")
    assert (layout.restore_resource_list("my-backup")
            == "velero-backups/restores/my-backup/restore-my-backup-resource-list.json.gz")
    # object_store_layout.go getRestoreVolumeInfoKey: no "restore-" prefix
    assert Layout("").restore_volume_info("r1") == "restores/r1/r1-volumeinfo.json.gz"


# --- the tarball: pkg/backup/backup_test.go, backup.go writeBackupVersion -------------------------


def test_item_paths_are_velero_s() -> None:
    assert item_paths("pods", "v1", "foo", "bar") == [
        "resources/pods/namespaces/foo/bar.json", "resources/pods/v1-preferredversion/namespaces/foo/bar.json"]
    assert item_paths("deployments.apps", "v1", "zoo", "raz") == [
        "resources/deployments.apps/namespaces/zoo/raz.json",
        "resources/deployments.apps/v1-preferredversion/namespaces/zoo/raz.json"]
    assert item_paths("persistentvolumes", "v1", None, "bar") == [
        "resources/persistentvolumes/cluster/bar.json", "resources/persistentvolumes/v1-preferredversion/cluster/bar.json"]
    assert (VERSION_FILE, VERSION_FILE_CONTENT) == ("metadata/version", "1.1.0\n")


def test_read_tarball_reads_the_classic_paths() -> None:
    buf = io.BytesIO()
    entries = {
        "metadata/version": b"1.1.0\n",
        "resources/statefulsets.apps/namespaces/rabbitmq/rabbitmq.json": json.dumps({"kind": "StatefulSet"}).encode(),
        "resources/statefulsets.apps/v1-preferredversion/namespaces/rabbitmq/rabbitmq.json": b"{}",
        "resources/persistentvolumes/cluster/pvc-1.json": json.dumps({"kind": "PersistentVolume"}).encode(),
    }
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    version, items = read_tarball(buf.getvalue())
    assert version == "1.1.0"
    assert sorted((i.group_resource, i.namespace, i.name) for i in items) == [
        ("persistentvolumes", None, "pvc-1"), ("statefulsets.apps", "rabbitmq", "rabbitmq")]


# --- the records: internal/volume/native_snapshot.go, volumes_information.go ------------------------


def test_snapshot_record_key_is_the_json_tag() -> None:
    # SnapshotSpec.PersistentVolumeName `json:"persistentVolumeName"`
    record = json.loads('{"spec":{"backupName":"b1","backupUID":"u","location":"default",'
                        '"persistentVolumeName":"pvc-123","providerVolumeID":"vol-0abc","volumeType":"gp3",'
                        '"volumeAZ":"eu-west-1a","volumeIOPS":0},'
                        '"status":{"providerSnapshotID":"snap-0def","phase":"Completed"}}')
    assert snapshot_pv_name(record) == "pvc-123"
    assert snapshot_pv_name({"spec": {"PersistentVolumeName": "pvc-123"}}) == ""  # Go's field name is not a key


def test_volume_info_entries() -> None:
    # BackupVolumeInfo json tags; NativeSnapshotInfo.IOPS is a string, its Phase has no tag
    native = VolumeInfo.of(json.loads(
        '{"pvcName":"data","pvcNamespace":"app","pvName":"pvc-123","backupMethod":"NativeSnapshot",'
        '"snapshotDataMoved":false,"preserveLocalSnapshot":false,"skipped":false,"result":"succeeded",'
        '"nativeSnapshotInfo":{"snapshotHandle":"snap-0def","volumeType":"gp3","volumeAZ":"eu-west-1a",'
        '"iops":"0","Phase":"Completed"},"pvInfo":{"reclaimPolicy":"Delete","labels":{}}}'))
    assert (native.pv, native.pvc_namespace, native.pvc, native.method, native.result, native.snapshot_handle) == (
        "pvc-123", "app", "data", "NativeSnapshot", "succeeded", "snap-0def")
    skipped = VolumeInfo.of({"pvcName": "data", "pvcNamespace": "app", "pvName": "pv-nfs", "snapshotDataMoved": False,
                             "preserveLocalSnapshot": False, "skipped": True,
                             "skippedReason": "no applicable volumesnapshotter found"})
    assert skipped.skipped and skipped.method == "" and "volumesnapshotter" in skipped.skipped_reason


def test_result_messages_are_the_log_hook_s() -> None:
    # pkg/util/logging/log_counter_hook.go Fire, with item_collector.go's message for a missing namespace
    assert result_message("fail to get the namespace ghost specified in backup.Spec.IncludedNamespaces",
                          resource="namespaces") == (
        " resource: /namespaces message: /fail to get the namespace ghost specified in "
        "backup.Spec.IncludedNamespaces")
    assert result_message("Error backing up item", "persistentvolumes", "pv-1", "boom") == (
        " resource: /persistentvolumes name: /pv-1 message: /Error backing up item error: /boom")


def test_json_gz_is_compact_with_a_newline() -> None:
    # pkg/util/encode/encode.go ToJSONGzip: json.NewEncoder(gzip).Encode(x)
    assert gzip.decompress(gzip_json(None)) == b"null\n"
    assert gzip.decompress(gzip_json({"a": [1, 2]})) == b'{"a":[1,2]}\n'


# --- cron: robfig/cron v3.0.1 parser_test.go and spec_test.go ------------------------------------


def _go(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")


@pytest.mark.parametrize("after, spec, expected", [
    # spec_test.go TestNext, five-field forms (the seconds field dropped; every one is 0 there)
    ("2012-03-11T00:00:00-0500", "TZ=America/New_York 30 2 11 Mar ?", "2013-03-11T02:30:00-0400"),
    ("2012-03-11T01:00:00-0500", "TZ=America/New_York 0 * * * ?", "2012-03-11T03:00:00-0400"),
    ("2012-03-11T01:00:00-0500", "CRON_TZ=America/New_York 0 * * * ?", "2012-03-11T03:00:00-0400"),
    ("2012-03-11T01:00:00-0500", "TZ=America/New_York 0 1 * * ?", "2012-03-12T01:00:00-0400"),
    ("2012-03-11T00:00:00-0500", "TZ=America/New_York 0 2 * * ?", "2012-03-12T02:00:00-0400"),  # 2am skipped
    ("2012-11-04T00:00:00-0400", "TZ=America/New_York 30 2 04 Nov ?", "2012-11-04T02:30:00-0500"),
    ("2012-11-04T01:45:00-0400", "TZ=America/New_York 30 1 04 Nov ?", "2012-11-04T01:30:00-0500"),
    ("2012-11-04T01:00:00-0400", "TZ=America/New_York 0 1 * * ?", "2012-11-04T01:00:00-0500"),  # 1am twice
    ("2012-11-04T01:00:00-0500", "TZ=America/New_York 0 1 * * ?", "2012-11-05T01:00:00-0500"),
    ("2012-11-04T00:00:00-0400", "TZ=America/New_York 0 3 * * ?", "2012-11-04T03:00:00-0500"),
    ("2012-11-04T00:00:00-0400", "TZ=America/New_York 0 3 3 * ?", "2012-12-03T03:00:00-0500"),
    ("2018-10-17T05:00:00-0400", "TZ=America/Sao_Paulo 0 9 10 * ?", "2018-11-10T06:00:00-0500"),  # no midnight
    ("2012-07-09T23:35:00+0000", "0 0 * Feb Mon", "2013-02-04T00:00:00+0000"),
    ("2012-07-09T23:35:00+0000", "0 0 * Feb Mon/2", "2013-02-01T00:00:00+0000"),
    ("2012-07-09T23:35:00+0000", "0 0 29 Feb ?", "2016-02-29T00:00:00+0000"),
    ("2012-07-09T23:35:00+0000", "0 0 */5 Apr,Aug,Oct Mon", "2012-08-01T00:00:00+0000"),
])
def test_next_run_as_robfig(after: str, spec: str, expected: str) -> None:
    assert parse(spec).next_after(_go(after)) == _go(expected)


def test_a_warsaw_schedule_runs_at_3am_warsaw_time() -> None:
    cron = parse("CRON_TZ=Europe/Warsaw 0 3 * * *")
    assert cron.zone_name == "Europe/Warsaw"
    assert cron.next_after(datetime(2025, 1, 10, 12, tzinfo=UTC)) == datetime(2025, 1, 11, 2, tzinfo=UTC)  # CET
    assert cron.next_after(datetime(2025, 7, 10, 12, tzinfo=UTC)) == datetime(2025, 7, 11, 1, tzinfo=UTC)  # CEST
    # the longest gap of the week holding the change to winter time is 25 hours, 24 otherwise
    assert cron.interval(datetime(2025, 10, 22, tzinfo=UTC)) == timedelta(hours=25)
    assert cron.interval(datetime(2025, 1, 10, tzinfo=UTC)) == timedelta(hours=24)
    assert parse("TZ=Europe/Warsaw 0 3 * * *").next_after(datetime(2025, 1, 10, 12, tzinfo=UTC)) == datetime(
        2025, 1, 11, 2, tzinfo=UTC)


@pytest.mark.parametrize("expr, after, expected", [
    ("0 2 * * *", datetime(2025, 3, 1, 1, 0), datetime(2025, 3, 1, 2, 0)),
    ("0 2 * * *", datetime(2025, 3, 1, 2, 0), datetime(2025, 3, 2, 2, 0)),
    ("*/15 * * * *", datetime(2025, 3, 1, 5, 7), datetime(2025, 3, 1, 5, 15)),
    ("30 1 * * 1-5", datetime(2025, 3, 1, 0, 0), datetime(2025, 3, 3, 1, 30)),  # Saturday -> Monday
    ("0 0 1 */3 *", datetime(2025, 2, 10), datetime(2025, 4, 1)),
    ("@daily", datetime(2025, 12, 31, 23, 59), datetime(2026, 1, 1)),
    ("0 12 * * sun", datetime(2025, 3, 1, 13, 0), datetime(2025, 3, 2, 12, 0)),
    ("@every 1h30m", datetime(2025, 3, 1, 13, 0, 0, 500000), datetime(2025, 3, 1, 14, 30)),
])
def test_next_run_in_utc(expr: str, after: datetime, expected: datetime) -> None:
    assert parse(expr).next_after(after.replace(tzinfo=UTC)) == expected.replace(tzinfo=UTC)


def test_a_schedule_that_never_matches_has_no_next_run() -> None:
    # spec_test.go "Unsatisfiable": robfig returns the zero time
    assert parse("0 0 30 Feb ?").next_after(datetime(2012, 7, 9, tzinfo=UTC)) is None
    with pytest.raises(UsageError, match="never runs"):
        parse("0 0 31 Apr ?").interval(datetime(2012, 7, 9, tzinfo=UTC))


@pytest.mark.parametrize("expr, interval", [
    ("0 2 * * *", timedelta(days=1)), ("*/15 * * * *", timedelta(minutes=15)), ("@hourly", timedelta(hours=1)),
    ("0 2 * * 1-5", timedelta(days=3)), ("@every 6h", timedelta(hours=6)), ("0 */4 * * *", timedelta(hours=4)),
])
def test_interval_is_the_longest_gap(expr: str, interval: timedelta) -> None:
    assert parse(expr).interval(datetime(2025, 3, 1, tzinfo=UTC)) == interval


@pytest.mark.parametrize("expr, reason", [
    # parser_test.go TestRange / TestParseScheduleErrors, as robfig words them
    ("0 2 * *", "expected exactly 5 fields, found 4: [0 2 * *]"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),  # robfig's day of week is 0-6
    ("5--5 * * * *", "too many hyphens: 5--5"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("*/-12 * * * *", "negative number (-12) not allowed: -12"),
    ("*//2 * * * *", "too many slashes: *//2"),
    ("5-3 * * * *", "beginning of range (5) beyond end of range (3): 5-3"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("@every Xm", 'failed to parse duration @every Xm: time: invalid duration "Xm"'),
    ("@unrecognized", "unrecognized descriptor: @unrecognized"),
    ("", "empty spec string"),
    ("CRON_TZ=Foo/Bar 0 3 * * *", "provided bad location Foo/Bar: unknown time zone Foo/Bar"),
])
def test_bad_schedules_carry_robfig_s_reason(expr: str, reason: str) -> None:
    with pytest.raises(CronError) as exc:
        parse(expr)
    assert exc.value.reason == reason
    assert "CRON_TZ=" in (exc.value.remedy or "")  # and the usage says what is expected


def test_star_and_step_rules() -> None:
    # parser_test.go: "*/2" is not a star; with dom restricted and dow a star, both must match
    assert parse("0 0 1 * *").dow_star and not parse("0 0 1 * *").dom_star
    assert not parse("0 0 */2 * *").dom_star
    monday_or_first = parse("0 0 1 * mon")  # both restricted: either day
    assert monday_or_first.next_after(datetime(2025, 3, 1, 1, tzinfo=UTC)) == datetime(2025, 3, 3, tzinfo=UTC)


# --- Go durations: time.ParseDuration -----------------------------------------------------------------


def test_go_durations() -> None:
    assert parse_go_duration("72h0m0s") == timedelta(hours=72)
    assert parse_go_duration("1h30m") == timedelta(minutes=90)
    assert parse_go_duration("1.5h") == timedelta(minutes=90)
    assert parse_go_duration("300ms") == timedelta(milliseconds=300)
    assert parse_go_duration("0") == timedelta(0)
    with pytest.raises(UsageError, match='time: unknown unit " days" in duration "3 days"'):
        parse_go_duration("3 days")
    with pytest.raises(UsageError, match='time: invalid duration "h"'):
        parse_go_duration("h")
    with pytest.raises(UsageError, match='time: missing unit in duration "30"'):
        parse_go_duration("30")
    with pytest.raises(UsageError, match='time: unknown unit "d" in duration "3d"'):
        parse_go_duration("3d")
