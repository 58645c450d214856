"""Cost sources behind one interface: `source.costs(CostQuery) -> DataFrame` (see query.py).

- `CurDuckDb`: the CUR 2.0 export in Parquet, from a local folder or `s3://` (objects are
  synced into a local cache through boto3, one billing period at a time), queried with DuckDB.
- `CurAthena`: the same SQL rendered for Athena (Trino) and run through boto3's Athena
  client, with paging, for CURs that outgrow one machine.
- `CostExplorer`: GetCostAndUsage with paging, for accounts without a CUR.

`open_source(env)` picks the one params name (`cost.source`); a registry, not an if-chain.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from opsbook.clients import Env
from opsbook.cost.query import UNTAGGED, CostQuery, is_tag, normalize, periods, tag_key
from opsbook.cost.sql import TABLE, column_names, cost_sql, to_trino
from opsbook.errors import OpsbookError, UsageError
from opsbook.formats import aws_services
from opsbook.params import cache_dir
from opsbook.registry import Registry

# Where cost data comes from: each source class is registered beside its definition.
SOURCES: Registry[type[CostSource]] = Registry("cost source", ["opsbook.cost.sources"])

class CostSource(ABC):
    """A place cost data comes from; every source answers in the same frame schema."""

    name: str = ""
    resource_level = False  # can it group by resource_id?
    history_months: int | None = None  # complete months back it can answer (None: as far as its data goes)

    def costs(self, query: CostQuery) -> pd.DataFrame:
        if "resource_id" in (*query.group_by, *query.include, *query.exclude) and not self.resource_level:
            raise UsageError(f"the {self.name} source has no resource-level costs (resource_id)",
                             remedy="use a CUR source (params cost.source: cur or athena)")
        return normalize(self._costs(query), query)

    @abstractmethod
    def _costs(self, query: CostQuery) -> pd.DataFrame: ...

    def describe(self) -> str:
        return self.name

    def last_export(self) -> datetime | None:
        """When the data was last delivered (UTC), where the source can tell."""
        return None


# --- CUR in DuckDB ---------------------------------------------------------------------------


def export_location(env: Env) -> str:
    cur = env.params.cost.cur
    if cur.local_path:
        return str(Path(cur.local_path) / cur.prefix / cur.export_name)
    bucket = cur.bucket or env.params.buckets.cur
    return f"s3://{bucket}/{cur.prefix}/{cur.export_name}"


def sync_periods(s3: Any, url: str, wanted: list[str] | None, root: Path) -> Path:
    """Mirror the export's data/ partitions (all, or `wanted` periods) from S3 into `root`.

    Objects are fetched when missing or changed (size and ETag), removed when gone, so a
    re-delivered billing period (AWS rewrites the current one daily) is picked up.
    """
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    local_export = root / bucket / prefix
    data_prefix = f"{prefix}/data/"
    if wanted is None:
        found = s3.list_objects_v2(Bucket=bucket, Prefix=data_prefix, Delimiter="/").get("CommonPrefixes", [])
        wanted = [p["Prefix"][len(data_prefix):].strip("/").removeprefix("BILLING_PERIOD=") for p in found]
    for period in wanted:
        part = f"{data_prefix}BILLING_PERIOD={period}/"
        local = local_export / "data" / f"BILLING_PERIOD={period}"
        remote: dict[str, dict] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=part):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".parquet"):
                    remote[obj["Key"].rsplit("/", 1)[1]] = obj
        local.mkdir(parents=True, exist_ok=True)
        for name, obj in remote.items():
            target, stamp = local / name, local / f".{name}.etag"
            tag = f"{obj['Size']}:{obj['ETag']}"
            if target.is_file() and stamp.is_file() and stamp.read_text() == tag:
                continue
            tmp = target.with_name(f".{name}.{os.getpid()}.part")  # a writer's own: runs may sync at once
            s3.download_file(bucket, obj["Key"], str(tmp))
            tmp.replace(target)
            stamp.write_text(tag)
        for stale in local.glob("*.parquet"):
            if stale.name not in remote:
                stale.unlink()
                (local / f".{stale.name}.etag").unlink(missing_ok=True)
    return local_export


@SOURCES.register("cur")
class CurDuckDb(CostSource):
    """The CUR export queried with DuckDB (local folder, or S3 mirrored into a cache)."""

    name = "cur"
    resource_level = True

    def __init__(self, location: str, s3: Any = None, cache: Path | None = None, threads: int | None = None) -> None:
        self.location = location
        self.s3 = s3
        self.cache = cache or cache_dir() / "cur"
        self.con = duckdb.connect(config={"threads": threads} if threads else {})
        self._synced: set[str] = set()
        self._local: Path | None = None if location.startswith("s3://") else Path(location)
        self._view_ready = False

    @classmethod
    def from_env(cls, env: Env) -> CurDuckDb:
        location = export_location(env)
        return cls(location, s3=env.aws("s3") if location.startswith("s3://") else None)

    def describe(self) -> str:
        return f"CUR 2.0 Parquet at {self.location} (DuckDB)"

    def last_export(self) -> datetime | None:
        """The newest object the Data Export delivered (manifests and data files)."""
        if self.location.startswith("s3://"):
            bucket, _, prefix = self.location.removeprefix("s3://").partition("/")
            times = [obj["LastModified"] for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{prefix}/") for obj in page.get("Contents", [])]
            return max(times).astimezone(UTC) if times else None
        files = [f for f in Path(self.location).rglob("*") if f.is_file()]
        return datetime.fromtimestamp(max(f.stat().st_mtime for f in files), UTC) if files else None

    def _prepare(self, wanted: list[str] | None) -> None:
        if self.location.startswith("s3://"):
            todo = None if wanted is None else [p for p in wanted if p not in self._synced]
            if todo is None or todo:
                self._local = sync_periods(self.s3, self.location, todo, self.cache)
                self._synced.update(todo or [])
                self._view_ready = False
        if self._view_ready:
            return
        data = self._local / "data"
        if not any(data.glob("BILLING_PERIOD=*/*.parquet")):
            raise OpsbookError(f"no CUR Parquet files under {self.location}/data/",
                               remedy="check params cost.cur (bucket, prefix, export_name) and that the Data "
                                      "Export has delivered")
        glob = str(data / "BILLING_PERIOD=*" / "*.parquet")
        self.con.execute(
            f"CREATE OR REPLACE VIEW {TABLE} AS SELECT * FROM read_parquet('{glob}', "
            "hive_partitioning = true, hive_types = {'BILLING_PERIOD': VARCHAR}, union_by_name = true)"
        )
        self._view_ready = True

    def sql(self, sql: str, wanted_periods: list[str] | None = None) -> pd.DataFrame:
        """Run DuckDB SQL over the `cur` view (periods to sync first when on S3)."""
        self._prepare(wanted_periods)
        return self.con.execute(sql).df()

    def _costs(self, query: CostQuery) -> pd.DataFrame:
        frame = self.sql(cost_sql(query), periods(query.start, query.end))
        return frame.rename(columns=column_names(query))


# --- CUR through Athena ----------------------------------------------------------------------


ATHENA_TYPES: dict[str, Callable[[pd.Series], pd.Series]] = {
    "double": lambda s: pd.to_numeric(s), "float": lambda s: pd.to_numeric(s), "real": lambda s: pd.to_numeric(s),
    "decimal": lambda s: pd.to_numeric(s), "bigint": lambda s: pd.to_numeric(s), "integer": lambda s: pd.to_numeric(s),
    "timestamp": lambda s: pd.to_datetime(s), "date": lambda s: pd.to_datetime(s), "varchar": lambda s: s,
    "boolean": lambda s: s.map({"true": True, "false": False}),
}


@SOURCES.register("athena")
class CurAthena(CostSource):
    """The same CUR queries rendered for Athena (Trino) and run through boto3's Athena client."""

    name = "athena"
    resource_level = True

    def __init__(self, athena: Any, database: str, table: str, workgroup: str, output_location: str,
                 poll_seconds: float = 0.5, timeout_seconds: float = 600) -> None:
        self.athena, self.database, self.table = athena, database, table
        self.workgroup, self.output_location = workgroup, output_location
        self.poll_seconds, self.timeout_seconds = poll_seconds, timeout_seconds

    @classmethod
    def from_env(cls, env: Env) -> CurAthena:
        a = env.params.cost.athena
        bucket = env.params.cost.cur.bucket or env.params.buckets.cur
        out = a.output_location or f"s3://{bucket}/athena-results/"
        return cls(env.aws("athena"), a.database, a.table, a.workgroup, out, a.poll_seconds, a.timeout_seconds)

    def describe(self) -> str:
        return f"Athena table {self.database}.{self.table} (workgroup {self.workgroup})"

    def render(self, duckdb_sql: str) -> str:
        return to_trino(duckdb_sql, f"{self.database}.{self.table}")

    def run(self, trino_sql: str, page_size: int = 1000) -> pd.DataFrame:
        """Start the query, wait for it, read every page of its results into a typed frame."""
        qid = self.athena.start_query_execution(
            QueryString=trino_sql,
            QueryExecutionContext={"Database": self.database},
            WorkGroup=self.workgroup,
            ResultConfiguration={"OutputLocation": self.output_location},
        )["QueryExecutionId"]
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                break
            if status["State"] in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage", "")
                raise OpsbookError(f"Athena query {qid} {status['State'].lower()}: {reason}")
            if time.monotonic() > deadline:
                self.athena.stop_query_execution(QueryExecutionId=qid)
                raise OpsbookError(f"Athena query {qid} still running after {self.timeout_seconds:.0f}s; stopped it",
                                   remedy="raise the query timeout or ask for fewer months")
            time.sleep(self.poll_seconds)
        columns: list[dict] = []
        rows: list[list[str | None]] = []
        paginator = self.athena.get_paginator("get_query_results")
        for n, page in enumerate(paginator.paginate(QueryExecutionId=qid, PaginationConfig={"PageSize": page_size})):
            if not columns:
                columns = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
            page_rows = page["ResultSet"]["Rows"]
            if n == 0:
                page_rows = page_rows[1:]  # Athena repeats the header as the first row of a SELECT
            rows += [[cell.get("VarCharValue") for cell in row["Data"]] for row in page_rows]
        frame = pd.DataFrame(rows, columns=[c["Name"] for c in columns])
        for col in columns:
            convert = ATHENA_TYPES.get(col["Type"].split("(")[0].lower())
            if convert is None:
                raise OpsbookError(f"Athena column {col['Name']} has type {col['Type']} that opsbook does not read")
            frame[col["Name"]] = convert(frame[col["Name"]])
        return frame

    def _costs(self, query: CostQuery) -> pd.DataFrame:
        return self.run(self.render(cost_sql(query))).rename(columns=column_names(query))


