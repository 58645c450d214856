"""The sandbox's RDS data plane: each moto RDS instance is a database on the real MariaDB.

Layout (per running sandbox, under a namespace token such as `ob1a2b3c`, so several
sandboxes can share one MariaDB server without seeing each other):

- every RDS instance gets a physical database `<token>_i<N>` per logical database and its
  own loopback endpoint (`mysql_proxy.MySQLProxy`); moto reports that endpoint as the
  instance's `Endpoint`, so the library connects exactly where RDS says;
- every instance has users of its own, as on RDS (the users live in the instance's own
  `mysql` schema): the application user `rds[].username` of a params instance is a
  physical user `<token>_u<N>` of that instance alone, with the password the AWS seed put
  in its SSM SecureString `rds[].password_ssm`, granted that instance's databases only.
  Two instances with the same user name and different passwords each keep their own;
  the proxy of an instance renames its users and databases during the handshake;
- a snapshot keeps the instance's users as they were (their password hashes), and an
  instance restored from it (or to a point in time) starts with its source's users, as
  an RDS restore brings back the source's `mysql` schema;
- a params instance is seeded with the tables `rds[].tables`, whatever their names, in
  one generic schema (`SEED_SCHEMA`, a few hundred rows each); tables that clients create
  later (a drill's canary table) are versioned by the proxy.

Every table is system-versioned (MariaDB `WITH SYSTEM VERSIONING`): the server keeps each
row's history with its commit time. That is the point-in-time method: a snapshot is the
instance's tables `FOR SYSTEM_TIME AS OF` the snapshot's time, copied into `<token>_s<N>`;
restoring a snapshot copies it into the new instance's database; a point-in-time restore
copies the source's tables `AS OF` the requested time (inserts, updates and deletes all
honoured, consistent across tables).

moto runs in this process (`sandbox/aws.py`), so the service wraps moto's RDS backend
methods (create, snapshot, restore, point-in-time restore, delete) and the reboot
response (ForceFailover) to keep the data plane in step. A forced failover of a Multi-AZ
instance swaps its AZ with the standby's, shows it `rebooting` and has its endpoint refuse
connections for `FAILOVER_WINDOW_S`. Automated backups get a `RestoreWindow` (instance
creation to now), which moto leaves out.

Namespaces of sandboxes whose process is gone are dropped when the next one starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pymysql

from opsbook.params import RdsInstance
from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.local_servers import MARIADB, mariadb_admin, pid_alive
from opsbook.sandbox.rds.mysql_proxy import MySQLProxy
from opsbook.sandbox.services import SERVICES

log = logging.getLogger(__name__)

REGISTRY_DB = "opsbook_sandbox"
FAILOVER_WINDOW_S = 3.0
SEED_ROWS = 300
VERSIONED = "WITH SYSTEM VERSIONING"

# The one schema every seeded table gets, whatever params call it: RDS holds the estate's own
# schema; the drills only count, checksum and compare rows.
SEED_SCHEMA = ("id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(80) NOT NULL, "
               "value INT NOT NULL, created_at DATETIME(6) NOT NULL")


def _rows(table: str, rng: random.Random, n: int) -> list[tuple]:
    start = datetime(2024, 1, 1)
    return [(f"{table} {i}", rng.randint(0, 10**6), start + timedelta(minutes=rng.randint(0, 500_000)))
            for i in range(n)]


def _like(token: str) -> str:
    return token.replace("_", "\\_") + "\\_%"


def drop_namespace(cur: Any, token: str) -> None:
    cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s", (_like(token),))
    for (name,) in cur.fetchall():
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    cur.execute("SELECT user, host FROM mysql.user WHERE user LIKE %s", (_like(token),))
    for user, host in cur.fetchall():
        cur.execute("DROP USER IF EXISTS %s@%s", (user, host))


@dataclass
class InstancePlane:
    identifier: str
    proxy: MySQLProxy
    databases: dict[str, str] = field(default_factory=dict)  # logical -> physical
    users: dict[str, str] = field(default_factory=dict)  # logical -> physical (this instance's own)


def _grant(cur: Any, plane: InstancePlane) -> None:
    """The instance's users get its databases (and no other instance's)."""
    for user in plane.users.values():
        for physical in plane.databases.values():
            cur.execute(f"GRANT ALL PRIVILEGES ON `{physical}`.* TO %s@'%%'", (user,))


def _password_hash(cur: Any, user: str) -> str | None:
    cur.execute("SELECT authentication_string FROM mysql.user WHERE user = %s AND host = '%%'", (user,))
    row = cur.fetchone()
    return row[0] if row else None


@dataclass
class Snapshot:
    databases: dict[str, str]  # logical -> physical copy
    users: dict[str, str]  # logical user -> password hash, as at the snapshot


@SERVICES.register("rds-dataplane")
class RdsDataPlane:
    """MariaDB-backed data plane for moto's RDS instances (see the module docstring)."""

    name = "rds-dataplane"
    needs = ("aws",)

    def __init__(self) -> None:
        self.token = "ob" + secrets.token_hex(3)
        self.instances: dict[str, InstancePlane] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.params: Any = None
        self.env: dict[str, str] = {}
        self._counter = 0
        self._lock = threading.RLock()
        self._timers: list[threading.Timer] = []

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        self.params = ctx.params
        self.env = dict(ctx.env)
        with mariadb_admin() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{REGISTRY_DB}`")
            cur.execute(f"CREATE TABLE IF NOT EXISTS `{REGISTRY_DB}`.namespaces (token VARCHAR(16) PRIMARY KEY, "
                        "pid INT NOT NULL, started_at DATETIME NOT NULL)")
            cur.execute(f"SELECT token, pid FROM `{REGISTRY_DB}`.namespaces")
            for token, pid in cur.fetchall():
                if not pid_alive(pid):
                    drop_namespace(cur, token)
                    cur.execute(f"DELETE FROM `{REGISTRY_DB}`.namespaces WHERE token = %s", (token,))
            cur.execute(f"INSERT INTO `{REGISTRY_DB}`.namespaces VALUES (%s, %s, UTC_TIMESTAMP())",
                        (self.token, os.getpid()))
        from opsbook.sandbox.rds import hooks as rds_hooks

        rds_hooks.activate(self)
        backend = self.backend()
        for instance in list(backend.databases.values()):
            self.ensure_instance(instance)
        for spec in self.params.rds:
            self.seed(spec)
        return {}

    def stop(self) -> None:
        from opsbook.sandbox.rds import hooks as rds_hooks

        rds_hooks.deactivate(self)
        for timer in self._timers:
            timer.cancel()
        with self._lock:
            for plane in self.instances.values():
                plane.proxy.stop()
            self.instances.clear()
        with contextlib.suppress(pymysql.MySQLError), mariadb_admin() as cur:
            drop_namespace(cur, self.token)
            cur.execute(f"DELETE FROM `{REGISTRY_DB}`.namespaces WHERE token = %s", (self.token,))

    def backend(self, region: str | None = None) -> Any:
        from moto.backends import get_backend

        return get_backend("rds")[self.params.account_id][region or self.params.region]

    # --- naming --------------------------------------------------------------------------

    def _next(self, kind: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{self.token}_{kind}{self._counter}"

    # --- instances -----------------------------------------------------------------------

    def ensure_instance(self, instance: Any, logical: list[str] | None = None) -> InstancePlane:
        """An endpoint (proxy) and empty physical databases for a moto DB instance."""
        with self._lock:
            plane = self.instances.get(instance.db_instance_identifier)
            if plane is None:
                names = logical if logical is not None else ([instance.db_name] if instance.db_name else [])
                databases = {name: self._next("i") for name in names}
                users: dict[str, str] = {}
                proxy = MySQLProxy(instance.db_instance_identifier, MARIADB, users, databases)
                plane = InstancePlane(instance.db_instance_identifier, proxy, databases, users)
                self.instances[plane.identifier] = plane
                with mariadb_admin() as cur:
                    for physical in databases.values():
                        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{physical}`")
            instance.sandbox_endpoint_host = "127.0.0.1"
            instance.port = plane.proxy.port
            if instance.multi_az and not getattr(instance, "secondary_availability_zone", None):
                others = [az for az in self.params.network.azs if az != instance.availability_zone]
                instance.secondary_availability_zone = others[0] if others else None
            elif not instance.multi_az:
                instance.secondary_availability_zone = None
            return plane

    def seed(self, spec: RdsInstance) -> bool:
        """The application user (password from SSM) and the seeded tables of a params instance."""
        instance = self.backend().databases.get(spec.identifier)
        if instance is None:
            log.info("rds-dataplane: %s is not in moto (not seeded); skipped", spec.identifier)
            return False
        ssm = boto3.client(
            "ssm", region_name=self.params.region, endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id=self.env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=self.env.get("AWS_SESSION_TOKEN"))
        try:
            password = ssm.get_parameter(Name=spec.password_ssm, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            log.info("rds-dataplane: SSM %s missing; %s has no application user", spec.password_ssm, spec.identifier)
            return False
        plane = self.ensure_instance(instance, [spec.database])
        physical_db = plane.databases.setdefault(spec.database, self._next("i"))
        with mariadb_admin() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{physical_db}`")
            self._add_user(cur, plane, spec.username, password=password)
            rng = random.Random(spec.identifier)
            for table in spec.tables:
                cur.execute(f"CREATE TABLE IF NOT EXISTS `{physical_db}`.`{table}` ({SEED_SCHEMA}) {VERSIONED}")
                cur.execute(f"SELECT COUNT(*) FROM `{physical_db}`.`{table}`")
                if cur.fetchone()[0] == 0:
                    cur.executemany(f"INSERT INTO `{physical_db}`.`{table}` (name, value, created_at) "
                                    "VALUES (%s, %s, %s)", _rows(table, rng, SEED_ROWS))
        return True

    def _add_user(self, cur: Any, plane: InstancePlane, username: str, password: str = "",
                  password_hash: str = "") -> None:
        """A user of this instance only (a physical user of its own), granted its databases."""
        user = plane.users.get(username) or self._next("u")
        if password_hash:
            cur.execute("CREATE OR REPLACE USER %s@'%%' IDENTIFIED BY PASSWORD %s", (user, password_hash))
        else:
            cur.execute("CREATE OR REPLACE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        plane.users[username] = user
        _grant(cur, plane)

    def _users_of(self, plane: InstancePlane) -> dict[str, str]:
        """The instance's users as they are now: logical name -> password hash."""
        with mariadb_admin() as cur:
            hashes = {name: _password_hash(cur, user) for name, user in plane.users.items()}
        return {name: h for name, h in hashes.items() if h}

    def _inherit(self, plane: InstancePlane, users: dict[str, str]) -> None:
        """A restored instance starts with its source's users (their passwords as they were)."""
        with mariadb_admin() as cur:
            for name, password_hash in users.items():
                self._add_user(cur, plane, name, password_hash=password_hash)

    def drop_instance(self, identifier: str) -> None:
        with self._lock:
            plane = self.instances.pop(identifier, None)
        if plane is None:
            return
        plane.proxy.stop()
        with mariadb_admin() as cur:
            for physical in plane.databases.values():
                cur.execute(f"DROP DATABASE IF EXISTS `{physical}`")
            for user in plane.users.values():
                cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))

    # --- data movement -------------------------------------------------------------------

    @staticmethod
    def copy_database(source: str, target: str, as_of: datetime | None) -> None:
        """Copy every table of `source` into a fresh `target`, as of a UTC time (versioned tables)."""
        stamp = as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if as_of else None
        with mariadb_admin() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{target}`")
            cur.execute(f"CREATE DATABASE `{target}`")
            cur.execute("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s",
                        (source,))
            for table, kind in cur.fetchall():
                cur.execute(f"CREATE TABLE `{target}`.`{table}` LIKE `{source}`.`{table}`")
                when = f" FOR SYSTEM_TIME AS OF TIMESTAMP '{stamp}'" if stamp and kind == "SYSTEM VERSIONED" else ""
                cur.execute(f"INSERT INTO `{target}`.`{table}` SELECT * FROM `{source}`.`{table}`{when}")

    def capture_snapshot(self, instance_id: str, snapshot_id: str, at: datetime) -> None:
        plane = self.instances.get(instance_id)
        if plane is None:
            return
        copies = {}
        for logical, physical in plane.databases.items():
            copies[logical] = self._next("s")
            self.copy_database(physical, copies[logical], at)
        self.snapshots[snapshot_id] = Snapshot(copies, self._users_of(plane))

    def drop_snapshot(self, snapshot_id: str) -> None:
        snapshot = self.snapshots.pop(snapshot_id, None)
        with mariadb_admin() as cur:
            for physical in (snapshot.databases if snapshot else {}).values():
                cur.execute(f"DROP DATABASE IF EXISTS `{physical}`")

    def restore_snapshot(self, snapshot_id: str, instance: Any) -> None:
        snapshot = self.snapshots.get(snapshot_id) or Snapshot({}, {})
        plane = self.ensure_instance(instance, list(snapshot.databases))
        for logical, physical in snapshot.databases.items():
            target = plane.databases.setdefault(logical, self._next("i"))
            self.copy_database(physical, target, None)
        self._inherit(plane, snapshot.users)

    def restore_to_time(self, source_id: str, instance: Any, at: datetime) -> None:
        source = self.instances.get(source_id)
        logical = list(source.databases) if source else []
        plane = self.ensure_instance(instance, logical)
        if source is None:
            return
        for name, physical in source.databases.items():
            target = plane.databases.setdefault(name, self._next("i"))
            self.copy_database(physical, target, at)
        self._inherit(plane, self._users_of(source))

    # --- failover ------------------------------------------------------------------------

    def failover(self, instance: Any) -> None:
        """Swap to the standby's AZ; `rebooting` and refusing connections for the window."""
        plane = self.instances.get(instance.db_instance_identifier)
        standby = instance.secondary_availability_zone
        instance.secondary_availability_zone = instance.availability_zone
        instance.availability_zone = standby
        instance.status = "rebooting"
        if plane is not None:
            plane.proxy.refuse_for(FAILOVER_WINDOW_S)

        def back() -> None:
            if instance.status == "rebooting":
                instance.status = "available"

        timer = threading.Timer(FAILOVER_WINDOW_S, back)
        timer.daemon = True
        timer.start()
        self._timers.append(timer)
