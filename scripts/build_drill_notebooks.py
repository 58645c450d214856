"""Write the drill runbooks and the drill history notebook (no outputs): `python scripts/build_drill_notebooks.py`."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def notebook(path: str, brief: str, parameters: str, *cells: tuple[str, str]) -> None:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_markdown_cell(brief.strip()), new_code_cell(parameters.strip(), metadata={"tags": ["parameters"]})]
    for kind, source in cells:
        nb.cells.append(new_markdown_cell(source.strip()) if kind == "md" else new_code_cell(source.strip()))
    nbformat.validate(nb)
    nbformat.write(nb, ROOT / path)


COMMON_PARAMS = '''
poll_seconds = 2.0  # first delay between status polls (grows 1.5x, capped at 60 s)
timeout_minutes = 60.0  # give up waiting on AWS after this long
approval = ""  # production only: the change ticket approving this drill
'''

CLOSE = ("md", "## Verdict\nRecords the drill's result under `drill` (history and `runs/index.html` read it); "
               "a failed drill fails the run after the result is recorded.")

notebook(
    "runbooks/rds-snapshot-restore-drill.ipynb",
    """
# RDS snapshot restore drill
Proves a manual snapshot of the MySQL database restores with all its data, and measures RTO and RPO against the targets.

- **When to run:** monthly, and after any change to RDS backups, encryption or networking.
- **What it changes:** writes one canary row (run id and time) into `opsbook_drill_canary` of the source database; creates a tagged manual snapshot and a tagged, private instance restored from it; deletes both at the end (the snapshot is kept with `keep_snapshot = True`). The source instance is not modified otherwise.
- **How long:** snapshot plus restore time: 20-40 minutes on AWS, seconds on the sandbox.
- **Rollback:** nothing to roll back. If the run dies, cleanup runs when the kernel shuts down; what a killed kernel left is removed by `runbooks/drill-cleanup` (`opsbook cleanup --env ENV`).
""",
    'env = "sandbox"\ninstance = ""  # empty: the first rds[] instance of params\n'
    'tables = []  # empty: rds[].tables of params\nkeep_snapshot = False\n'
    'snapshot_id = ""  # restore this existing snapshot instead of taking one (it is never deleted)\n' + COMMON_PARAMS,
    ("code", "import opsbook\nfrom opsbook.drills.rds import SnapshotRestoreDrill\n\nctx = opsbook.open_env(env)\n"
             "drill = SnapshotRestoreDrill(ctx, instance=instance, tables=tables, keep_snapshot=keep_snapshot,\n"
             "                             snapshot_id=snapshot_id, poll_seconds=poll_seconds,\n"
             "                             timeout_minutes=timeout_minutes, approval=approval)"),
    ("md", "## Preflight\nThe source instance exists, is available, Multi-AZ and keeps backups; this run's snapshot and "
           "restored instance do not exist yet. Good: every check `True`. A failed check stops here, before any change."),
    ("code", "drill.preflight()"),
    ("md", "## Canary\nWrites a row carrying the run id and the database server's time into the source's canary table, "
           "as the application user (password from the SSM SecureString; never shown). Good: one row."),
    ("code", "drill.write_canary()"),
    ("md", "## Snapshot\nFingerprints the tables (row count and checksum) and takes a tagged manual snapshot, waiting "
           "with backoff until it is `available`."),
    ("code", "drill.snapshot()"),
    ("md", "## Restore\nRestores the snapshot to a new instance in the source's DB subnet group and security groups, not "
           "publicly accessible, tagged with the run id; waits until `available`."),
    ("code", "drill.restore()"),
    ("md", "## Verify\nOn the restored instance: the canary row is there, and every table's row count and checksum equal "
           "the source's at the snapshot. Good: `match` is `True` on every row."),
    ("code", "drill.verify()"),
    ("md", "## Teardown\nDeletes the restored instance without a final snapshot, and the snapshot unless kept. "
           "Good: every cleanup `done`."),
    ("code", "drill.teardown()"),
    ("md", "## Report\nRTO = snapshot + restore + verify; RPO = the snapshot's start minus the last write it contains "
           "(the canary). Both against `targets` of params."),
    ("code", "drill.report()"),
    CLOSE,
    ("code", 'opsbook.record("drill", drill.finish())\ndrill.raise_if_failed()'),
)

notebook(
    "runbooks/rds-pitr-drill.ipynb",
    """
