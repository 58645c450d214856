"""What a Velero drill leaves behind, and `opsbook cleanup` finding it by its ownership labels/tags.

- A drill killed mid-way leaves its namespace, volumes, backup and snapshots; the sweeper
  removes them, and nothing else. The drill runs in a subprocess that kills itself (SIGKILL:
  no cleanup, no atexit) right after the restore, as a dead kernel would.
- A drill whose restored namespace holds an object with a finalizer no controller acts on:
  Velero restores the finalizer with the object, the namespace stays Terminating, teardown
  says what holds it, the sweeper (the `opsbook` command) fails the same way while the
  finalizer is there, and succeeds once it is removed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from opsbook.clients import Env, new_run_id
from opsbook.drills.sweeper import plan_cleanup
from opsbook.drills.velero import VeleroRestoreDrill
from opsbook.drills.velero_api import VeleroApi
from opsbook.errors import OpsbookError

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


HOLD = "opsbook.test/hold"  # a finalizer no controller of the sandbox acts on


def _release(core, namespace: str, name: str) -> None:
    """What the controller owning the finalizer does when it is done: remove it."""
    core.patch_namespaced_config_map(name, namespace, {"metadata": {"finalizers": None}})


def _short_waits(tmp_path: Path, seconds: float) -> Path:
    """The sandbox's params with Velero waits (a namespace to go, among them) given up after `seconds`."""
    path = tmp_path / "sandbox-short-waits.yaml"
    path.write_text(yaml.safe_dump({"extends": str(ROOT / "params/sandbox.yaml"),
                                    "velero": {"timeout_minutes": seconds / 60, "poll_seconds": 0.5}}))
    return path


def _sweep(params: Path, *flags: str) -> subprocess.CompletedProcess:
    return opsbook("cleanup", "--env", str(params), "--older-than", "0s", *flags)


def test_a_namespace_a_finalizer_holds_is_reported_and_swept_once_let_go(env: Env, tmp_path: Path) -> None:
    core = client.CoreV1Api(env.kube)
    held = f"held-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_config_map("billing", {"metadata": {"name": held, "finalizers": [HOLD]}, "data": {"a": "1"}})
    try:
        drill = VeleroRestoreDrill(env, namespace="billing", timeout_minutes=0.5)
        for step in ("preflight", "canary", "backup", "verify_backup", "restore", "verify"):
            getattr(drill, step)()
        assert core.read_namespaced_config_map(held, drill.target).metadata.finalizers == [HOLD]  # Velero keeps it
        with pytest.raises(OpsbookError) as exc:
            drill.teardown()
    finally:
        _release(core, "billing", held)
        core.delete_namespaced_config_map(held, "billing")
    target = drill.target
    message = str(exc.value)
    assert f"namespace {target} is still Terminating after 30s" in message
    assert f"ConfigMap/{held} has finalizers {HOLD}" in message
    assert f"Some content in the namespace has finalizers remaining: {HOLD} in 1 resource instances" in message
    assert drill.finish()["verdict"] == "fail"
    assert core.read_namespace(target).status.phase == "Terminating"
    assert [c.metadata.name for c in core.list_namespaced_config_map(target).items] == [held]  # the rest is gone
    assert VeleroApi(env.kube, env.params.velero.namespace).get("backups", drill.backup_name) is None

    # the sweeper finds the namespace by its labels, and fails the same way while the finalizer holds it
    params = _short_waits(tmp_path, 10)
    plan = plan_cleanup(env, "0s").table()
    assert plan.set_index("resource").loc[target, "current"].startswith(f"Terminating, run {env.run_id}")
    doomed = ",".join(plan[plan["action"] == "delete"]["resource"])
    out = _sweep(params, "--apply", "--confirm", doomed)
    assert out.returncode != 0
    assert f"namespace {target} is still Terminating after 10s" in out.stdout + out.stderr
    assert f"ConfigMap/{held} has finalizers {HOLD}" in out.stdout + out.stderr

    # once the finalizer's controller lets go (here, a second into the sweeper's wait), the sweep succeeds
    plan = plan_cleanup(env, "0s")
    doomed = ",".join(c.resource for c in plan.pending if c.destroys)
    assert target in doomed.split(",")
    releaser = threading.Timer(1.0, _release, (core, target, held))
    releaser.start()
    try:
        done = plan.apply(True, doomed)
    finally:
        releaser.join()
    assert target in {c.resource for c in done}
    assert target not in {n.metadata.name for n in core.list_namespace().items}
    assert not core.list_persistent_volume(label_selector=f"velero.io/restore-name={drill.names['restore']}").items
    assert not plan_cleanup(env, "0s").table()["current"].str.contains(env.run_id).any()
    assert all(item.done for item in drill.run_cleanup())  # and the drill's own cleanup finds it all gone
