"""Contract of the sandbox's RDS data plane: what the drills rely on, checked with boto3 and PyMySQL.

Each RDS instance answers at the endpoint RDS reports, as the application user with the
password from SSM; snapshots and restores carry the data as of their time; a forced
failover swaps AZs and refuses connections for a moment, as RDS Multi-AZ does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import boto3
import pymysql
import pytest
from botocore.exceptions import ClientError
from opsbook.guard import aws_tags, ownership_tags


@pytest.fixture()
def rds(sandbox, sandbox_params):
    return boto3.client("rds", region_name=sandbox_params.region)


@pytest.fixture()
def spec(sandbox_params):
    return sandbox_params.rds[0]


@pytest.fixture()
def password(sandbox, sandbox_params, spec) -> str:
    ssm = boto3.client("ssm", region_name=sandbox_params.region)
    return ssm.get_parameter(Name=spec.password_ssm, WithDecryption=True)["Parameter"]["Value"]


def endpoint(rds, identifier: str) -> tuple[str, int]:
    ep = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["Endpoint"]
    return ep["Address"], ep["Port"]


def connect(rds, identifier, spec, password, timeout: float = 5):
    host, port = endpoint(rds, identifier)
    return pymysql.connect(host=host, port=port, user=spec.username, password=password, database=spec.database,
                           autocommit=True, connect_timeout=timeout)


def scalar(conn, sql: str, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
        return row[0] if row else None


@pytest.fixture()
def scratch(rds, spec, password):
    """A scratch table in the source database, dropped afterwards."""
    name = f"scratch_{int(time.time() * 1000) % 10**9}"
    with connect(rds, spec.identifier, spec, password) as conn:
        scalar(conn, f"CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(20)) WITH SYSTEM VERSIONING")
    yield name
    with connect(rds, spec.identifier, spec, password) as conn:
        scalar(conn, f"DROP TABLE IF EXISTS {name}")


@pytest.fixture()
def cleanup(rds):
    names: list[tuple[str, str]] = []
    yield names
    for kind, name in names:
        try:
            if kind == "instance":
                rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
            else:
                rds.delete_db_snapshot(DBSnapshotIdentifier=name)
        except ClientError:
            pass


def test_the_source_answers_as_the_application_user_with_seeded_tables(rds, spec, password) -> None:
    with connect(rds, spec.identifier, spec, password) as conn:
        for table in spec.tables:
            assert 100 <= scalar(conn, f"SELECT COUNT(*) FROM `{table}`") <= 1000
    host, port = endpoint(rds, spec.identifier)
    assert host == "127.0.0.1" and port != 3306
    with pytest.raises(pymysql.err.OperationalError) as denied:
        pymysql.connect(host=host, port=port, user=spec.username, password=password + "x", database=spec.database)
    assert denied.value.args[0] == 1045  # access denied: MariaDB checks the password


def test_a_snapshot_holds_the_data_as_of_its_time(rds, spec, password, scratch, cleanup) -> None:
    suffix = str(int(time.time() * 1000))
    snap, restored = f"contract-snap-{suffix}", f"contract-restored-{suffix}"
    cleanup += [("instance", restored), ("snapshot", snap)]
    with connect(rds, spec.identifier, spec, password) as conn:
        scalar(conn, f"INSERT INTO {scratch} VALUES (1, 'before')")
        rds.create_db_snapshot(DBSnapshotIdentifier=snap, DBInstanceIdentifier=spec.identifier,
                               Tags=aws_tags(ownership_tags("contract", "test")))
        scalar(conn, f"INSERT INTO {scratch} VALUES (2, 'after')")
        scalar(conn, f"UPDATE {scratch} SET v = 'changed' WHERE id = 1")
    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=restored, DBSnapshotIdentifier=snap,
                                             PubliclyAccessible=False)
    with connect(rds, restored, spec, password) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id, v FROM {scratch} ORDER BY id")
        assert cur.fetchall() == ((1, "before"),)
    # the restored instance is its own database: a write there does not reach the source
    with connect(rds, restored, spec, password) as conn:
        scalar(conn, f"INSERT INTO {scratch} VALUES (3, 'restored only')")
    with connect(rds, spec.identifier, spec, password) as conn:
        assert scalar(conn, f"SELECT COUNT(*) FROM {scratch} WHERE id = 3") == 0
    # deleting the instance takes its endpoint away
    host, port = endpoint(rds, restored)
    rds.delete_db_instance(DBInstanceIdentifier=restored, SkipFinalSnapshot=True)
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host=host, port=port, user=spec.username, password=password, database=spec.database,
                        connect_timeout=2)


def test_a_point_in_time_restore_honours_inserts_updates_and_deletes(rds, spec, password, scratch, cleanup) -> None:
    restored = f"contract-pitr-{int(time.time() * 1000)}"
    cleanup.append(("instance", restored))
    with connect(rds, spec.identifier, spec, password) as conn:
        scalar(conn, f"INSERT INTO {scratch} VALUES (1, 'kept'), (2, 'to delete'), (3, 'to update')")
        time.sleep(0.5)
        point = datetime.now(UTC)
        time.sleep(0.5)
        scalar(conn, f"DELETE FROM {scratch} WHERE id = 2")
        scalar(conn, f"UPDATE {scratch} SET v = 'updated' WHERE id = 3")
        scalar(conn, f"INSERT INTO {scratch} VALUES (4, 'too late')")
    rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=spec.identifier,
                                             TargetDBInstanceIdentifier=restored, RestoreTime=point)
    with connect(rds, restored, spec, password) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id, v FROM {scratch} ORDER BY id")
        assert cur.fetchall() == ((1, "kept"), (2, "to delete"), (3, "to update"))


def test_automated_backups_report_the_restore_window(rds, spec) -> None:
    source = rds.describe_db_instances(DBInstanceIdentifier=spec.identifier)["DBInstances"][0]
    backups = rds.describe_db_instance_automated_backups(DBInstanceIdentifier=spec.identifier)
    window = backups["DBInstanceAutomatedBackups"][0]["RestoreWindow"]
    assert window["EarliestTime"] == source["InstanceCreateTime"]
    assert window["EarliestTime"] <= source["LatestRestorableTime"] <= datetime.now(UTC)


def test_a_forced_failover_swaps_az_and_refuses_connections_for_a_while(rds, spec, password) -> None:
    before = rds.describe_db_instances(DBInstanceIdentifier=spec.identifier)["DBInstances"][0]
    assert before["MultiAZ"] and before["SecondaryAvailabilityZone"] != before["AvailabilityZone"]
    answer = rds.reboot_db_instance(DBInstanceIdentifier=spec.identifier, ForceFailover=True)["DBInstance"]
    assert answer["DBInstanceStatus"] == "rebooting"
    with pytest.raises(pymysql.err.OperationalError):
        connect(rds, spec.identifier, spec, password, timeout=2)
    after = rds.describe_db_instances(DBInstanceIdentifier=spec.identifier)["DBInstances"][0]
    assert (after["AvailabilityZone"], after["SecondaryAvailabilityZone"]) == (
        before["SecondaryAvailabilityZone"], before["AvailabilityZone"])
    deadline = time.monotonic() + 30
    while rds.describe_db_instances(DBInstanceIdentifier=spec.identifier)["DBInstances"][0]["DBInstanceStatus"] != "available":
        assert time.monotonic() < deadline, "still rebooting after 30 s"
        time.sleep(0.5)
    with connect(rds, spec.identifier, spec, password) as conn:
        assert scalar(conn, "SELECT 1") == 1


def test_a_single_az_instance_cannot_be_failed_over(rds, spec, cleanup) -> None:
    name = f"contract-single-{int(time.time() * 1000)}"
    cleanup.append(("instance", name))
    rds.create_db_instance(DBInstanceIdentifier=name, Engine="mysql", DBInstanceClass="db.t4g.micro",
                           AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="not-used-1234",
                           MultiAZ=False)
    with pytest.raises(ClientError) as refused:
        rds.reboot_db_instance(DBInstanceIdentifier=name, ForceFailover=True)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterCombination"
