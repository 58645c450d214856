"""The machine's real servers the sandbox uses as its data plane, and process liveness.

MariaDB (root without a password) and RabbitMQ are started by scripts/services.sh.
Several sandboxes may share them; each marks what it creates with its pid so a later
start can drop what dead sandboxes left.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pika
import pymysql
import requests

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


RABBITMQ_AMQP = ("127.0.0.1", 5672)
RABBITMQ_MANAGEMENT = "http://127.0.0.1:15672"
RABBITMQ_ADMIN = ("guest", "guest")  # the local broker's default administrator (loopback only)


class RabbitAdmin:
    """The local RabbitMQ as its administrator: the management API (HTTP) and AMQP (pika).

    The sandbox's own client for what stands in for a volume's broker data; it shares
    nothing with the library's RabbitMQ probes, which it serves as a witness.
    """

    def __init__(self, timeout: float = 10) -> None:
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = RABBITMQ_ADMIN

    def request(self, method: str, path: str, body: Any = None, ok_missing: bool = False) -> Any:
        resp = self.session.request(method, f"{RABBITMQ_MANAGEMENT}/api/{path}", json=body, timeout=self.timeout)
        if resp.status_code == 404 and ok_missing:
            return None
        resp.raise_for_status()
        return resp.json() if resp.content else None

    @staticmethod
    def q(name: str) -> str:
        return quote(name, safe="")

    def vhost_exists(self, vhost: str) -> bool:
        return self.request("GET", f"vhosts/{self.q(vhost)}", ok_missing=True) is not None

    def ensure_vhost(self, vhost: str, description: str) -> None:
        self.request("PUT", f"vhosts/{self.q(vhost)}", {"description": description})
        self.grant(RABBITMQ_ADMIN[0], vhost)

    def delete_vhost(self, vhost: str) -> None:
        self.request("DELETE", f"vhosts/{self.q(vhost)}", ok_missing=True)

    def put_user(self, user: str, password: str, tags: str = "") -> None:
        self.request("PUT", f"users/{self.q(user)}", {"password": password, "tags": tags})

    def grant(self, user: str, vhost: str) -> None:
        self.request("PUT", f"permissions/{self.q(vhost)}/{self.q(user)}",
                     {"configure": ".*", "write": ".*", "read": ".*"})

    def definitions(self, vhost: str) -> dict[str, Any]:
        return self.request("GET", f"definitions/{self.q(vhost)}") or {}

    def load_definitions(self, vhost: str, definitions: dict[str, Any]) -> None:
        self.request("POST", f"definitions/{self.q(vhost)}", {k: v for k, v in definitions.items() if k != "vhosts"})

    def queues(self, vhost: str) -> list[str]:
        return [q["name"] for q in self.request("GET", f"queues/{self.q(vhost)}") or []]

    @contextlib.contextmanager
    def channel(self, vhost: str) -> Iterator[Any]:
        params = pika.ConnectionParameters(
            host=RABBITMQ_AMQP[0], port=RABBITMQ_AMQP[1], virtual_host=vhost,
            credentials=pika.PlainCredentials(*RABBITMQ_ADMIN), socket_timeout=self.timeout,
            blocked_connection_timeout=self.timeout)
        conn = pika.BlockingConnection(params)
        try:
            yield conn.channel()
        finally:
            with contextlib.suppress(pika.exceptions.AMQPError):
                conn.close()

    def copy_messages(self, vhost: str, limit: int) -> dict[str, list[dict[str, Any]]]:
        """Up to `limit` messages of every queue of the vhost, left in place (read, then requeued)."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self.channel(vhost) as ch:
            for queue in self.queues(vhost):
                got = []
                for _ in range(limit):
                    method, props, body = ch.basic_get(queue=queue, auto_ack=False)
                    if method is None:
                        break
                    got.append({"body": base64.b64encode(body).decode(), "message_id": props.message_id,
                                "timestamp": props.timestamp, "content_type": props.content_type,
                                "headers": props.headers or {}, "delivery_mode": props.delivery_mode})
                ch.basic_recover(requeue=True)
                if got:
                    out[queue] = got
        return out

    def put_messages(self, vhost: str, queue: str, messages: list[dict[str, Any]]) -> None:
        """Publish copied messages into an existing queue, confirmed by the broker."""
        with self.channel(vhost) as ch:
            ch.confirm_delivery()
            for msg in messages:
                ch.basic_publish(exchange="", routing_key=queue, body=base64.b64decode(msg["body"]), mandatory=True,
                                 properties=pika.BasicProperties(
                                     message_id=msg.get("message_id"), timestamp=msg.get("timestamp"),
                                     content_type=msg.get("content_type"), headers=msg.get("headers") or None,
                                     delivery_mode=msg.get("delivery_mode") or pika.DeliveryMode.Persistent))
