"""An Athena emulator that really executes the Trino SQL it is sent (JSON 1.1, AmazonAthena).

moto's Athena accepts queries but runs none. Here a query is parsed as Trino (a syntax
error fails it the way Athena does), transpiled to DuckDB with sqlglot, and run over the
Parquet files of the table's S3 location (mirrored from the sandbox's S3 through boto3).
Results are served by GetQueryResults with Athena's paging (header row first, at most
1000 rows a page, every value a VarCharValue string) and written as CSV to the output
location, as Athena does.
"""

from __future__ import annotations

import csv
import io
import threading
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from opsbook.sandbox.json_api import ApiError

TARGET = "AmazonAthena"
TYPES = {"VARCHAR": "varchar", "DOUBLE": "double", "FLOAT": "float", "BIGINT": "bigint", "INTEGER": "integer",
         "HUGEINT": "bigint", "TIMESTAMP": "timestamp", "DATE": "date", "BOOLEAN": "boolean"}


def mirror_table(s3: Any, url: str, root: Path) -> Path:
    """The table location's Parquet files (s3://bucket/prefix/data/...) mirrored under `root`.

    Athena reads the table's objects as they are at query time; a file is fetched again
    only when its size or ETag changed, and files gone from S3 are removed.
    """
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    local_root = root / bucket / prefix
    remote = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/data/"):
        remote.update({obj["Key"]: obj for obj in page.get("Contents", []) if obj["Key"].endswith(".parquet")})
    wanted = set()
    for key, obj in remote.items():
        target = local_root / key[len(prefix) + 1:]
        stamp = target.with_name(f".{target.name}.etag")
        wanted.add(target)
        if target.is_file() and stamp.is_file() and stamp.read_text() == f"{obj['Size']}:{obj['ETag']}":
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
        stamp.write_text(f"{obj['Size']}:{obj['ETag']}")
    for stale in local_root.glob("data/**/*.parquet"):
        if stale not in wanted:
            stale.unlink()
    return local_root


