"""Two sandboxes of different envs at once on one machine, and a data plane that follows params.

Two generated estates run side by side (`opsbook sandbox up`: a process each). The first is
given two RDS instances with the same application user name, each with its own password in
SSM. Checked with boto3, PyMySQL and the RabbitMQ management API, from what each sandbox
reports (its state file) and what its params name:

- ports, state folders, RDS endpoints and physical databases are each sandbox's own;
- every RDS instance of params takes its own user with its own password (and not the
  other's); an instance restored from a snapshot has its source's users as they were at the
  snapshot, as RDS restores the source's `mysql` schema;
- every stateful namespace of params has its vhost or database, and no vhost or database
  of one estate is the other's; a third env whose params name the second's (as a variant
  that `extends:` an env does) shares them, and stopping it leaves them to the second;
- stopping one leaves the other's data and endpoints working, and takes its own away.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import pymysql
import requests
from opsbook.params import Params
from opsbook.sandbox import attach

from tests.estates.conftest import BASE_SEED, start_estate

MGMT = ("http://127.0.0.1:15672", ("guest", "guest"))


def client(params: Params, service: str) -> Any:
    env = attach.running_daemon(params.env)["env"]
    return boto3.client(service, region_name=params.region, endpoint_url=env["AWS_ENDPOINT_URL"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=env.get("AWS_SESSION_TOKEN"))


def password(params: Params, name: str) -> str:
    return client(params, "ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def connect(params: Params, identifier: str, user: str, secret: str, database: str) -> pymysql.Connection:
    endpoint = client(params, "rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["Endpoint"]
    return pymysql.connect(host=endpoint["Address"], port=endpoint["Port"], user=user, password=secret,
                           database=database, autocommit=True, connect_timeout=5)


def denied(params: Params, identifier: str, user: str, secret: str, database: str) -> bool:
    try:
        connect(params, identifier, user, secret, database).close()
    except pymysql.err.OperationalError as exc:
        return exc.args[0] == 1045
    return False


def sources(params: Params) -> tuple[set[str], set[str]]:
    """The vhosts and databases params name for the estate's stateful workloads."""
    access = params.stateful_access
    vhosts, databases = set(), set()
    for ns in params.namespaces:
        for w in ns.stateful:
            if w.kind == "rabbitmq":
                vhosts.add(access.rabbitmq.vhost.format(namespace=ns.name, service=w.name, database=""))
            else:
                databases.add(access.mysql.database.format(namespace=ns.name, service=w.name,
                                                           database=w.database_name(ns.name)))
    return vhosts, databases


def existing() -> tuple[set[str], set[str]]:
    vhosts = {v["name"] for v in requests.get(f"{MGMT[0]}/api/vhosts", auth=MGMT[1], timeout=10).json()}
    with pymysql.connect(host="127.0.0.1", user="root", password="") as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return vhosts, {row[0] for row in cur.fetchall()}


def same_user_twice(data: dict) -> None:
    """Two RDS instances with one user name, each its own password parameter."""
    first = data["rds"][0]
    second = dict(data["rds"][1]) if len(data["rds"]) > 1 else dict(first, identifier=first["identifier"] + "-two")
    second["username"] = first["username"]
    second["password_ssm"] = f"{data['ssm']['prefix']}/rds/{second['identifier']}/second-password"
    data["rds"] = [first, second, *data["rds"][2:]]
    for key in ("required", "secure"):
        data["ssm"][key] = list(dict.fromkeys([*data["ssm"][key], second["password_ssm"]]))


def check_users_per_instance(params: Params) -> None:
    one, two = params.rds[0], params.rds[1]
    assert one.username == two.username
    first, second = password(params, one.password_ssm), password(params, two.password_ssm)
    assert first != second
    for spec, mine, other in ((one, first, second), (two, second, first)):
        with connect(params, spec.identifier, spec.username, mine, spec.database) as conn, conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            assert {r[0] for r in cur.fetchall()} >= set(spec.tables)
        assert denied(params, spec.identifier, spec.username, other, spec.database), \
            f"{spec.identifier} took the other instance's password"