# RDS point-in-time restore drill
Proves the MySQL database restores to a chosen point in time: rows written before it come back, rows written after it do not.

- **When to run:** monthly, and after any change to backup retention or the parameter group.
- **What it changes:** writes canary rows (one before, one after the restore time) into `opsbook_drill_canary` of the source database; creates a tagged, private instance restored to the time and deletes it at the end.
- **How long:** restore time: 20-40 minutes on AWS (plus up to ~5 minutes for the latest restorable time to pass the canary), seconds on the sandbox.
- **Rollback:** nothing to roll back. Leftovers of a killed run: `runbooks/drill-cleanup`. A time outside the restorable window is refused before anything is restored.
""",
    'env = "sandbox"\ninstance = ""  # empty: the first rds[] instance of params\n'
    'restore_time = ""  # ISO time (UTC if no zone); empty: see minutes_ago\n'
    'minutes_ago = 0.0  # > 0: now minus this; 0: the latest restorable time just after the first canary\n' + COMMON_PARAMS,
    ("code", "import opsbook\nfrom opsbook.drills.rds import PointInTimeDrill\n\nctx = opsbook.open_env(env)\n"
             "drill = PointInTimeDrill(ctx, instance=instance, restore_time=restore_time, minutes_ago=minutes_ago,\n"
             "                         poll_seconds=poll_seconds, timeout_minutes=timeout_minutes, approval=approval)"),
    ("md", "## Preflight\nThe source exists, is available, Multi-AZ and keeps backups; an explicit restore time lies in "
           "the restorable window (earliest to latest restorable time). Good: every check `True`."),
    ("code", "drill.preflight()"),
    ("md", "## Canary before\nA canary row written before the restore time: it must come back."),
    ("code", 'drill.write_canary("before")'),
    ("md", "## Restore time\nThe given time, now minus `minutes_ago`, or the latest restorable time once it has passed "
           "the canary."),
    ("code", "drill.choose_time()"),
    ("md", "## Canary after\nA canary row written after the restore time: it must not come back."),
    ("code", "drill.write_after()"),
    ("md", "## Restore\nChecks the window again (no call is made outside it), restores to the time into a new private, "
           "tagged instance in the source's subnet group and security groups, and waits until `available`."),
    ("code", "drill.restore()"),
    ("md", "## Verify\nEvery canary row written up to the time (less one second of tolerance) is restored, none written "
           "after it. Good: `restored` is `True` for `before` rows and `False` for `after` rows."),
    ("code", "drill.verify()"),
    ("md", "## Teardown\nDeletes the restored instance without a final snapshot."),
    ("code", "drill.teardown()"),
    ("md", "## Report\nRTO = restore + verify; RPO = the restore time minus the last write the restored data contains."),
    ("code", "drill.report()"),
    CLOSE,
    ("code", 'opsbook.record("drill", drill.finish())\ndrill.raise_if_failed()'),
)

notebook(
    "runbooks/rds-failover-drill.ipynb",
    """
# RDS Multi-AZ failover drill
Forces a Multi-AZ failover of the MySQL instance and measures the downtime an application sees.

- **When to run:** quarterly, in a quiet hour; in production only with an approved change (`approval`).
- **What it changes:** reboots the source instance with ForceFailover: the standby in another AZ becomes the primary and connections drop for about a minute. Writes one canary row. Creates nothing.
- **How long:** 1-3 minutes on AWS, seconds on the sandbox.
- **Rollback:** none needed (the old primary becomes the standby); to move back to the first AZ, run the drill again.
""",
    'env = "sandbox"\ninstance = ""  # empty: the first rds[] instance of params\n'
    'probe_interval_s = 1.0  # the probe connects and runs SELECT 1 this often\n'
    'observe_s = 5.0  # keep probing at least this long after the reboot\n'
    'poll_seconds = 2.0\ntimeout_minutes = 30.0\napproval = ""  # required in production: the change ticket',
    ("code", "import opsbook\nfrom opsbook.drills.rds import FailoverDrill\n\nctx = opsbook.open_env(env)\n"
             "drill = FailoverDrill(ctx, instance=instance, probe_interval_s=probe_interval_s, observe_s=observe_s,\n"
             "                      poll_seconds=poll_seconds, timeout_minutes=timeout_minutes, approval=approval)"),
    ("md", "## Preflight\nThe instance exists, is available and Multi-AZ (a failover needs a standby); production needs "
           "`approval`. Good: every check `True`."),
    ("code", "drill.preflight()"),
    ("md", "## Canary\nA row written before the failover: it must still be there afterwards (RPO 0)."),
    ("code", "drill.write_canary()"),
    ("md", "## Failover\nStarts the probe (a new connection and `SELECT 1` every second), reboots with ForceFailover, "
           "waits until the instance is `available` and the probe succeeds again. Each row is one probe."),
    ("code", "drill.failover()"),
    ("md", "## Verify\nThe AZ changed to the standby's, the probe recovered, the canary survived. Downtime = first failed "
           "query to the first success after the last failure."),
    ("code", "drill.verify()"),
    ("md", "## Report\nRTO = downtime; RPO = 0 when the canary survived. Against `targets` of params."),
    ("code", "drill.report()"),
    CLOSE,
    ("code", 'opsbook.record("drill", drill.finish())\ndrill.raise_if_failed()'),
)

notebook(
    "runbooks/drill-cleanup.ipynb",
    """