# --- Cost Explorer ---------------------------------------------------------------------------


CE_METRICS = {"unblended": "UnblendedCost", "amortized": "AmortizedCost", "net_unblended": "NetUnblendedCost"}
CE_DIMENSIONS = {
    "service": "SERVICE", "usage_type": "USAGE_TYPE", "operation": "OPERATION", "region": "REGION",
    "account": "LINKED_ACCOUNT", "az": "AZ", "record_type": "RECORD_TYPE", "instance_type": "INSTANCE_TYPE",
    "billing_entity": "BILLING_ENTITY",
}


def _ce_group(dim: str) -> dict[str, str]:
    if dim == "team" or is_tag(dim):
        return {"Type": "TAG", "Key": tag_key(dim)}
    if dim not in CE_DIMENSIONS:
        raise UsageError(f"Cost Explorer cannot group by {dim!r}", remedy="use a CUR source (params cost.source)")
    return {"Type": "DIMENSION", "Key": CE_DIMENSIONS[dim]}


def _ce_values(dim: str, values: tuple[str, ...]) -> list[str]:
    if any("%" in v for v in values):
        raise UsageError(f"Cost Explorer filters match whole values; {dim} {values} cannot be matched",
                         remedy="use a CUR source (params cost.source)")
    if dim == "service":
        return [name for v in values for name in aws_services.ce_names(v)]
    if dim in ("team",) or is_tag(dim):
        return ["" if v == UNTAGGED else v for v in values]
    return list(values)


