"""The sandbox's Velero server: a controller on the Kubernetes API emulator doing real work.

It watches Backup, Restore and DeleteBackupRequest objects (and Schedules and
BackupStorageLocations) and does what Velero v1.18 with the AWS plugin does against the
sandbox: the object-store layout written to the BSL's bucket in moto, EBS snapshots of
the PVs' volumes, volumes made from them on restore, the objects restored into the mapped
namespace (the Kubernetes API emulator's controllers then bind the claims and start the
pods, as a cluster's do). The stateful workloads' data (RabbitMQ vhosts, MariaDB databases
on the real local servers) travels with the volumes (`dataplane.py`). It writes through
the API as `velero-server` (its User-Agent, hence its field manager) and records no Events:
Velero v1.18 records none for backups and restores.

The awkward parts of the real one, as its source has them (each module cites its file):
EBS snapshots still `pending` when the Backup is Completed (`pending.py`); PVs no
snapshotter takes skipped without failing the backup (`volumes.py`); an included namespace
that does not exist makes the backup PartiallyFailed (`backups.py`); objects a restore
leaves out: finished pods and Jobs, mirror pods, service-account tokens, events
(`restores.py`); a Schedule's first backup at its first cron time, in its CRON_TZ
(`schedules.py`); DeleteBackupRequests that vanish once processed (`deletion.py`).

Failure modes tests can reach: a BackupStorageLocation whose bucket does not exist becomes
Unavailable and backups to it end FailedValidation; annotations on a PVC or PV fail its
snapshot, keep it pending longer, or end it in `error` (`volumes.py`).
"""

from __future__ import annotations

import logging

from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.services import SERVICES
from opsbook.sandbox.velero.context import Ctx
from opsbook.sandbox.velero.controller import Controller
from opsbook.sandbox.velero.dataplane import DataPlane
from opsbook.sandbox.velero.schedules import submit_missed_runs
from opsbook.sandbox.velero.volumes import ERROR_ANNOTATION, FAULT_ANNOTATION, PENDING_ANNOTATION

__all__ = ["ERROR_ANNOTATION", "FAULT_ANNOTATION", "PENDING_ANNOTATION", "VeleroService"]
log = logging.getLogger(__name__)


@SERVICES.register("velero")
class VeleroService:
    name = "velero"
    needs = ("aws", "kube")

    def __init__(self) -> None:
        self.ctx: Ctx | None = None
        self.controller: Controller | None = None
        self.dataplane: DataPlane | None = None

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        kubeconfig = ctx.env.get("KUBECONFIG") or str(ctx.facts.get("kubeconfig") or "")
        if not kubeconfig:
            raise RuntimeError("the velero emulator needs the kube service started before it (no KUBECONFIG)")
        self.dataplane = DataPlane(ctx.params, ctx.state_dir)
        velero_ns = next((a.namespace for a in ctx.params.eks.addons if a.chart == "velero"),
                         ctx.params.velero.namespace)
        self.ctx = Ctx(ctx.params, dict(ctx.env), kubeconfig, self.dataplane, namespace=velero_ns)
        self.dataplane.start(self.ctx.aws("ssm"))
        self.controller = Controller(self.ctx)
        submit_missed_runs(self.ctx)  # the estate's Schedules ran before today: their last run
        self.controller.settle()  # ... is done before anyone looks
        self.controller.start()
        return {}

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        if self.dataplane is not None:
            self.dataplane.stop()
            self.dataplane = None
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None
