"""The seeded estate keeps its ids from start to start and process to process (moto's id generator
seeded per estate), while what is created once the sandbox is up gets fresh ids every time."""

from __future__ import annotations

import json
import subprocess
import sys

from opsbook.clients import Env
from opsbook.params import Params

# Two starts of the AWS service in one fresh process (moto's state forgotten between them), then
# a volume made after each start, as a drill would make one.
TWICE = r"""
import json, sys, tempfile
from pathlib import Path
import boto3
from opsbook.params import load_params
from opsbook.sandbox.aws.moto_server import MotoService
from opsbook.sandbox.core import SANDBOX_CREDENTIALS, SandboxContext

params, out = load_params("sandbox"), []
for _ in range(2):
    ctx = SandboxContext(params=params, state_dir=Path(tempfile.mkdtemp()),
                         env={**SANDBOX_CREDENTIALS, "AWS_DEFAULT_REGION": params.region})
    service = MotoService()
    env = service.start(ctx)
    for action in ctx.on_started:
        action()
    ec2 = boto3.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=params.region,
                       aws_access_key_id="x", aws_secret_access_key="x")
    later = ec2.create_volume(AvailabilityZone=params.network.azs[0], Size=1)["VolumeId"]
    out.append({"nodes": sorted(n["instance_id"] for n in ctx.facts["nodes"]),
                "volumes": sorted(v["volume_id"] for v in ctx.facts["ebs_volumes"].values()), "later": later})
    service.stop()
print(json.dumps(out))
"""


def test_the_estate_keeps_its_ids_and_later_resources_get_fresh_ones(sandbox, sandbox_params: Params) -> None:
    done = subprocess.run([sys.executable, "-c", TWICE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    assert first["nodes"] == second["nodes"] and first["volumes"] == second["volumes"]
    assert len(first["nodes"]) == sum(g.desired_size for g in sandbox_params.eks.node_groups)
    assert first["later"] != second["later"] and first["later"] not in first["volumes"]
    # the session's sandbox, started in another process, seeded the same estate
    ec2 = Env(params=sandbox_params).aws("ec2")
    reservations = ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["eks:nodegroup-name"]}])
    assert sorted(i["InstanceId"] for r in reservations["Reservations"] for i in r["Instances"]) == first["nodes"]