def ce_filter(query: CostQuery) -> dict | None:
    """The query's filters as a Cost Explorer Expression."""
    terms = []
    for negate, filters in ((False, query.include), (True, query.exclude)):
        for dim, values in filters.items():
            group = _ce_group(dim)
            key = "Tags" if group["Type"] == "TAG" else "Dimensions"
            term: dict = {key: {"Key": group["Key"], "Values": _ce_values(dim, values)}}
            if key == "Tags" and "" in term[key]["Values"]:
                term[key]["MatchOptions"] = ["EQUALS", "ABSENT"]
            terms.append({"Not": term} if negate else term)
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else {"And": terms}


def _ce_key(dim: str, key: str) -> str:
    if dim == "service":
        return aws_services.product_code(key)
    if dim == "team" or is_tag(dim):
        value = key.split("$", 1)[1] if "$" in key else key
        return value or UNTAGGED
    if dim == "region" and key in ("NoRegion", ""):
        return "global"
    return key


@SOURCES.register("cost_explorer")
class CostExplorer(CostSource):
    """Cost Explorer's GetCostAndUsage (at most two group-by dimensions, no resources)."""

    name = "cost_explorer"
    # "Cost Explorer provides up to the last 13 months of data" (38 with multi-year data enabled):
    # docs.aws.amazon.com/cost-management/latest/userguide/ce-what-is.html
    history_months = 13

    def __init__(self, ce: Any) -> None:
        self.ce = ce

    @classmethod
    def from_env(cls, env: Env) -> CostExplorer:
        return cls(env.aws("ce", region="us-east-1"))  # Cost Explorer's one endpoint

    def describe(self) -> str:
        return "AWS Cost Explorer API"

    def _costs(self, query: CostQuery) -> pd.DataFrame:
        if len(query.group_by) > 2:
            raise UsageError(f"Cost Explorer groups by at most two dimensions, asked {query.group_by}")
        metric = CE_METRICS[query.metric]
        request: dict[str, Any] = {
            "TimePeriod": {"Start": query.start.isoformat(), "End": query.end.isoformat()},
            "Granularity": query.granularity,
            "Metrics": [metric, "UsageQuantity"],
        }
        if query.group_by:
            request["GroupBy"] = [_ce_group(d) for d in query.group_by]
        if (expression := ce_filter(query)) is not None:
            request["Filter"] = expression
        records: list[dict] = []
        token = None
        while True:
            page = self.ce.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
            for result in page["ResultsByTime"]:
                period = result["TimePeriod"]["Start"]
                if not query.group_by:
                    total = result.get("Total", {})
                    records.append({"period": period, "cost": float(total.get(metric, {}).get("Amount", 0)),
                                    "usage_quantity": float(total.get("UsageQuantity", {}).get("Amount", 0))})
                for group in result.get("Groups", []):
                    record = {"period": period}
                    record.update({d: _ce_key(d, k) for d, k in zip(query.group_by, group["Keys"], strict=True)})
                    record["cost"] = float(group["Metrics"][metric]["Amount"])
                    record["usage_quantity"] = float(group["Metrics"]["UsageQuantity"]["Amount"])
                    records.append(record)
            token = page.get("NextPageToken")
            if not token:
                break
        return pd.DataFrame(records, columns=query.columns)


# --- choosing ----------------------------------------------------------------------------------


def open_source(env: Env, kind: str | None = None) -> CostSource:
    """The cost source params name (or `kind`): cur, athena or cost_explorer."""
    return SOURCES.get(kind or env.params.cost.source).from_env(env)
