"""The MySQL data plane of an RDS instance: connections, canary rows, fingerprints, a probe.

How an instance's data plane is reached (the same code in every environment):

- the instance named in params (the source) at `rds[].endpoint_override` when set
  (production: the local end of the on-call engineer's tunnel), else at the endpoint
  RDS reports for it;
- any other instance (a restored copy) at the endpoint RDS reports for it: from the
  office that is the private side reached over the site-to-site VPN. When params set
  `rds[].tunnel_command`, opsbook opens that command as a tunnel to the reported endpoint
  first and connects to its local end (see `opsbook.dataplane.tunnel`).

The sandbox fits this without knowing it: its RDS emulation reports loopback endpoints
(one small proxy per instance in front of the real MariaDB), so the library simply
connects where RDS says. Credentials are the application user `rds[].username` with the
password from the SSM SecureString `rds[].password_ssm`; the password is only handed to
PyMySQL and never printed or recorded.

Fingerprints are server-side: a row count and an order-independent hash of every row
(`BIT_XOR` of the first 64 bits of `MD5` over the row's columns), the same on MySQL 8 and
MariaDB. `CHECKSUM TABLE` is not used because its value depends on the storage format
(row format, hidden columns), which may differ between a source and its restored copy.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pymysql
import pymysql.cursors

from opsbook.errors import OpsbookError, UsageError
from opsbook.secrets import Secret

CANARY_TABLE = "opsbook_drill_canary"
CANARY_COLUMNS = (
    "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
    "run_id VARCHAR(64) NOT NULL, "
    "drill VARCHAR(64) NOT NULL, "
    "label VARCHAR(32) NOT NULL, "
    "written_at DATETIME(6) NOT NULL, "
    "KEY written_at (written_at)"
)


def canary_ddl() -> str:
    """CREATE TABLE for the canary table (made by the first drill that writes a canary)."""
    return f"CREATE TABLE IF NOT EXISTS `{CANARY_TABLE}` ({CANARY_COLUMNS})"


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect; the password stays a Secret until PyMySQL gets it."""

    instance: str
    host: str
    port: int
    user: str
    password: Secret
    database: str

    def describe(self) -> str:
        return f"{self.instance} ({self.user}@{self.host}:{self.port}/{self.database})"


def parse_hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"expected host:port, got {value!r}")
    return host, int(port)


