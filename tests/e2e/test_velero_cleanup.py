"""A Velero drill killed mid-way leaves its namespace, volumes, backup and snapshots; `opsbook cleanup`
finds them by their ownership labels/tags and removes them, and nothing else.

The drill runs in a subprocess that kills itself (SIGKILL: no cleanup, no atexit) right after
the restore, as a dead kernel would; the sweeper runs through the `opsbook` command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from kubernetes import client
from opsbook.clients import Env, new_run_id
from opsbook.drills.sweeper import plan_cleanup

from tests.e2e.helpers import ROOT, opsbook

DIE_AFTER_RESTORE = textwrap.dedent("""
    import json, os, signal, sys
    import opsbook
    from opsbook.drills.velero import VeleroRestoreDrill

    ctx = opsbook.open_env("sandbox", run_id=sys.argv[1])
    drill = VeleroRestoreDrill(ctx, namespace="billing")
    for step in ("preflight", "canary", "backup", "verify_backup", "restore"):
        getattr(drill, step)()
    print(json.dumps({"target": drill.target, "backup": drill.backup_name, "restore": drill.names["restore"]}),
          flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def inventory(env: Env) -> dict[str, set[str]]:
    core, custom = client.CoreV1Api(env.kube), client.CustomObjectsApi(env.kube)
    ec2 = env.aws("ec2")
    ns = env.params.velero.namespace
    return {
        "namespaces": {n.metadata.name for n in core.list_namespace().items},
        "pvs": {p.metadata.name for p in core.list_persistent_volume().items},
        "volumes": {v["VolumeId"] for page in ec2.get_paginator("describe_volumes").paginate() for v in page["Volumes"]},
        "snapshots": {s["SnapshotId"] for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
                      for s in page["Snapshots"]},
        "backups": {b["metadata"]["name"] for b in custom.list_namespaced_custom_object("velero.io", "v1", ns, "backups")["items"]},
        "restores": {r["metadata"]["name"] for r in custom.list_namespaced_custom_object("velero.io", "v1", ns, "restores")["items"]},
    }


@pytest.fixture()
def env(sandbox, sandbox_params) -> Env:
    return Env(params=sandbox_params, run_id=new_run_id())


def test_cleanup_removes_what_a_dead_drill_left_and_nothing_else(env: Env) -> None:
    before = inventory(env)
    run = subprocess.run([sys.executable, "-c", DIE_AFTER_RESTORE, env.run_id], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == -9, run.stderr[-3000:]
    names = json.loads(run.stdout.strip().splitlines()[-1])
    left = inventory(env)
    added = {k: left[k] - before[k] for k in left}
    assert added["namespaces"] == {names["target"]}
    assert added["backups"] == {names["backup"]} and added["restores"] == {names["restore"]}
    assert len(added["volumes"]) == 1 and len(added["pvs"]) == 1 and len(added["snapshots"]) == 1

    # the plan lists them by their ownership, and deletes nothing without --apply
    plan = plan_cleanup(env, "0s").table()
    mine = set(plan[plan["current"].str.contains(env.run_id)]["resource"])
    assert mine == {names["target"], names["backup"], names["restore"], *added["volumes"], *added["snapshots"]}
    out = opsbook("cleanup", "--env", "sandbox", "--older-than", "0s")
    assert out.returncode == 0, out.stderr
    assert inventory(env) == left

    doomed = plan[plan["action"] == "delete"]["resource"].tolist()
    out = opsbook("cleanup", "--env", "sandbox", "--older-than", "0s", "--apply", "--confirm", ",".join(doomed))
    assert out.returncode == 0, out.stdout + out.stderr
    after = inventory(env)
    for kind, items in added.items():
        assert not items & after[kind], f"{kind} left behind: {items & after[kind]}"
    for kind, items in before.items():
        assert items <= after[kind], f"cleanup removed {kind} it did not make: {items - after[kind]}"
    # and the sweeper finds nothing of this run any more
    assert not plan_cleanup(env, "0s").table()["current"].str.contains(env.run_id).any()
