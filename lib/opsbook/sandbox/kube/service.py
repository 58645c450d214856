"""The sandbox service: the API server emulator on loopback, a kubeconfig, and the seeded cluster.

Import this module only through `opsbook.sandbox.services` (registration order is start
order, and the seed needs the AWS service's facts).
"""

from __future__ import annotations

from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.kube.kubeconfig import write_kubeconfig
from opsbook.sandbox.kube.server import KubeApiServer
from opsbook.sandbox.services import SERVICES


@SERVICES.register("kube")
class KubeService:
    """Kubernetes in the sandbox, reached through KUBECONFIG."""

    name = "kube"
    needs = ("aws",)  # the nodes and volumes of the AWS seed

    def __init__(self) -> None:
        self.server: KubeApiServer | None = None

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        from opsbook.sandbox.kube.seed import check_facts, seed_cluster

        check_facts(ctx.facts, ctx.params)  # fail before anything starts when the AWS seed did not run
        network = ctx.params.network
        # the controllers start after the seed, which writes what they would have written
        self.server = KubeApiServer(controllers=False,
                                    pod_subnets=dict(zip(network.azs, network.private_subnets, strict=True))).start()
        try:
            kubeconfig = write_kubeconfig(ctx.state_dir / "kubeconfig", ctx.params.eks.cluster_name, self.server.url)
            seed_cluster(ctx.params, kubeconfig, ctx.facts)
            self.server.start_controllers()
        except BaseException:
            self.stop()
            raise
        ctx.facts["kubeconfig"] = str(kubeconfig)
        return {"KUBECONFIG": str(kubeconfig)}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
