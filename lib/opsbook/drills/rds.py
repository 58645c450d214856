"""RDS MySQL drills: snapshot restore, point-in-time restore, Multi-AZ failover.

Each drill is an object whose methods are the runbook's steps (one notebook cell each),
built on `opsbook.drills.framework.Drill`: steps are timed, checks decide the verdict,
and every resource is tagged `opsbook:run-id` / `opsbook:purpose=drill` from the call
that creates it, with its cleanup registered before that call.

- Snapshot restore: RTO = snapshot + restore + verify; RPO = the snapshot's start minus
  the last canary write the restored data contains (both on the database server's clock).
- Point-in-time restore: the restore time must lie in the instance's restorable window
  (checked before any change); canary rows written before it must be in the restored
  data and rows written after it must not. RTO = restore + verify; RPO = restore time
  minus the last canary write the restored data contains.
- Failover: reboot with ForceFailover while a probe runs `SELECT 1` every second; RTO =
  downtime (first failed query to the first success after the last failure); RPO = 0
  when the canary written before the failover is still there afterwards.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from opsbook.dataplane import mysql
from opsbook.drills import rds_api
from opsbook.drills.framework import PURPOSE, Drill, require_approval, utcnow
from opsbook.drills.rds_api import Waiting
from opsbook.errors import OpsbookError, UsageError
from opsbook.guard import aws_tags, ownership_tags

# canary rows within this distance of a restore point are not judged (commit vs stamp time)
BOUNDARY_S = 1.0


def drill_name(source: str, kind: str, run_id: str) -> str:
    """A valid RDS identifier for a drill resource: <source>-<kind>-<run id>."""
    run = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-") or "run"
    name = re.sub(r"-+", "-", f"{source}-{kind}-{run}")[:63].rstrip("-")
    return name


def parse_time(value: str) -> datetime:
    """An ISO 8601 time; without a zone it is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"restore_time: expected an ISO 8601 time such as 2024-05-01T12:30:00Z, got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def target_instance(params: Any, instance: str = "", needs_backups: bool = True) -> Any:
    """The rds[] instance named, or else the first of params a drill can run on: Multi-AZ, with
    backups when it needs them (what its preflight checks)."""
    if instance:
        return params.rds_instance(instance)  # ParamsError naming the known ones
    wanted = "Multi-AZ with backups" if needs_backups else "Multi-AZ"
    for candidate in params.rds:
        if candidate.multi_az and (candidate.backup_retention_days > 0 or not needs_backups):
            return candidate
    raise UsageError(f"no rds[] instance in {params.source} is {wanted}: the drill has no default target",
                     remedy="name one with -p instance=<identifier> (its preflight says what it lacks)")


