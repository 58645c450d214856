"""What lives on the sandbox's EBS volumes: RabbitMQ vhosts and MariaDB databases on the real servers.

Each namespace's broker is a vhost and each microservice database a MariaDB database on
this machine's servers, named by the same params templates the library reads
(`stateful_access.rabbitmq.vhost`, `stateful_access.mysql.database`), so the library
reaches a restored namespace exactly as it reaches the source.

- `seed()` makes the params namespaces' vhosts (exchanges, queues, bindings, policies of
  one generic shape) and databases (a table with rows), the users the params name, and
  puts their passwords into the SSM SecureStrings the params point at. A user and its
  password are the same for every sandbox on the machine (several may run at once); it
  is granted the vhosts and databases the sandbox made, one by one. The passwords are
  long and not words, so the secret scan of run outputs still means something.
- The vhosts and databases of params are claimed in the registry, and the last live
  sandbox claiming one drops it when it stops. Sandboxes whose params name the same ones
  (one env twice, or a variant that `extends:` it) share them; envs with templates of
  their own (`stateful_access.rabbitmq.vhost`, `stateful_access.mysql.database`) never
  touch each other's.
- A volume snapshot copies the workload's data: the vhost's definitions and queued
  messages (to a JSON file in the state folder), or the database's tables (into a
  MariaDB database `<token>_snap_<n>`).
- Restoring a volume from that snapshot loads it into the vhost/database of the target
  namespace. Deleting the namespace drops them (the volume is gone); deleting the
  snapshot drops its copy; `stop()` drops everything this sandbox made, and the next
  sandbox drops what a dead one left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

import pymysql

from opsbook.errors import OpsbookError
from opsbook.params import Params
from opsbook.sandbox.local_servers import RabbitAdmin, mariadb_admin, pid_alive

log = logging.getLogger(__name__)

REGISTRY_DB = "opsbook_sandbox"
REGISTRY_TABLE = "velero_dataplane"
MESSAGE_LIMIT = 1000  # messages kept per queue in a snapshot

# The source brokers' shape: a generic one, the same for every broker namespace (no name of it
# comes from params or is expected in them; it only gives a backup something to carry).
SOURCE_DEFINITIONS: dict[str, list[dict[str, Any]]] = {
    "exchanges": [
        {"name": "events", "type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}},
        {"name": "events.dlx", "type": "fanout", "durable": True, "auto_delete": False, "internal": False,
         "arguments": {}},
        {"name": "commands", "type": "direct", "durable": True, "auto_delete": False, "internal": False,
         "arguments": {}},
    ],
    "queues": [
        {"name": "events.outbound", "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "classic"}},
        {"name": "events.inbound", "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "classic"}},
        {"name": "events.status", "durable": True, "auto_delete": False, "arguments": {}},
        {"name": "events.dead-letter", "durable": True, "auto_delete": False, "arguments": {}},
        {"name": "commands.work", "durable": True, "auto_delete": False, "arguments": {}},
        {"name": "jobs.batch", "durable": True, "auto_delete": False, "arguments": {"x-max-priority": 5}},
    ],
    "bindings": [
        {"source": "events", "destination": "events.outbound", "destination_type": "queue",
         "routing_key": "out.#", "arguments": {}},
        {"source": "events", "destination": "events.inbound", "destination_type": "queue",
         "routing_key": "in.#", "arguments": {}},
        {"source": "events", "destination": "events.status", "destination_type": "queue",
         "routing_key": "status.*", "arguments": {}},
        {"source": "events.dlx", "destination": "events.dead-letter", "destination_type": "queue",
         "routing_key": "", "arguments": {}},
        {"source": "commands", "destination": "commands.work", "destination_type": "queue",
         "routing_key": "work", "arguments": {}},
    ],
    "policies": [
        {"name": "events-dead-letter", "pattern": "^events\\.(outbound|inbound)$", "apply-to": "queues",
         "definition": {"dead-letter-exchange": "events.dlx"}, "priority": 1},
        {"name": "jobs-ttl", "pattern": "^jobs\\.", "apply-to": "queues",
         "definition": {"message-ttl": 86400000}, "priority": 0},
    ],
}
SOURCE_TABLE = "events"
SOURCE_TABLE_DDL = ("id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(32) NOT NULL, "
                    "payload VARCHAR(200) NOT NULL, created_at DATETIME(6) NOT NULL")
SOURCE_ROWS = 50


def sandbox_password(what: str) -> str:
    """The fixed password of a sandbox data-plane user (the same for every sandbox on the machine)."""
    return "sbx" + hashlib.sha256(f"opsbook sandbox data plane {what}".encode()).hexdigest()[:29]


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class DataPlane:
    """The data of the sandbox's stateful workloads (see the module docstring)."""

    def __init__(self, params: Params, state_dir: Path) -> None:
        self.params = params
        self.access = params.stateful_access
        self.token = "vb" + secrets.token_hex(3)
        self.snap_dir = state_dir / "velero-volume-snapshots"
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.rabbit = RabbitAdmin()
        self._lock = threading.RLock()
        self._counter = 0
        self.snapshots: dict[str, dict[str, Any]] = {}  # snapshot id -> what it holds
        self.restored: dict[str, set[tuple[str, str]]] = {}  # namespace -> {(kind, name)}
        if not self.access.rabbitmq.vhost:
            raise ValueError(f"{params.source}: the sandbox needs stateful_access.rabbitmq.vhost (one vhost per "
                             "namespace on the local RabbitMQ), e.g. 'sandbox.{namespace}'")

    # --- names ---------------------------------------------------------------------------------

    def vhost(self, namespace: str, service: str) -> str:
        return (self.access.rabbitmq.vhost or "").format(namespace=namespace, service=service, database="")

    def database(self, namespace: str, service: str, database: str = "") -> str:
        db = database or namespace.replace("-", "_")
        return self.access.mysql.database.format(namespace=namespace, service=service, database=db)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, ssm: Any) -> None:
        """Users and their passwords in SSM, leftovers of dead sandboxes dropped, sources seeded."""
        try:
            self._register()
            self._users(ssm)
            self.seed()
        except (pymysql.MySQLError, OSError, OpsbookError) as exc:
            raise OpsbookError(
                "the sandbox's stateful data plane needs MariaDB on 127.0.0.1:3306 (root, no password) and "
                "RabbitMQ on 127.0.0.1:5672 with its management plugin on :15672 (guest/guest): run "
                f"`make services` (scripts/services.sh). The error: {exc}") from None

    def _register(self) -> None:
        with mariadb_admin() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {_q(REGISTRY_DB)}")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {_q(REGISTRY_DB)}.{_q(REGISTRY_TABLE)} ("
                        "token VARCHAR(16) NOT NULL, pid INT NOT NULL, kind VARCHAR(16) NOT NULL, "
                        "name VARCHAR(128) NOT NULL, PRIMARY KEY (token, kind, name))")
            cur.execute(f"SELECT DISTINCT token, pid FROM {_q(REGISTRY_DB)}.{_q(REGISTRY_TABLE)}")
            dead = [token for token, pid in cur.fetchall() if not pid_alive(pid)]
        for token in dead:
            self._drop_registered(token)
        self._record("sandbox", self.token)
        for kind, name in sorted(set(self.sources())):
            self._record(f"source-{kind}", name)

    def sources(self) -> list[tuple[str, str]]:
        """(kind, name) of the vhost or database of every stateful workload in params."""
        return [("vhost", self.vhost(ns.name, w.name)) if w.kind == "rabbitmq" else
                ("database", self.database(ns.name, w.name, w.database_name(ns.name)))
                for ns in self.params.namespaces for w in ns.stateful]

    def _claimed_by_others(self, token: str) -> set[tuple[str, str]]:
        """(kind, name) of the sources that live sandboxes other than `token` claim."""
        table = f"{_q(REGISTRY_DB)}.{_q(REGISTRY_TABLE)}"
        with mariadb_admin() as cur:
            cur.execute(f"SELECT token, pid, kind, name FROM {table} WHERE kind LIKE 'source-%%' AND token <> %s",
                        (token,))
            return {(kind, name) for _, pid, kind, name in cur.fetchall() if pid_alive(pid)}

    def _record(self, kind: str, name: str) -> None:
        with mariadb_admin() as cur:
            cur.execute(f"REPLACE INTO {_q(REGISTRY_DB)}.{_q(REGISTRY_TABLE)} VALUES (%s, %s, %s, %s)",
                        (self.token, os.getpid(), kind, name))

    def _forget(self, kind: str, name: str) -> None:
        with mariadb_admin() as cur:
            cur.execute(f"DELETE FROM {_q(REGISTRY_DB)}.{_q(REGISTRY_TABLE)} WHERE token = %s AND kind = %s "
                        "AND name = %s", (self.token, kind, name))

    def _drop_registered(self, token: str) -> None:
        """Drop what a sandbox made, and its sources unless another live sandbox still uses them."""
        with mariadb_admin() as cur:
            cur.execute(f"SELECT kind, name FROM {_q(REGISTRY_DB)}.{_q(REGISTRY_TABLE)} WHERE token = %s", (token,))
            rows = cur.fetchall()
        shared = self._claimed_by_others(token)
        for kind, name in rows:
            if (kind, name) in shared:
                continue
            with contextlib.suppress(Exception):
                self._drop(kind.removeprefix("source-"), name)
        with mariadb_admin() as cur:
            cur.execute(f"DELETE FROM {_q(REGISTRY_DB)}.{_q(REGISTRY_TABLE)} WHERE token = %s", (token,))

    def _drop(self, kind: str, name: str) -> None:
        if kind == "database":
            with mariadb_admin() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {_q(name)}")
        elif kind == "vhost":
            self.rabbit.delete_vhost(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._drop_registered(self.token)

    def _users(self, ssm: Any) -> None:
        rabbit, mysql = self.access.rabbitmq, self.access.mysql
        if rabbit.password_ssm:
            password = sandbox_password("rabbitmq " + rabbit.username)
            ssm.put_parameter(Name=rabbit.password_ssm, Value=password, Type="SecureString", Overwrite=True)
            self.rabbit.put_user(rabbit.username, password, "administrator")
        if mysql.password_ssm:
            password = sandbox_password("mysql " + mysql.username)
            ssm.put_parameter(Name=mysql.password_ssm, Value=password, Type="SecureString", Overwrite=True)
            with mariadb_admin() as cur:
                cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (mysql.username, password))
                cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (mysql.username, password))

    def _grant(self, cur: Any, database: str) -> None:
        """The params' MySQL user (made when params give its password) gets this database, and
        only the ones the sandbox made."""
        if self.access.mysql.password_ssm:
            cur.execute(f"GRANT ALL PRIVILEGES ON {_q(database).replace('%', '%%')}.* TO %s@'%%'",
                        (self.access.mysql.username,))

    # --- the sources -------------------------------------------------------------------------

    def seed(self) -> None:
        """The vhost or database of every stateful workload in params (idempotent, shared by sandboxes)."""
        for kind, name in self.sources():
            (self._seed_vhost if kind == "vhost" else self._seed_database)(name)

    def _seed_vhost(self, vhost: str) -> None:
        self.rabbit.ensure_vhost(vhost, "opsbook sandbox broker")
        self.rabbit.grant(self.access.rabbitmq.username, vhost)
        self.rabbit.load_definitions(vhost, SOURCE_DEFINITIONS)

    def _seed_database(self, database: str) -> None:
        with mariadb_admin() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {_q(database)}")
            self._grant(cur, database)
            cur.execute(f"CREATE TABLE IF NOT EXISTS {_q(database)}.{_q(SOURCE_TABLE)} ({SOURCE_TABLE_DDL})")
            cur.execute(f"SELECT COUNT(*) FROM {_q(database)}.{_q(SOURCE_TABLE)}")
            if cur.fetchone()[0] == 0:
                rows = [(("created", "updated", "sent")[i % 3], f"seed event {i}") for i in range(SOURCE_ROWS)]
                cur.executemany(f"INSERT INTO {_q(database)}.{_q(SOURCE_TABLE)} (kind, payload, created_at) "
                                "VALUES (%s, %s, UTC_TIMESTAMP(6))", rows)

    # --- snapshots and restores --------------------------------------------------------------

    def snapshot(self, snapshot_id: str, kind: str, namespace: str, service: str,
                 cache: dict[Any, Any] | None = None) -> dict[str, Any]:
        """Copy what the workload's volume holds now; returns a summary.

        `cache` (one per backup) reads a broker once for all of its replicas' volumes.
        """
        with self._lock:
            self._counter += 1
            n = self._counter
        if kind == "rabbitmq":
            key = (kind, namespace, service)
            if cache is not None and key in cache:
                content = cache[key]
            else:
                content = self._read_broker(self.vhost(namespace, service))
                if cache is not None:
                    cache[key] = content
            path = self.snap_dir / f"{snapshot_id}.json"
            path.write_text(json.dumps(content))
            summary = {"kind": kind, "file": str(path),
                       "messages": sum(len(m) for m in content["messages"].values())}
        else:
            schema = self._db_name(namespace, service)
            source = self.database(namespace, service, schema)
            copy = f"{self.token}_snap_{n}"
            self._record("database", copy)
            tables = self._copy_database(source, copy)
            # the schema inside the pod's volume keeps its name wherever the volume is restored
            summary = {"kind": kind, "database": copy, "tables": tables, "schema": schema}
        with self._lock:
            self.snapshots[snapshot_id] = summary
        return summary

    def _read_broker(self, vhost: str) -> dict[str, Any]:
        if not self.rabbit.vhost_exists(vhost):
            return {"kind": "rabbitmq", "definitions": {}, "messages": {}}
        defs = self.rabbit.definitions(vhost)
        # every queue is read: the API's message counts lag by seconds
        return {"kind": "rabbitmq", "definitions": {k: v for k, v in defs.items() if k != "vhosts"},
                "messages": self.rabbit.copy_messages(vhost, MESSAGE_LIMIT)}

    def _db_name(self, namespace: str, service: str) -> str:
        for ns in self.params.namespaces:
            if ns.name == namespace:
                for workload in ns.stateful:
                    if workload.name == service:
                        return workload.database_name(namespace)
        return ""

    def _copy_database(self, source: str, target: str) -> list[str]:
        with mariadb_admin() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {_q(target)}")
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                        "AND table_type = 'BASE TABLE'", (source,))
            tables = [r[0] for r in cur.fetchall()]
            for table in tables:
                cur.execute(f"CREATE TABLE {_q(target)}.{_q(table)} LIKE {_q(source)}.{_q(table)}")
                cur.execute(f"INSERT INTO {_q(target)}.{_q(table)} SELECT * FROM {_q(source)}.{_q(table)}")
        return tables

    def has_snapshot(self, snapshot_id: str) -> bool:
        with self._lock:
            return snapshot_id in self.snapshots

    def restore(self, snapshot_id: str, namespace: str, service: str) -> str:
        """Load a snapshot's copy into the target namespace's vhost/database; returns its name."""
        with self._lock:
            summary = self.snapshots.get(snapshot_id)
        if summary is None:
            raise LookupError(f"the sandbox holds no data for snapshot {snapshot_id}")
        if summary["kind"] == "rabbitmq":
            vhost = self.vhost(namespace, service)
            self._restored(namespace, "vhost", vhost)
            if self.rabbit.vhost_exists(vhost):
                return vhost  # another replica's volume already brought the broker's data
            content = json.loads(Path(summary["file"]).read_text())
            self.rabbit.ensure_vhost(vhost, f"opsbook sandbox broker restored from {snapshot_id}")
            self.rabbit.grant(self.access.rabbitmq.username, vhost)
            if content["definitions"]:
                self.rabbit.load_definitions(vhost, content["definitions"])
            for queue, messages in content["messages"].items():
                self.rabbit.put_messages(vhost, queue, messages)
            return vhost
        database = self.database(namespace, service, summary.get("schema") or self._db_name(namespace, service))
        self._restored(namespace, "database", database)
        with mariadb_admin() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (database,))
            if cur.fetchone()[0]:
                return database
        self._copy_database(summary["database"], database)
        with mariadb_admin() as cur:
            self._grant(cur, database)
        return database

    def _restored(self, namespace: str, kind: str, name: str) -> None:
        self._record(kind, name)
        with self._lock:
            self.restored.setdefault(namespace, set()).add((kind, name))

    def drop_snapshot(self, snapshot_id: str) -> None:
        with self._lock:
            summary = self.snapshots.pop(snapshot_id, None)
        if summary is None:
            return
        if summary["kind"] == "rabbitmq":
            Path(summary["file"]).unlink(missing_ok=True)
        else:
            self._drop("database", summary["database"])
            self._forget("database", summary["database"])

    def drop_namespace(self, namespace: str) -> list[str]:
        """The namespace is gone, and with it its volumes: drop what was restored into it."""
        with self._lock:
            items = self.restored.pop(namespace, set())
        for kind, name in sorted(items):
            try:
                self._drop(kind, name)
                self._forget(kind, name)
            except Exception:  # best effort: stop() and the next sandbox retry
                log.warning("velero dataplane: could not drop %s %s", kind, name, exc_info=True)
        return [name for _, name in sorted(items)]

    def restored_into(self, namespace: str) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self.restored.get(namespace, set()))
