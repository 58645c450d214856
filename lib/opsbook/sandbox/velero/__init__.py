"""The sandbox's Velero server: a controller on the Kubernetes API emulator doing real work.

It watches Backup, Restore and DeleteBackupRequest objects (and Schedules and
BackupStorageLocations) and does what Velero with the AWS plugin does against the
sandbox: the object-store layout written to the BSL's bucket in moto, EBS snapshots of
the PVs' volumes, volumes made from them on restore, the objects restored into the mapped
namespace and their pods marked Ready. The stateful workloads' data (RabbitMQ vhosts,
MariaDB databases on the real local servers) travels with the volumes (`dataplane.py`).

Failure modes for tests: a BackupStorageLocation whose bucket does not exist becomes
Unavailable and backups to it end FailedValidation; a PVC or PV annotated
`sandbox.opsbook.io/fail-snapshot` fails its snapshot and the backup ends PartiallyFailed.
"""

from __future__ import annotations

import logging

from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.services import SERVICES
from opsbook.sandbox.velero.context import Ctx
from opsbook.sandbox.velero.controller import Controller
from opsbook.sandbox.velero.dataplane import DataPlane
from opsbook.sandbox.velero.volumes import FAULT_ANNOTATION

__all__ = ["FAULT_ANNOTATION", "VeleroService"]
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
        self.controller.settle()  # the seeded Schedule's first backup exists before anyone looks
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
