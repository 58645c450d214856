"""AWS in the sandbox: moto in server mode on loopback, seeded with the estate.

The estate's ids are the same at every start of a sandbox of the same env (moto draws its
ids from one seedable generator, `moto_api._internal.mock_random`): a real estate keeps its
ids for years, and the cost service's generated CUR, which bills those ids, is then made
once per params and reused (sandbox/cost/service.py). Once every service has started, the
generator is reseeded from the OS, so what runs create afterwards (snapshots, restored
instances, volumes) gets fresh ids, as AWS never hands out an id twice.

Two of moto's costs at every start are left out (`quicken_moto`), neither changing an answer:
the EC2 backend's catalogue of public AMIs (moto's own switch MOTO_EC2_LOAD_DEFAULT_AMIS; the
estate's nodes run an image nobody describes), and the botocore session moto builds, reading
botocore's endpoint data, for every EKS role-ARN check (moto/eks/utils.py): one session
answers the same list of partitions every time.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os

from opsbook.params import Params
from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.services import SERVICES


def estate_seed(params: Params) -> int:
    """The id generator's seed: what names one estate (its env, account and region)."""
    key = f"{params.env}/{params.account_id}/{params.region}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def quicken_moto() -> None:
    """Leave out the two start-up costs named in the module docstring."""
    import boto3
    import moto.eks.utils

    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    moto.eks.utils.Session = functools.cache(boto3.Session)  # type: ignore[attr-defined]


@SERVICES.register("aws")
class MotoService:
    """moto's server in a thread of this process, reached through AWS_ENDPOINT_URL."""

    name = "aws"
    needs = ()

    def __init__(self) -> None:
        self.server = None

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        from moto.moto_api._internal import mock_random
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        quicken_moto()
        # port 0: the OS picks a free port at bind time (no window for another process to take it)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        _, port = self.server.get_host_and_port()
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        from opsbook.sandbox.aws.seed import seed_estate

        ctx.on_started.append(lambda: mock_random.seed(None))
        seed_estate(ctx.params, {**ctx.env, **env}, ctx.facts, ids=estate_seed(ctx.params))
        return env

    def stop(self) -> None:
        if self.server is not None:
            # moto keeps its state per process, not per server: forget it, so that a later
            # sandbox in this process seeds a clean estate
            from moto.moto_api._internal import moto_api_backend

            moto_api_backend.reset()
            self.server.stop()
            self.server = None