# Drill cleanup
Finds drill resources a dead kernel or a killed run left behind, by their ownership tags only, and deletes them on apply.

- **When to run:** after a drill run died or was killed, or when `opsbook cleanup --env ENV` lists leftovers.
- **What it changes:** with `apply = True` and `confirm` listing every name of the plan (comma-separated), deletes the RDS instances (no final snapshot) and manual snapshots tagged `opsbook:purpose=drill`. Untagged resources are never touched, whatever their name; resources younger than `older_than` are kept (a drill may be running).
- **How long:** a minute.
- **Rollback:** none: deleted drill resources were copies.
""",
    'env = "sandbox"\nolder_than = "2h"  # only resources older than this (2h, 30m, 0s)\n'
    'apply = False\nconfirm = ""  # every resource name to delete, comma-separated, as listed by the plan\n'
    'approval = ""  # production only',
    ("code", "import opsbook\nfrom opsbook.drills.sweeper import sweep\n\nctx = opsbook.open_env(env)"),
    ("md", "## Plan (and apply)\nEvery tagged drill resource: `delete` when older than `older_than`, `no-op` (kept) when "
           "younger. With `apply = True` the deletions run through the guard and show as `deleted`. "
           "Good: an empty table, or every old resource `deleted`."),
    ("code", "cleanup = sweep(ctx, older_than, apply=apply, confirm=confirm, approval=approval)\ncleanup"),
    ("md", "## Record\nThe plan (or what was deleted) goes into the run's results."),
    ("code", 'opsbook.record("cleanup", cleanup)'),
)

notebook(
    "notebooks/drill-history.ipynb",
    """
# Drill history
Every drill's verdict, RTO and RPO over time against the targets, read from the runs' results (and the S3 mirror when given).

- **When to run:** before a DR review or an audit, or after a drill to see the trend.
- **What it changes:** nothing: it reads `runs/<env>/*/*/results.json` (and `s3` when set).
- **How long:** seconds.
- **Rollback:** none needed.
""",
    'env = "sandbox"\ndrill = ""  # empty: every drill; e.g. rds-pitr\nruns_dir = ""  # empty: runs/ of the checkout\n'
    's3 = ""  # e.g. s3://bucket/opsbook-runs: also read the mirror',
    ("code", "import opsbook\nfrom opsbook.drills.history import history_for, plot_history, summary\n\n"
             "ctx = opsbook.open_env(env)"),
    ("md", "## All drill runs\nOne row per run, oldest first: verdict and reason, RTO and RPO with their targets."),
    ("code", "history = history_for(ctx, drill=drill, runs_dir=runs_dir, s3=s3)\nhistory"),
    ("md", "## Per drill\nRuns, passes, the latest verdict, and the latest and worst RTO/RPO in seconds."),
    ("code", "summary(history)"),
    ("md", "## RTO and RPO over time\nEach point is a run (a red cross: it failed); the dashed line is the target. "
           "Points above their line are drills that missed the target."),
    ("code", "plot_history(history);"),
    ("md", "## Conclusion\nA drill whose latest verdict is `fail`, or whose RTO/RPO climbs towards the dashed line, "
           "needs attention before the next incident: read its reason in the first table."),
    ("code", 'opsbook.record("drill_runs", len(history))'),
)
