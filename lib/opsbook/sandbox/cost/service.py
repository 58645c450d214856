"""The sandbox's cost side: the generated CUR in S3, a budget, and the Cost Explorer,
Pricing and Athena emulators on one loopback port.

Starts after the AWS seed (and the Kubernetes seed), so the CUR bills the very instance
and volume ids the cluster reports. Generated files are cached under
`.opsbook/cache/sandbox-cur/<fingerprint>/` (same params, ids and day: same files), so a
restart only re-uploads them. Real clients reach the emulators through
AWS_ENDPOINT_URL_COST_EXPLORER, AWS_ENDPOINT_URL_PRICING and AWS_ENDPOINT_URL_ATHENA.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from opsbook.params import Params, cache_dir
from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.cost.athena import AthenaEmulator
from opsbook.sandbox.cost.cost_explorer import CostExplorerEmulator, load_line_items
from opsbook.sandbox.cost.cur import Inventory, fingerprint, generate, synthetic_inventory
from opsbook.sandbox.cost.pricing import PricingEmulator
from opsbook.sandbox.json_api import JsonApiServer
from opsbook.sandbox.services import SERVICES

log = logging.getLogger(__name__)
CONFIG = botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5)
ORPHAN_NAME = "debug-reports-db-copy"


def _client(env: dict[str, str], service: str, region: str) -> Any:
    return boto3.client(
        service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"), config=CONFIG,
    )


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """The CUR bucket (the AWS seed creates it; create it here if it did not)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)


def ensure_orphan_volume(ec2: Any, params: Params) -> dict[str, Any]:
    """An unattached gp2 volume someone forgot (the savings notebook should find it)."""
    name = f"{params.eks.cluster_name}-{ORPHAN_NAME}"
    found = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [name]}])["Volumes"]
    volume = found[0] if found else ec2.create_volume(
        AvailabilityZone=params.network.azs[0], Size=100, VolumeType="gp2",
        TagSpecifications=[{"ResourceType": "volume", "Tags": [
            {"Key": "Name", "Value": name}, {"Key": "Environment", "Value": params.env}]}],
    )
    return {"volume_id": volume["VolumeId"], "az": volume["AvailabilityZone"], "size_gi": volume["Size"]}


def inventory(params: Params, facts: dict[str, Any], ec2: Any) -> Inventory:
    """The estate's real sandbox ids: nodes and PVC volumes from the seed's facts, NATs from EC2."""
    inv = synthetic_inventory(params)
    nodes = facts.get("nodes")
    if nodes:
        inv.nodes = [{k: n[k] for k in ("instance_id", "az", "instance_type", "node_group")} for n in nodes]
    volumes = facts.get("ebs_volumes")
    if volumes:
        inv.volumes = {k: {"volume_id": v["volume_id"], "az": v["az"], "size_gi": v["size_gi"]}
                       for k, v in volumes.items()}
    nats = ec2.describe_nat_gateways()["NatGateways"]
    if nats:
        subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets()["Subnets"]}
        inv.nat_gateways = {subnets.get(n["SubnetId"], params.network.azs[0]): n["NatGatewayId"]
                            for n in sorted(nats, key=lambda n: n["NatGatewayId"])}
        inv.nat_gateways = dict(sorted(inv.nat_gateways.items()))
    inv.orphan_volume = ensure_orphan_volume(ec2, params)
    return inv


def cache_root() -> Path:
    return cache_dir() / "sandbox-cur"


def generated(params: Params, inv: Inventory) -> tuple[Path, dict[str, Any]]:
    """The generated export for these params and ids (made once, then reused)."""
    root = cache_root()
    out = root / fingerprint(params, inv)
    done = out / "generated.json"
    if done.is_file():
        return out, json.loads(done.read_text())
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    summary = generate(params, tmp, inv)
    (tmp / "generated.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    for old in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime)[:-4]:  # keep a few recent ones
        shutil.rmtree(old, ignore_errors=True)
    return out, summary


def upload(s3: Any, bucket: str, out: Path) -> int:
    count = 0
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "generated.json":
            s3.upload_file(str(path), bucket, str(path.relative_to(out)))
            count += 1
    return count


def ensure_budgets(budgets: Any, params: Params) -> None:
    have = {b["BudgetName"] for b in budgets.describe_budgets(AccountId=params.account_id).get("Budgets", [])}
    for budget in params.cost.budgets:
        if budget.name in have:
            continue
        budgets.create_budget(AccountId=params.account_id, Budget={
            "BudgetName": budget.name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
            "BudgetLimit": {"Amount": f"{budget.monthly_usd:.2f}", "Unit": "USD"},
        })


@SERVICES.register("cost")
class CostService:
    """CUR in S3, budgets, and the cost emulators."""

    name = "cost"

    def __init__(self) -> None:
        self.server: JsonApiServer | None = None
        self.timings: dict[str, float] = {}

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        params = ctx.params
        t0 = time.monotonic()
        s3 = _client(ctx.env, "s3", params.region)
        bucket = params.cost.cur.bucket or params.buckets.cur
        ensure_bucket(s3, bucket, params.region)
        inv = inventory(params, ctx.facts, _client(ctx.env, "ec2", params.region))
        out, summary = generated(params, inv)
        self.timings["generate"] = time.monotonic() - t0
        upload(s3, bucket, out)
        ensure_budgets(_client(ctx.env, "budgets", "us-east-1"), params)
        self.timings["upload"] = time.monotonic() - t0 - self.timings["generate"]
        cur = params.cost.cur
        export = out / cur.prefix / cur.export_name
        ce = CostExplorerEmulator(load_line_items(export), date.fromisoformat(summary["end"]), params.account_id)
        athena = AthenaEmulator(s3, ctx.state_dir / "athena", {
            f"{params.cost.athena.database}.{params.cost.athena.table}": f"s3://{bucket}/{cur.prefix}/{cur.export_name}",
        })
        self.server = JsonApiServer({**ce.handlers(), **PricingEmulator().handlers(), **athena.handlers()})
        endpoint = self.server.start()
        ctx.facts["cur"] = {"bucket": bucket, "summary": summary, "local": str(out)}
        self.timings["total"] = time.monotonic() - t0
        log.info("cost sandbox ready in %.2fs (%s rows)", self.timings["total"], summary["rows"])
        return {
            "AWS_ENDPOINT_URL_COST_EXPLORER": endpoint,
            "AWS_ENDPOINT_URL_PRICING": endpoint,
            "AWS_ENDPOINT_URL_ATHENA": endpoint,
        }

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