def invalid(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class AthenaEmulator:
    """Tables are registered like a Glue catalog: 'db.table' -> s3:// location of the export."""

    def __init__(self, s3: Any, cache: Path, tables: dict[str, str]) -> None:
        self.s3, self.cache, self.tables = s3, cache, dict(tables)
        self.queries: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.con = duckdb.connect()
        self._views: dict[str, str] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            f"{TARGET}.StartQueryExecution": self.start_query_execution,
            f"{TARGET}.GetQueryExecution": self.get_query_execution,
            f"{TARGET}.GetQueryResults": self.get_query_results,
            f"{TARGET}.StopQueryExecution": self.stop_query_execution,
        }

    def _view(self, table: str) -> str:
        """A DuckDB view over the table's Parquet files, mirrored fresh from S3 for each query."""
        local = mirror_table(self.s3, self.tables[table], self.cache)
        name = self._views.setdefault(table, f"t{len(self._views)}")
        glob = str(local / "data" / "BILLING_PERIOD=*" / "*.parquet")
        self.con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, "
            "hive_types = {'BILLING_PERIOD': VARCHAR})"
        )
        return name

    def _execute(self, sql: str, database: str) -> tuple[list[dict], list[list[str | None]]]:
        try:
            tree = sqlglot.parse_one(sql, read="trino")
        except sqlglot.errors.ParseError as exc:
            raise RuntimeError(f"SYNTAX_ERROR: line 1:1: {exc}") from None
        for node in list(tree.find_all(exp.Table)):
            db = node.text("db") or database
            key = f"{db}.{node.name}"
            if key not in self.tables:
                raise RuntimeError(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{key}' does not exist")
            node.replace(exp.to_table(self._view(key)))
        rel = self.con.sql(tree.sql(dialect="duckdb"))
        columns = []
        for name, dtype in zip(rel.columns, rel.types, strict=True):
            base = str(dtype).split("(")[0]
            columns.append({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
                            "Type": TYPES.get(base, base.lower()), "Precision": 0, "Scale": 0,
                            "Nullable": "UNKNOWN", "CaseSensitive": base == "VARCHAR"})
        rows = [[_text(v) for v in row] for row in rel.fetchall()]
        return columns, rows

    def start_query_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        sql = body.get("QueryString")
        if not sql:
            raise invalid("QueryString is required")
        database = (body.get("QueryExecutionContext") or {}).get("Database", "default")
        output = (body.get("ResultConfiguration") or {}).get("OutputLocation")
        if not output or not output.startswith("s3://"):
            raise invalid("No output location provided. An output location is required either through the "
                          "Workgroup result configuration setting or as an API input.")
        qid = str(uuid.uuid4())
        submitted = time.time()
        record: dict[str, Any] = {"sql": sql, "database": database, "workgroup": body.get("WorkGroup", "primary"),
                                  "output": output.rstrip("/") + f"/{qid}.csv", "submitted": submitted}
        with self.lock:
            try:
                record["columns"], record["rows"] = self._execute(sql, database)
                record["state"] = "SUCCEEDED"
                self._write_csv(record)
            except (RuntimeError, duckdb.Error) as exc:
                record["state"], record["error"] = "FAILED", str(exc)
        record["completed"] = time.time()
        self.queries[qid] = record
        return {"QueryExecutionId": qid}

    def _write_csv(self, record: dict[str, Any]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_ALL)
        writer.writerow([c["Name"] for c in record["columns"]])
        writer.writerows([["" if v is None else v for v in row] for row in record["rows"]])
        bucket, _, key = record["output"].removeprefix("s3://").partition("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue().encode())

    def _query(self, body: dict[str, Any]) -> dict[str, Any]:
        qid = body.get("QueryExecutionId")
        if qid not in self.queries:
            raise invalid(f"QueryExecution {qid} was not found")
        return self.queries[qid]

    def get_query_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        q = self._query(body)
        status: dict[str, Any] = {
            "State": q["state"],
            "SubmissionDateTime": q["submitted"],
            "CompletionDateTime": q["completed"],
        }
        if q["state"] == "FAILED":
            status["StateChangeReason"] = q["error"]
            status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False,
                                     "ErrorMessage": q["error"]}
        elapsed = int((q["completed"] - q["submitted"]) * 1000)
        return {"QueryExecution": {
            "QueryExecutionId": body["QueryExecutionId"], "Query": q["sql"], "StatementType": "DML",
            "ResultConfiguration": {"OutputLocation": q["output"]},
            "QueryExecutionContext": {"Database": q["database"], "Catalog": "awsdatacatalog"},
            "Status": status,
            "Statistics": {"EngineExecutionTimeInMillis": elapsed, "DataScannedInBytes": 0,
                           "TotalExecutionTimeInMillis": elapsed, "QueryQueueTimeInMillis": 0},
            "WorkGroup": q["workgroup"],
            "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"},
        }}

    def get_query_results(self, body: dict[str, Any]) -> dict[str, Any]:
        q = self._query(body)
        if q["state"] != "SUCCEEDED":
            raise invalid(f"Query has not yet finished. Current state: {q['state']}")
        size = int(body.get("MaxResults") or 1000)
        if not 1 <= size <= 1000:
            raise invalid("MaxResults must be between 1 and 1000")
        header = [[c["Name"] for c in q["columns"]]]
        rows = header + q["rows"]
        try:
            offset = int(body.get("NextToken") or 0)
        except ValueError:
            raise invalid("NextToken is invalid") from None
        page = rows[offset: offset + size]
        out: dict[str, Any] = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": [{"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in page],
                "ResultSetMetadata": {"ColumnInfo": q["columns"]},
            },
        }
        if offset + size < len(rows):
            out["NextToken"] = str(offset + size)
        return out

    def stop_query_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        self._query(body)
        return {}

