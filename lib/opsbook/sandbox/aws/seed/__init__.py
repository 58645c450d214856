"""Seed moto with the estate described by params, through boto3.

Called by `sandbox/aws.py` right after moto's server starts. Order matters: KMS keys
first (buckets, RDS and SSM use them), then the network (the nodes, RDS and the private
zone live in it), EKS and its nodes, their PVC volumes, data stores, DNS and
certificates, and CloudTrail last (it logs into the logs bucket).

`params.sandbox.omit` leaves pieces out; its accepted forms are listed in `omit.py`
(e.g. `nat_gateway/eu-central-1c`), and an unknown one is rejected before anything
is created. What the Kubernetes seed needs next goes into `facts`:

- `facts["nodes"]`: `[{"name", "instance_id", "az", "instance_type", "node_group", "private_ip"}]`,
  the node name being the instance's private DNS name;
- `facts["ebs_volumes"]`: `{"<namespace>/<pvc>": {"volume_id", "az", "size_gi", "node"}}`,
  `node` naming the node the volume is attached to (the pod's node), or None.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from opsbook.params import Params
from opsbook.sandbox.aws.seed.compute import seed_cluster, seed_volumes
from opsbook.sandbox.aws.seed.context import Seed
from opsbook.sandbox.aws.seed.database import seed_rds
from opsbook.sandbox.aws.seed.dns import seed_dns
from opsbook.sandbox.aws.seed.keys import seed_kms, seed_ssm
from opsbook.sandbox.aws.seed.network import seed_network
from opsbook.sandbox.aws.seed.omit import FORMS, Omit, parse_omit
from opsbook.sandbox.aws.seed.storage import seed_buckets, seed_lock_table
from opsbook.sandbox.aws.seed.trail import seed_trail

__all__ = ["FORMS", "Omit", "parse_omit", "seed_estate"]

log = logging.getLogger(__name__)


def _volumes(seed: Seed) -> None:
    seed.facts["ebs_volumes"] = seed_volumes(seed)


STEPS: list[tuple[str, Callable[[Seed], None]]] = [
    ("kms", seed_kms),
    ("network", seed_network),
    ("eks", seed_cluster),
    ("ebs", _volumes),
    ("rds", seed_rds),
    ("s3", seed_buckets),
    ("dynamodb", seed_lock_table),
    ("ssm", seed_ssm),
    ("dns", seed_dns),
    ("cloudtrail", seed_trail),
]


# moto's backends the steps reach; some draw ids when first imported (EKS's endpoint names)
BACKENDS = ("kms", "ec2", "iam", "eks", "rds", "s3", "dynamodb", "ssm", "route53", "acm", "cloudtrail", "sts")


def seed_estate(params: Params, env: dict[str, str], facts: dict[str, Any], ids: int | None = None) -> None:
    """Create the estate's AWS resources in moto; hand nodes and volumes on in `facts`.

    With `ids` (moto running in this process), moto's id generator is seeded from it before
    each step, so the same params give the same ids at every start and in every process.
    """
    seed = Seed(params=params, env=env, facts=facts, omit=parse_omit(params))
    if ids is not None:
        from moto.backends import get_backend
        from moto.moto_api._internal import mock_random

        for backend in BACKENDS:
            get_backend(backend)  # type: ignore[call-overload]
    for name, step in STEPS:
        if ids is not None:
            mock_random.seed(f"{ids}/{name}")
        begun = time.monotonic()
        step(seed)
        log.debug("aws seed: %s in %.2fs", name, time.monotonic() - begun)
    facts["nodes"] = list(seed.nodes)
