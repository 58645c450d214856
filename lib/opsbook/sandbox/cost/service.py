"""The sandbox's cost side: the generated CUR in S3, a budget, and the Cost Explorer,
Pricing and Athena emulators on one loopback port.

Starts after the AWS seed (and the Kubernetes seed), so the CUR bills the very instance
and volume ids the cluster reports. Generated files are cached under
`.opsbook/cache/sandbox-cur/<fingerprint>/` (same params, ids and day: same files; the AWS
seed gives the same ids at every start), so a restart only re-uploads them. Several
sandboxes may start at once (test workers, `opsbook demo` beside a daemon): an entry is
written in a private folder and renamed into place, so nobody reads half of one, and only
entries nobody used for a day are pruned. Cost Explorer's line items (a frame derived from
the CUR) are cached beside the files and loaded on the emulator's first request.
Real clients reach the emulators through AWS_ENDPOINT_URL_COST_EXPLORER,
AWS_ENDPOINT_URL_PRICING and AWS_ENDPOINT_URL_ATHENA.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from opsbook.params import Params, cache_dir
from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.cost import cost_explorer
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


KEEP_ENTRIES = 4  # the most recently used generated exports are kept...
IN_USE_SECONDS = 24 * 3600  # ...and any used within a day (a sandbox may still read it)


def cache_root() -> Path:
    return cache_dir() / "sandbox-cur"


def generated(params: Params, inv: Inventory) -> tuple[Path, dict[str, Any]]:
    """The generated export for these params and ids (made once, then reused)."""
    root = cache_root()
    out = root / fingerprint(params, inv)
    if not (out / "generated.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        _publish(out, lambda tmp: (tmp / "generated.json").write_text(
            json.dumps(generate(params, tmp, inv), indent=2)))
    os.utime(out)  # used now: pruning keeps it
    _prune(root)
    return out, json.loads((out / "generated.json").read_text())


def _publish(out: Path, write: Callable[[Path], Any]) -> None:
    """Fill a private folder beside `out`, then rename it to `out`; the first writer wins."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write(tmp)
        try:
            tmp.rename(out)
        except OSError:
            if not out.is_dir():
                raise  # not another writer's entry in the way: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prune(root: Path) -> None:
    """Drop entries (and abandoned private folders) nobody used for a day, beyond the recent few."""
    now = time.time()
    entries = sorted(root.iterdir(), key=_mtime, reverse=True)
    finished = [p for p in entries if not p.name.startswith(".")]
    for old in [*finished[KEEP_ENTRIES:], *(p for p in entries if p.name.startswith("."))]:
        if now - _mtime(old) > IN_USE_SECONDS:
            shutil.rmtree(old, ignore_errors=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # pruned by another sandbox meanwhile
        return time.time()


def line_items(out: Path, export: Path) -> Any:
    """Cost Explorer's frame of the export in `out`, derived once per export and loader version."""
    import pandas as pd

    code = Path(cost_explorer.__file__).read_bytes() + pd.__version__.encode()
    cached = out / f".ce-line-items-{hashlib.sha256(code).hexdigest()[:12]}.pickle"
    if not cached.is_file():
        items = load_line_items(export)
        fd, tmp = tempfile.mkstemp(prefix=f".{cached.name}-", dir=out)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(items, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cached)
        return items
    with cached.open("rb") as fh:
        return pickle.load(fh)  # our own cache file, written as above


class Deferred:
    """An emulator built on first use: its handlers are looked up by name now, called later."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: Any = None

    def _emulator(self) -> Any:
        with self._lock:
            if self._built is None:
                self._built = self._build()
            return self._built

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: getattr(self._emulator(), name)(*args, **kwargs)


def upload(s3: Any, bucket: str, out: Path) -> int:
    count = 0
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "generated.json" and not path.name.startswith("."):
            s3.put_object(Bucket=bucket, Key=str(path.relative_to(out)), Body=path.read_bytes())
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
    needs = ("aws",)  # bills the ids of the AWS seed

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
        ce = Deferred(lambda: CostExplorerEmulator(line_items(out, export), date.fromisoformat(summary["end"]),
                                                   params.account_id))
        athena = AthenaEmulator(s3, ctx.state_dir / "athena", {
            f"{params.cost.athena.database}.{params.cost.athena.table}": f"s3://{bucket}/{cur.prefix}/{cur.export_name}",
        })
        handlers = CostExplorerEmulator.handlers(ce)  # type: ignore[arg-type] - the deferred stands in
        self.server = JsonApiServer({**handlers, **PricingEmulator().handlers(), **athena.handlers()})
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
