"""The machine's real servers the sandbox uses as its data plane, and process liveness.

MariaDB (root without a password) and RabbitMQ are started by scripts/services.sh.
Several sandboxes may share them; each marks what it creates with its pid so a later
start can drop what dead sandboxes left.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pymysql

MARIADB = ("127.0.0.1", 3306)


@contextlib.contextmanager
def mariadb_admin() -> Iterator[Any]:
    """A root cursor on the local MariaDB, autocommit, in UTC (AS OF times are UTC)."""
    # no TLS on loopback (building an SSL context costs ~70 ms a connection)
    conn = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", password="", autocommit=True,
                           connect_timeout=10, ssl_disabled=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            yield cur
    finally:
        conn.close()


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