@contextlib.contextmanager
def connect(target: Target, timeout: float = 10) -> Iterator[pymysql.connections.Connection]:
    """A PyMySQL connection in autocommit, closed on exit; errors name the instance, not the password."""
    try:
        conn = pymysql.connect(
            host=target.host, port=target.port, user=target.user, password=target.password.reveal(),
            database=target.database, connect_timeout=timeout, read_timeout=max(timeout, 30),
            write_timeout=max(timeout, 30), autocommit=True, charset="utf8mb4",
        )
    except pymysql.MySQLError as exc:
        raise OpsbookError(
            f"cannot connect to the data plane of {target.describe()}: {exc.args[-1] if exc.args else exc}",
            remedy="check the tunnel or VPN, the endpoint in params (rds[].endpoint_override) and the password "
                   "in SSM (rds[].password_ssm)",
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def query(target: Target, sql: str, args: Any = None) -> list[dict[str, Any]]:
    with connect(target) as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


# --- canary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanaryRow:
    id: int
    run_id: str
    drill: str
    label: str
    written_at: datetime  # UTC, the database server's clock


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def write_canary(target: Target, run_id: str, drill: str, label: str) -> CanaryRow:
    """Insert one canary row stamped with the server's UTC time; create the table if missing."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute(canary_ddl())
        cur.execute(
            f"INSERT INTO `{CANARY_TABLE}` (run_id, drill, label, written_at) VALUES (%s, %s, %s, UTC_TIMESTAMP(6))",
            (run_id, drill, label),
        )
        row_id = cur.lastrowid
        cur.execute(f"SELECT written_at FROM `{CANARY_TABLE}` WHERE id = %s", (row_id,))
        (written_at,) = cur.fetchone()
    return CanaryRow(row_id, run_id, drill, label, _utc(written_at))


def read_canaries(target: Target, since: datetime | None = None, run_id: str | None = None) -> list[CanaryRow]:
    """Canary rows (optionally only a run's, or written since a time); [] when the table is absent."""
    where, args = [], []
    if since is not None:
        where.append("written_at >= %s")
        args.append(_utc(since).replace(tzinfo=None))
    if run_id is not None:
        where.append("run_id = %s")
        args.append(run_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                    "AND table_name = %s", (CANARY_TABLE,))
        if not cur.fetchone()[0]:
            return []
        cur.execute(f"SELECT id, run_id, drill, label, written_at FROM `{CANARY_TABLE}` {clause} ORDER BY id", args)
        return [CanaryRow(r[0], r[1], r[2], r[3], _utc(r[4])) for r in cur.fetchall()]


def server_now(target: Target) -> datetime:
    """The database server's UTC clock (canary times are on it)."""
    (now,) = query(target, "SELECT UTC_TIMESTAMP(6) AS now")[0].values()
    return _utc(now)


# --- fingerprints --------------------------------------------------------------------------


@dataclass(frozen=True)
class TableFingerprint:
    table: str
    rows: int | None  # None: the table does not exist
    checksum: str | None

    def same_as(self, other: TableFingerprint) -> bool:
        return (self.rows, self.checksum) == (other.rows, other.checksum)


def _columns(cur: Any, table: str) -> list[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = %s ORDER BY ordinal_position", (table,),
    )
    return [r[0] for r in cur.fetchall()]


def fingerprint(target: Target, tables: list[str]) -> dict[str, TableFingerprint]:
    """Row count and an order-independent hash of every row, per table, computed by the server."""
    out: dict[str, TableFingerprint] = {}
    with connect(target) as conn, conn.cursor() as cur:
        for table in tables:
            columns = _columns(cur, table)
            if not columns:
                out[table] = TableFingerprint(table, None, None)
                continue
            # COALESCE keeps NULLs apart from '' (CONCAT_WS skips NULLs); the separator keeps ('a','bc') apart from ('ab','c')
            parts = ", ".join(f"COALESCE(HEX(`{c}`), 'NULL')" for c in columns)
            cur.execute(
                f"SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT(MD5(CONCAT_WS('|', {parts})), 16), 16, 10) "
                f"AS UNSIGNED)), 0) FROM `{table}`"
            )
            rows, digest = cur.fetchone()
            out[table] = TableFingerprint(table, int(rows), f"{int(digest):016x}")
    return out


# --- probe ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeSample:
    at: float  # time.time()
    ok: bool
    error: str = ""


@dataclass
class Probe:
    """Connects and runs `SELECT 1` every `interval` seconds in a thread, keeping every outcome."""

    target: Target
    interval: float = 1.0
    timeout: float = 2.0
    samples: list[ProbeSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def _once(self) -> ProbeSample:
        at = time.time()
        try:
            conn = pymysql.connect(
                host=self.target.host, port=self.target.port, user=self.target.user,
                password=self.target.password.reveal(), database=self.target.database,
                connect_timeout=self.timeout, read_timeout=self.timeout, write_timeout=self.timeout,
            )
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchone()
            finally:
                conn.close()
            return ProbeSample(at, True)
        except (pymysql.MySQLError, OSError) as exc:
            return ProbeSample(at, False, str(exc.args[-1] if exc.args else exc)[:200])

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.samples.append(self._once())
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> Probe:
        self._thread = threading.Thread(target=self._run, name=f"probe-{self.target.instance}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + self.interval + 5)

    def recovered(self, after: float, streak: int = 3) -> bool:
        """True once the last `streak` samples taken after `after` all succeeded."""
        recent = [s for s in self.samples if s.at >= after]
        return len(recent) >= streak and all(s.ok for s in recent[-streak:])

    def outage(self) -> tuple[float | None, float | None]:
        """(first failed probe, first success after the last failure) as epoch seconds."""
        samples = list(self.samples)
        failures = [i for i, s in enumerate(samples) if not s.ok]
        if not failures:
            return None, None
        first = samples[failures[0]].at
        after = [s.at for s in samples[failures[-1] + 1:] if s.ok]
        return first, (after[0] if after else None)

    def downtime_s(self) -> float | None:
        """Seconds from the first failed query to the first success after it; 0 if none failed."""
        first, back = self.outage()
        if first is None:
            return 0.0
        return None if back is None else round(back - first, 3)


# --- reaching an instance ------------------------------------------------------------------


def target_for(env: Any, source: Any, described: dict[str, Any]) -> Target:
    """How to reach `described` (a DescribeDBInstances entry) for the params instance `source`.

    The source itself goes through `endpoint_override` when params set one; every other
    instance (a restored copy) through the endpoint RDS reports, via `tunnel_command` when
    params set one (see the module docstring).
    """
    identifier = described["DBInstanceIdentifier"]
    if identifier == source.identifier and source.endpoint_override:
        host, port = parse_hostport(source.endpoint_override)
    else:
        endpoint = described.get("Endpoint") or {}
        if not endpoint.get("Address"):
            raise OpsbookError(f"RDS reports no endpoint for {identifier} yet (status "
                               f"{described.get('DBInstanceStatus')!r})",
                               remedy=f"wait until it is available (aws rds wait db-instance-available "
                                      f"--db-instance-identifier {identifier}), then run again")
        host, port = endpoint["Address"], int(endpoint.get("Port") or 3306)
        if getattr(source, "tunnel_command", None):
            from opsbook.dataplane.tunnel import open_tunnel

            host, port = "127.0.0.1", open_tunnel(source.tunnel_command, host, port).local_port
    return Target(identifier, host, port, source.username, env.ssm_secret(source.password_ssm), source.database)