class RdsDrill(Drill):
    """What the three RDS drills share: the source, its preflight, canary and tagging."""

    kind = "drill"
    needs_backups = True  # the default target must have backups (the failover drill does not need them)

    def __init__(self, name: str, env: Any, instance: str = "", tables: list[str] | None = None,
                 poll_seconds: float = 5, timeout_minutes: float = 60, approval: str = "") -> None:
        if poll_seconds <= 0 or timeout_minutes <= 0:
            raise UsageError(f"poll_seconds and timeout_minutes must be > 0, got {poll_seconds} and {timeout_minutes}")
        self.source = target_instance(env.params, instance, self.needs_backups)
        self.tables = list(tables) if tables else list(self.source.tables)
        self.approval = approval
        self.waiting = Waiting(timeout_s=timeout_minutes * 60, delay_s=poll_seconds, max_delay_s=max(poll_seconds, 60))
        super().__init__(name, env)
        self.rds = env.aws("rds")
        self.described: dict[str, Any] = {}
        self.canaries: list[mysql.CanaryRow] = []
        self.facts["source"] = self.source.identifier

    @property
    def source_target(self) -> mysql.Target:
        return mysql.target_for(self.env, self.source, self.described)

    def tags(self) -> list[dict[str, str]]:
        tags = ownership_tags(self.env.run_id, PURPOSE, created_at=_iso(utcnow()))
        tags.update({"opsbook:drill": self.name, "opsbook:source": self.source.identifier})
        return aws_tags(tags)

    def _preflight_source(self, need_backups: bool = True) -> None:
        require_approval(self.env, self.approval, f"the {self.name} drill")
        described = rds_api.describe_instance(self.rds, self.source.identifier)
        if described is None:
            raise OpsbookError(f"source DB instance {self.source.identifier} does not exist in "
                               f"{self.env.params.region}",
                               remedy=f"check rds[].identifier in {self.env.params.source}")
        self.described = described
        self.check("source available", described["DBInstanceStatus"] == "available",
                   f"status is {described['DBInstanceStatus']}")
        self.check("source Multi-AZ", bool(described.get("MultiAZ")), f"MultiAZ={described.get('MultiAZ')}")
        if need_backups:
            days = described.get("BackupRetentionPeriod") or 0
            self.check("backups enabled", days > 0, f"backup retention {days} days")

    def _no_leftover(self, *names: str) -> None:
        for name in names:
            exists = (rds_api.describe_instance(self.rds, name) or rds_api.describe_snapshot(self.rds, name)) is not None
            self.check(f"no {name} yet", not exists,
                       "already exists: this run id was used before; start a new run" if exists else "free")

    def _stop_on_failed_checks(self) -> pd.DataFrame:
        failed = [c for c in self.checks if not c.ok]
        if failed:
            raise OpsbookError("preflight failed, nothing was changed: "
                               + "; ".join(f"{c.name}: {c.detail}" for c in failed))
        return self.checks_table()

    def write_canary(self, label: str = "canary") -> pd.DataFrame:
        """Step: a row carrying the run id and the server's time, in the source's canary table."""
        with self.step(f"canary {label}".strip() if label != "canary" else "canary"):
            row = mysql.write_canary(self.source_target, self.env.run_id, self.name, label)
            self.canaries.append(row)
            self.facts.setdefault("canaries", []).append({"id": row.id, "label": label, "written_at": _iso(row.written_at)})
        return pd.DataFrame([{"id": row.id, "run_id": row.run_id, "label": label, "written_at": row.written_at}])

    def _restored_target(self, identifier: str) -> mysql.Target:
        described = rds_api.describe_instance(self.rds, identifier)
        if described is None:
            raise OpsbookError(f"restored instance {identifier} is gone")
        return mysql.target_for(self.env, self.source, described)

    def _delete_instance_action(self, identifier: str):
        return lambda: rds_api.delete_instance(self.rds, identifier)

    def _restore_kwargs(self, identifier: str) -> dict[str, Any]:
        """The restored copy lands in the source's subnet group and security groups, private, tagged."""
        kwargs: dict[str, Any] = {
            "DBInstanceClass": self.described["DBInstanceClass"],
            "PubliclyAccessible": False,
            "MultiAZ": False,
            "DeletionProtection": False,
            "Tags": self.tags(),
        }
        group = (self.described.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
        if group:
            kwargs["DBSubnetGroupName"] = group
        sgs = [g["VpcSecurityGroupId"] for g in self.described.get("VpcSecurityGroups") or []]
        if sgs:
            kwargs["VpcSecurityGroupIds"] = sgs
        return kwargs

    def teardown(self) -> pd.DataFrame:
        """Step: run the drill's cleanups (restored instance without final snapshot, our
        snapshot unless kept); a cleanup that failed fails the step."""
        with self.step("teardown"):
            self.run_cleanup()
            if any(not c.done for c in self.cleanups):
                raise OpsbookError(self.cleanup_status(), remedy=self.cleanup_remedy())
        return self.cleanup_table()


# --- snapshot restore ----------------------------------------------------------------------


class SnapshotRestoreDrill(RdsDrill):
    """Manual snapshot -> restore to a new instance -> verify data -> teardown."""

    rto_steps = ("snapshot", "restore", "verify")

    def __init__(self, env: Any, instance: str = "", tables: list[str] | None = None, keep_snapshot: bool = False,
                 snapshot_id: str = "", poll_seconds: float = 5, timeout_minutes: float = 60,
                 approval: str = "") -> None:
        super().__init__("rds-snapshot-restore", env, instance, tables, poll_seconds, timeout_minutes, approval)
        self.keep_snapshot = keep_snapshot
        self.existing_snapshot = snapshot_id.strip()
        self.snapshot_id = self.existing_snapshot or drill_name(self.source.identifier, "drill", env.run_id)
        self.restored_id = drill_name(self.source.identifier, "restore", env.run_id)
        self.source_fp: list[dict[str, mysql.TableFingerprint]] = []
        self.snapshot_started_at: datetime | None = None
        self.facts.update(snapshot=self.snapshot_id, restored=self.restored_id)

    def preflight(self) -> pd.DataFrame:
        """Step: source exists, Multi-AZ, backups on; this run's drill resources do not exist yet."""
        with self.step("preflight"):
            self._preflight_source()
            names = [self.restored_id] if self.existing_snapshot else [self.restored_id, self.snapshot_id]
            self._no_leftover(*names)
            if self.existing_snapshot:
                snap = rds_api.describe_snapshot(self.rds, self.existing_snapshot)
                ok = snap is not None and snap.get("DBInstanceIdentifier") == self.source.identifier
                self.check("given snapshot", ok, f"{self.existing_snapshot}: " + (
                    "not found" if snap is None else f"of {snap.get('DBInstanceIdentifier')}, {snap.get('Status')}"))
            return self._stop_on_failed_checks()

    def snapshot(self) -> pd.DataFrame:
        """Step: a tagged manual snapshot, waited on; the source's tables fingerprinted around it."""
        with self.step("snapshot"):
            target = self.source_target
            if self.existing_snapshot:
                # the source's state at an older snapshot is unknown: compare with now
                self.source_fp = [mysql.fingerprint(target, self.tables)]
                snap = rds_api.wait_snapshot(self.rds, self.snapshot_id, self.waiting)
                self.snapshot_started_at = snap.get("SnapshotCreateTime")
            else:
                self.source_fp = [mysql.fingerprint(target, self.tables)]
                self.snapshot_started_at = mysql.server_now(target)
                item = self.on_cleanup(f"delete DB snapshot {self.snapshot_id}",
                                       lambda: rds_api.delete_snapshot(self.rds, self.snapshot_id))
                self.rds.create_db_snapshot(DBSnapshotIdentifier=self.snapshot_id,
                                            DBInstanceIdentifier=self.source.identifier, Tags=self.tags())
                # writes racing the snapshot: the restored data may match the state before or after it
                self.source_fp.append(mysql.fingerprint(target, self.tables))
                snap = rds_api.wait_snapshot(self.rds, self.snapshot_id, self.waiting)
                if self.keep_snapshot:
                    self.forget_cleanup(item)
            self.facts["snapshot_started_at"] = _iso(self.snapshot_started_at)
        return pd.DataFrame([{"snapshot": self.snapshot_id, "status": snap["Status"],
                              "created": snap.get("SnapshotCreateTime"), "kept": self.keep_snapshot or bool(self.existing_snapshot)}])

    def restore(self) -> pd.DataFrame:
        """Step: restore the snapshot to a new private, tagged instance in the source's subnets; wait."""
        with self.step("restore"):
            self.on_cleanup(f"delete DB instance {self.restored_id}", self._delete_instance_action(self.restored_id))
            self.rds.restore_db_instance_from_db_snapshot(
                DBInstanceIdentifier=self.restored_id, DBSnapshotIdentifier=self.snapshot_id,
                **self._restore_kwargs(self.restored_id))
            restored = rds_api.wait_instance(self.rds, self.restored_id, self.waiting)
        return pd.DataFrame([{"instance": self.restored_id, "status": restored["DBInstanceStatus"],
                              "az": restored.get("AvailabilityZone"),
                              "public": restored.get("PubliclyAccessible"),
                              "subnet group": (restored.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")}])

    def verify(self) -> pd.DataFrame:
        """Step: the canary is in the restored data; counts and checksums equal the source's at the snapshot."""
        with self.step("verify"):
            target = self._restored_target(self.restored_id)
            found = {r.id: r for r in mysql.read_canaries(target, run_id=self.env.run_id)}
            mine = [c for c in self.canaries]
            missing = [c.id for c in mine if c.id not in found]
            self.check("canary restored", bool(mine) and not missing,
                       "no canary was written" if not mine else (
                           f"canary row(s) {missing} of run {self.env.run_id} missing from the restored data"
                           if missing else f"{len(mine)} canary row(s) present"))
            restored_fp = mysql.fingerprint(target, self.tables)
            rows = []
            for table in self.tables:
                got = restored_fp[table]
                ok = any(got.same_as(fp[table]) for fp in self.source_fp)
                want = self.source_fp[0][table]
                self.check(f"table {table}", ok,
                           f"rows {got.rows} vs source {want.rows}, checksum {got.checksum} vs {want.checksum}")
                rows.append({"table": table, "source rows": want.rows, "restored rows": got.rows,
                             "source checksum": want.checksum, "restored checksum": got.checksum, "match": ok})
            contained = [found[c.id].written_at for c in mine if c.id in found]
            if contained and self.snapshot_started_at is not None:
                self.rpo_s = round(max(0.0, (self.snapshot_started_at - max(contained)).total_seconds()), 3)
        return pd.DataFrame(rows, columns=["table", "source rows", "restored rows", "source checksum",
                                           "restored checksum", "match"])

# --- point in time -------------------------------------------------------------------------


class PointInTimeDrill(RdsDrill):
    """Canary before -> restore time -> canary after -> PITR restore -> before present, after absent."""

    rto_steps = ("restore", "verify")

    def __init__(self, env: Any, instance: str = "", tables: list[str] | None = None, restore_time: str = "",
                 minutes_ago: float = 0, poll_seconds: float = 5, timeout_minutes: float = 60,
                 approval: str = "") -> None:
        if minutes_ago < 0:
            raise UsageError(f"minutes_ago must be >= 0 (0 = the latest restorable time), got {minutes_ago}")
        super().__init__("rds-pitr", env, instance, tables, poll_seconds, timeout_minutes, approval)
        self.restore_time = parse_time(restore_time) if restore_time.strip() else None
        self.minutes_ago = minutes_ago
        self.restored_id = drill_name(self.source.identifier, "pitr", env.run_id)
        self.target_time: datetime | None = None
        self.facts["restored"] = self.restored_id

    def _window_check(self) -> tuple[datetime, datetime]:
        earliest, latest = rds_api.restore_window(self.rds, self.described)
        self.facts["restorable_window"] = [_iso(earliest), _iso(latest)]
        return earliest, latest

    def _refuse_outside(self, when: datetime, earliest: datetime, latest: datetime) -> None:
        if not earliest <= when <= latest:
            raise UsageError(
                f"restore time {_iso(when)} is outside the restorable window of {self.source.identifier}: "
                f"{_iso(earliest)} to {_iso(latest)} (earliest restorable time to latest restorable time); "
                "nothing was restored", remedy="pick a time inside the window (restore_time or minutes_ago)")

    def preflight(self) -> pd.DataFrame:
        """Step: source exists, Multi-AZ, backups on; an explicit restore time lies in the window."""
        with self.step("preflight"):
            self._preflight_source()
            self._no_leftover(self.restored_id)
            table = self._stop_on_failed_checks()
            earliest, latest = self._window_check()
            if self.restore_time is not None:
                self._refuse_outside(self.restore_time, earliest, latest)
        return table

    def choose_time(self) -> pd.DataFrame:
        """Step: the restore time: given, now minus N minutes, or the latest restorable time after the canary."""
        with self.step("choose time"):
            if self.restore_time is not None:
                self.target_time = self.restore_time
            elif self.minutes_ago > 0:
                self.target_time = utcnow() - timedelta(minutes=self.minutes_ago)
            else:
                # wait until the canary written before is restorable, with a margin on both sides
                last = max(c.written_at for c in self.canaries) if self.canaries else utcnow()
                wanted = last + timedelta(seconds=2 * BOUNDARY_S)
                described = self.waiting.until(
                    f"waiting for the latest restorable time of {self.source.identifier} to pass {_iso(wanted)}",
                    lambda: rds_api.describe_instance(self.rds, self.source.identifier),
                    lambda d: d is not None and rds_api._aware(d["LatestRestorableTime"]) >= wanted)
                self.described = described
                self.target_time = wanted
            self.facts["restore_time"] = self.target_time.isoformat()
        return pd.DataFrame([{"restore time": self.target_time}])

    def write_after(self) -> pd.DataFrame:
        """Step: a canary row written after the restore time (it must not come back)."""
        target = self.source_target
        assert self.target_time is not None, "choose_time() first"
        while mysql.server_now(target) <= self.target_time + timedelta(seconds=2 * BOUNDARY_S):
            time.sleep(0.2)
        return self.write_canary("after")

    def restore(self) -> pd.DataFrame:
        """Step: check the window (no call made if outside), restore to the time, wait until available."""
        assert self.target_time is not None, "choose_time() first"
        with self.step("restore"):
            described = rds_api.describe_instance(self.rds, self.source.identifier)
            if described is not None:
                self.described = described
            earliest, latest = self._window_check()
            self._refuse_outside(self.target_time, earliest, latest)
            self.facts["restore_lag_s"] = round((utcnow() - latest).total_seconds(), 3)
            self.on_cleanup(f"delete DB instance {self.restored_id}", self._delete_instance_action(self.restored_id))
            self.rds.restore_db_instance_to_point_in_time(
                SourceDBInstanceIdentifier=self.source.identifier, TargetDBInstanceIdentifier=self.restored_id,
                RestoreTime=self.target_time, **self._restore_kwargs(self.restored_id))
            restored = rds_api.wait_instance(self.rds, self.restored_id, self.waiting)
        return pd.DataFrame([{"instance": self.restored_id, "status": restored["DBInstanceStatus"],
                              "restore time": self.target_time, "window": self.facts["restorable_window"]}])

    def verify(self) -> pd.DataFrame:
        """Step: canary rows written before the time are restored, rows written after are not."""
        assert self.target_time is not None
        with self.step("verify"):
            since = self.target_time - timedelta(hours=1)
            source_rows = mysql.read_canaries(self.source_target, since=since)
            restored = {r.id for r in mysql.read_canaries(self._restored_target(self.restored_id), since=since)}
            lo = self.target_time - timedelta(seconds=BOUNDARY_S)
            hi = self.target_time + timedelta(seconds=BOUNDARY_S)
            before = [r for r in source_rows if r.written_at <= lo]
            after = [r for r in source_rows if r.written_at > hi]
            missing = [r.id for r in before if r.id not in restored]
            present_after = [r.id for r in after if r.id in restored]
            self.check("rows before the time restored", not missing,
                       f"{len(before) - len(missing)} of {len(before)} present" + (f"; missing ids {missing}" if missing else ""))
            self.check("rows after the time absent", not present_after,
                       f"{len(after)} written after, {len(present_after)} restored"
                       + (f": ids {present_after}" if present_after else ""))
            contained = [r.written_at for r in before if r.id in restored]
            if contained:
                self.rpo_s = round((self.target_time - max(contained)).total_seconds(), 3)
            rows = [{"id": r.id, "run_id": r.run_id, "label": r.label, "written_at": r.written_at,
                     "side": "before" if r.written_at <= lo else ("after" if r.written_at > hi else "boundary"),
                     "restored": r.id in restored} for r in source_rows]
        return pd.DataFrame(rows, columns=["id", "run_id", "label", "written_at", "side", "restored"])

# --- failover ------------------------------------------------------------------------------


class FailoverDrill(RdsDrill):
    """Probe every second -> reboot with ForceFailover -> downtime, AZ before/after, canary kept."""

    needs_backups = False

    def __init__(self, env: Any, instance: str = "", probe_interval_s: float = 1.0, observe_s: float = 5.0,
                 poll_seconds: float = 5, timeout_minutes: float = 30, approval: str = "") -> None:
        if probe_interval_s <= 0 or observe_s < 0:
            raise UsageError(f"probe_interval_s must be > 0 and observe_s >= 0, got {probe_interval_s}, {observe_s}")
        super().__init__("rds-failover", env, instance, None, poll_seconds, timeout_minutes, approval)
        self.probe_interval_s = probe_interval_s
        self.observe_s = observe_s
        self.probe: mysql.Probe | None = None
        self.az_before: str | None = None
        self.az_after: str | None = None

    def preflight(self) -> pd.DataFrame:
        """Step: source exists, available and Multi-AZ (a failover needs a standby); approval in production."""
        with self.step("preflight"):
            self._preflight_source(need_backups=False)
            return self._stop_on_failed_checks()

    def failover(self) -> pd.DataFrame:
        """Step: start the probe, reboot with ForceFailover, wait until available and the probe recovers."""
        with self.step("failover"):
            self.az_before = self.described.get("AvailabilityZone")
            self.probe = mysql.Probe(self.source_target, interval=self.probe_interval_s).start()
            self.on_cleanup("stop the probe", self.probe.stop)
            time.sleep(self.probe_interval_s)  # a baseline sample before the reboot
            rebooted_at = time.time()
            self.rds.reboot_db_instance(DBInstanceIdentifier=self.source.identifier, ForceFailover=True)
            described = rds_api.wait_instance(self.rds, self.source.identifier, self.waiting)
            probe = self.probe
            self.waiting.until(
                "waiting for the probe to succeed again after the failover",
                lambda: probe.recovered(after=rebooted_at) and time.time() - rebooted_at >= self.observe_s,
                bool)
            probe.stop()
            self.described = described
            self.az_after = described.get("AvailabilityZone")
            first, back = probe.outage()
            self.facts.update(az_before=self.az_before, az_after=self.az_after,
                              probes=len(probe.samples), failed_probes=sum(not s.ok for s in probe.samples),
                              outage_start=_iso(datetime.fromtimestamp(first, UTC)) if first else None,
                              outage_end=_iso(datetime.fromtimestamp(back, UTC)) if back else None)
        return self.probe_table()

    def probe_table(self) -> pd.DataFrame:
        samples = self.probe.samples if self.probe else []
        return pd.DataFrame([{"at": datetime.fromtimestamp(s.at, UTC), "ok": s.ok, "error": s.error} for s in samples],
                            columns=["at", "ok", "error"])

    def verify(self) -> pd.DataFrame:
        """Step: the AZ changed, the canary survived (RPO 0), downtime measured."""
        with self.step("verify"):
            assert self.probe is not None, "failover() first"
            self.check("AZ changed", bool(self.az_after) and self.az_after != self.az_before,
                       f"{self.az_before} -> {self.az_after}")
            downtime = self.probe.downtime_s()
            self.check("probe recovered", downtime is not None, f"downtime {downtime}s")
            self.rto_s = downtime
            found = {r.id for r in mysql.read_canaries(self.source_target, run_id=self.env.run_id)}
            kept = bool(self.canaries) and all(c.id in found for c in self.canaries)
            self.check("canary kept", kept, "present after the failover" if kept else "missing after the failover")
            self.rpo_s = 0.0 if kept else None
        return pd.DataFrame([{"AZ before": self.az_before, "AZ after": self.az_after, "downtime (s)": downtime,
                              "failed probes": self.facts.get("failed_probes"), "canary kept": kept}])