def check_restore_inherits_users(params: Params) -> None:
    spec = params.rds[0]
    old, new = password(params, spec.password_ssm), "changed-" + str(int(time.time()))
    rds = client(params, "rds")
    snap, restored = f"{spec.identifier}-users", f"{spec.identifier}-users-restored"
    rds.create_db_snapshot(DBSnapshotIdentifier=snap, DBInstanceIdentifier=spec.identifier)
    with connect(params, spec.identifier, spec.username, old, spec.database) as conn, conn.cursor() as cur:
        cur.execute("SET PASSWORD = PASSWORD(%s)", (new,))  # after the snapshot
    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=restored, DBSnapshotIdentifier=snap)
    assert connect(params, restored, spec.username, old, spec.database).open
    assert denied(params, restored, spec.username, new, spec.database)
    assert connect(params, spec.identifier, spec.username, new, spec.database).open
    assert denied(params, spec.identifier, spec.username, old, spec.database)


def write_probe(params: Params, table: str) -> None:
    spec = params.rds[0]
    secret = password(params, spec.password_ssm)
    with connect(params, spec.identifier, spec.username, secret, spec.database) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{table}` (id INT PRIMARY KEY)")


def has_table(params: Params, table: str) -> bool:
    spec = params.rds[0]
    secret = password(params, spec.password_ssm)
    with connect(params, spec.identifier, spec.username, secret, spec.database) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        return table in {r[0] for r in cur.fetchall()}


def test_two_estates_run_at_once_without_touching_each_other(tmp_path: Path, estate_sandboxes) -> None:
    first = start_estate(BASE_SEED + 100, tmp_path / "a", edit=same_user_twice)
    estate_sandboxes.append(first)
    second = start_estate(BASE_SEED + 101, tmp_path / "b")
    estate_sandboxes.append(second)
    states = [attach.running_daemon(p.env) for p in (first, second)]
    assert all(states) and states[0]["pid"] != states[1]["pid"]
    ports = [{k: v for k, v in s["env"].items() if k.startswith("AWS_ENDPOINT_URL")} for s in states]
    assert not set(ports[0].values()) & set(ports[1].values()), "the two sandboxes share an endpoint"
    assert states[0]["env"]["KUBECONFIG"] != states[1]["env"]["KUBECONFIG"]
    assert attach.state_file(first.env) != attach.state_file(second.env)

    probe = f"probe_{BASE_SEED}"
    write_probe(first, probe)
    assert has_table(first, probe) and not has_table(second, probe), "the RDS data planes are shared"
    check_users_per_instance(first)
    check_restore_inherits_users(first)  # changes the first instance's password: last use of it

    vhosts, databases = existing()
    for params in (first, second):
        want_vhosts, want_databases = sources(params)
        assert want_vhosts <= vhosts and want_databases <= databases, f"{params.env}: a stateful source is missing"
    assert not (set().union(*sources(first)) & set().union(*sources(second)))


    # a third env naming the second's vhosts and databases shares them; stopping it keeps them
    third = start_estate(BASE_SEED + 102, tmp_path / "c", edit=lambda d: d.update(
        stateful_access=second.stateful_access.model_dump(mode="json"),
        namespaces=second.model_dump(mode="json")["namespaces"]))
    estate_sandboxes.append(third)
    assert sources(third) == sources(second)
    attach.down(third.env)
    now_vhosts, now_databases = existing()
    assert sources(second)[0] <= now_vhosts and sources(second)[1] <= now_databases, \
        "stopping a sandbox dropped sources another live sandbox uses"

    attach.down(first.env)
    vhosts, databases = existing()
    want_vhosts, want_databases = sources(second)
    assert want_vhosts <= vhosts and want_databases <= databases, "stopping one sandbox dropped the other's data"
    assert not (sources(first)[0] & vhosts) and not (sources(first)[1] & databases), "the stopped one left its data"
    assert has_table(second, second.rds[0].tables[0]), "the second estate's RDS stopped answering"
