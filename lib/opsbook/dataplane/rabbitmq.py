"""The RabbitMQ data plane of a broker: definitions over the management HTTP API, canaries over AMQP.

How the broker of a namespace is reached (the same code in every environment): the
templates of params `stateful_access.rabbitmq` filled with the namespace and the
StatefulSet's service name. In production that is the in-cluster DNS name
(`{service}.{namespace}.svc.cluster.local`, resolved over the VPN) and the whole broker;
the sandbox points the templates at the local RabbitMQ server with one vhost per
namespace. The password comes from the SSM SecureString `password_ssm` and is only
handed to `requests` and `pika`.

Definitions are compared per kind (queues, exchanges, bindings, policies, and vhosts)
after normalising: the vhost an item lives in is kept only when the broker is compared
whole, so a broker restored under another vhost compares equal to its source.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pandas as pd
import pika
import pika.exceptions
import requests

from opsbook.errors import OpsbookError
from opsbook.secrets import Secret

DEFINITION_KINDS = ("vhosts", "queues", "exchanges", "bindings", "policies")
# The canary queue keeps itself small: old canaries expire or drop off the head.
CANARY_ARGUMENTS = {"x-message-ttl": 7 * 24 * 3600 * 1000, "x-max-length": 1000, "x-overflow": "drop-head"}
CANARY_HEADER = "x-opsbook-canary"
THIS_VHOST = "(broker vhost)"


@dataclass(frozen=True)
class Broker:
    """Where and as whom to reach one broker (or one vhost of it, when `vhost` is set)."""

    namespace: str
    service: str
    host: str
    amqp_port: int
    management_url: str
    vhost: str | None
    user: str
    password: Secret

    @property
    def amqp_vhost(self) -> str:
        return self.vhost or "/"

    def describe(self) -> str:
        where = f"vhost {self.vhost}" if self.vhost else "all vhosts"
        return f"{self.service} in {self.namespace} ({self.user}@{self.host}:{self.amqp_port}, {where})"


def broker_for(env: Any, namespace: str, service: str) -> Broker:
    """The broker of StatefulSet `service` in `namespace`, from params `stateful_access.rabbitmq`."""
    access = env.params.stateful_access.rabbitmq
    fill = {"namespace": namespace, "service": service, "database": ""}
    password = env.ssm_secret(access.password_ssm) if access.password_ssm else Secret("", name="(no password)")
    return Broker(
        namespace=namespace,
        service=service,
        host=access.host.format(**fill),
        amqp_port=access.amqp_port,
        management_url=access.management_url.format(**fill).rstrip("/"),
        vhost=access.vhost.format(**fill) if access.vhost else None,
        user=access.username,
        password=password,
    )


# --- management HTTP API -------------------------------------------------------------------


class Management:
    """The management API of one broker, through `requests`; errors say which broker and why."""

    def __init__(self, broker: Broker, timeout: float = 10) -> None:
        self.broker = broker
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = (broker.user, broker.password.reveal())
        self.session.headers["content-type"] = "application/json"

    def request(self, method: str, path: str, body: Any = None, ok_missing: bool = False) -> Any:
        url = f"{self.broker.management_url}/api/{path}"
        try:
            resp = self.session.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise OpsbookError(
                f"cannot reach the RabbitMQ management API of {self.broker.describe()} at "
                f"{self.broker.management_url}: {type(exc).__name__}",
                remedy="check the VPN and params stateful_access.rabbitmq.management_url",
            ) from None
        if resp.status_code == 404 and ok_missing:
            return None
        if resp.status_code == 401:
            raise OpsbookError(
                f"the RabbitMQ management API of {self.broker.describe()} refused user {self.broker.user!r} (401)",
                remedy="check the password in SSM (stateful_access.rabbitmq.password_ssm)",
            )
        if resp.status_code >= 400:
            reason = resp.text[:300]
            raise OpsbookError(f"RabbitMQ management API {method} /api/{path} on {self.broker.describe()} "
                               f"answered {resp.status_code}: {reason}")
        if not resp.content:
            return None
        return resp.json()

    @staticmethod
    def q(name: str) -> str:
        return quote(name, safe="")

    def definitions(self) -> dict[str, Any]:
        """The broker's definitions: of its vhost when the broker is one vhost, else of all."""
        if self.broker.vhost:
            defs = self.request("GET", f"definitions/{self.q(self.broker.vhost)}") or {}
            vhost = self.request("GET", f"vhosts/{self.q(self.broker.vhost)}", ok_missing=True)
            defs["vhosts"] = [vhost] if vhost else []
            return defs
        return self.request("GET", "definitions") or {}

    def load_definitions(self, definitions: dict[str, Any]) -> None:
        """Import definitions (into the broker's vhost when it is one vhost)."""
        body = {k: v for k, v in definitions.items() if k != "vhosts" or not self.broker.vhost}
        path = f"definitions/{self.q(self.broker.vhost)}" if self.broker.vhost else "definitions"
        self.request("POST", path, body)

    def vhost_exists(self, name: str) -> bool:
        return self.request("GET", f"vhosts/{self.q(name)}", ok_missing=True) is not None

    def ensure_vhost(self, name: str, description: str = "") -> None:
        self.request("PUT", f"vhosts/{self.q(name)}", {"description": description} if description else {})

    def delete_vhost(self, name: str) -> bool:
        """Delete a vhost with everything in it; False when there was none."""
        if not self.vhost_exists(name):
            return False
        self.request("DELETE", f"vhosts/{self.q(name)}", ok_missing=True)
        return True

    def grant(self, user: str, vhost: str) -> None:
        self.request("PUT", f"permissions/{self.q(vhost)}/{self.q(user)}",
                     {"configure": ".*", "write": ".*", "read": ".*"})

    def queues(self) -> list[dict[str, Any]]:
        path = f"queues/{self.q(self.broker.vhost)}" if self.broker.vhost else "queues"
        return self.request("GET", path) or []


# --- definitions: normalise and compare ----------------------------------------------------


def _args(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True)


def _key(kind: str, item: dict[str, Any], whole: bool) -> str:
    prefix = f"{item.get('vhost', '')}/" if whole and kind != "vhosts" else ""
    if kind == "bindings":
        return (f"{prefix}{item.get('source') or '(default)'} -> {item.get('destination_type')} "
                f"{item.get('destination')} [{item.get('routing_key', '')}] {_args(item.get('arguments'))}")
    return f"{prefix}{item.get('name')}"


# fields compared per kind (server-side counters and metadata are left out)
_FIELDS = {
    "vhosts": ("name",),
    "queues": ("durable", "auto_delete", "arguments"),
    "exchanges": ("type", "durable", "auto_delete", "internal", "arguments"),
    "bindings": (),
    "policies": ("pattern", "apply-to", "definition", "priority"),
}


def normalize(definitions: dict[str, Any], whole_broker: bool) -> dict[str, dict[str, str]]:
    """kind -> {item key: canonical JSON of the compared fields}."""
    out: dict[str, dict[str, str]] = {}
    for kind in DEFINITION_KINDS:
        items = {}
        for item in definitions.get(kind) or []:
            if kind == "vhosts" and not whole_broker:
                items[THIS_VHOST] = "{}"
                continue
            fields = {f: item.get(f) for f in _FIELDS[kind] if kind != "vhosts"}
            items[_key(kind, item, whole_broker)] = json.dumps(fields, sort_keys=True)
        out[kind] = items
    return out


def compare_definitions(recorded: dict[str, Any], restored: dict[str, Any], whole_broker: bool) -> pd.DataFrame:
    """One row per item of either side: `same`, `missing` (not restored), `extra` or `differs`."""
    want, got = normalize(recorded, whole_broker), normalize(restored, whole_broker)
    rows = []
    for kind in DEFINITION_KINDS:
        for key in sorted(set(want[kind]) | set(got[kind])):
            a, b = want[kind].get(key), got[kind].get(key)
            status = "missing" if b is None else "extra" if a is None else "same" if a == b else "differs"
            rows.append({"kind": kind, "item": key, "status": status,
                         "recorded": a if status == "differs" else "", "restored": b if status == "differs" else ""})
    return pd.DataFrame(rows, columns=["kind", "item", "status", "recorded", "restored"])


def count_by_kind(definitions: dict[str, Any]) -> dict[str, int]:
    return {kind: len(definitions.get(kind) or []) for kind in DEFINITION_KINDS}


# --- AMQP: canary messages -----------------------------------------------------------------


@dataclass(frozen=True)
class CanaryMessage:
    message_id: str
    run_id: str
    drill: str
    published_at: datetime  # UTC, the publisher's clock


@contextlib.contextmanager
def channel(broker: Broker, timeout: float = 10) -> Iterator[Any]:
    """A pika channel on the broker's vhost, closed on exit; errors name the broker, never the password."""
    params = pika.ConnectionParameters(
        host=broker.host, port=broker.amqp_port, virtual_host=broker.amqp_vhost,
        credentials=pika.PlainCredentials(broker.user, broker.password.reveal()),
        connection_attempts=2, retry_delay=1, socket_timeout=timeout, blocked_connection_timeout=timeout,
    )
    try:
        conn = pika.BlockingConnection(params)
    except pika.exceptions.ProbableAuthenticationError:
        raise OpsbookError(f"RabbitMQ {broker.describe()} refused user {broker.user!r}",
                           remedy="check the password in SSM (stateful_access.rabbitmq.password_ssm)") from None
    except pika.exceptions.AMQPError as exc:
        raise OpsbookError(f"cannot open an AMQP connection to {broker.describe()}: {type(exc).__name__} {exc}",
                           remedy="check the VPN, params stateful_access.rabbitmq and that the vhost exists") from None
    try:
        yield conn.channel()
    finally:
        with contextlib.suppress(pika.exceptions.AMQPError):
            conn.close()


def declare_canary_queue(ch: Any, queue: str) -> None:
    ch.queue_declare(queue=queue, durable=True, arguments=CANARY_ARGUMENTS)


def publish_canary(broker: Broker, queue: str, run_id: str, drill: str) -> CanaryMessage:
    """Publish one persistent canary message (publisher-confirmed) carrying the run id and the time."""
    now = datetime.now(UTC)
    message = CanaryMessage(f"{run_id}-{uuid.uuid4().hex[:8]}", run_id, drill, now)
    body = json.dumps({"run_id": run_id, "drill": drill, "published_at": now.isoformat()}).encode()
    with channel(broker) as ch:
        try:
            declare_canary_queue(ch, queue)
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise OpsbookError(f"RabbitMQ {broker.describe()} refused the canary queue {queue}: {exc.reply_text}",
                               remedy="if it exists with other arguments, delete it or name another queue in params "
                                      "stateful_access.rabbitmq.canary_queue") from None
        ch.confirm_delivery()
        ch.basic_publish(
            exchange="", routing_key=queue, body=body, mandatory=True,
            properties=pika.BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent, message_id=message.message_id,
                timestamp=int(now.timestamp()), content_type="application/json",
                headers={CANARY_HEADER: run_id},
            ),
        )
    return message


def _peek(ch: Any, queue: str, limit: int) -> list[tuple[Any, bytes]]:
    """Up to `limit` messages of a queue, left in it: fetched unacknowledged, requeued on close."""
    out = []
    for _ in range(limit):
        method, props, body = ch.basic_get(queue=queue, auto_ack=False)
        if method is None:
            break
        out.append((props, body))
    return out


def queue_exists(broker: Broker, queue: str) -> bool:
    try:
        with channel(broker) as ch:
            ch.queue_declare(queue=queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        raise


def read_canaries(broker: Broker, queue: str, run_id: str | None = None, limit: int = 2000) -> list[CanaryMessage]:
    """Canary messages in the broker's canary queue (all, or one run's); [] when the queue is absent."""
    if not queue_exists(broker, queue):
        return []
    with channel(broker) as ch:
        got = _peek(ch, queue, limit)
    out = []
    for props, body in got:
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if not isinstance(data, dict) or not data.get("run_id"):
            continue
        if run_id is not None and data["run_id"] != run_id:
            continue
        published = datetime.fromisoformat(data["published_at"])
        out.append(CanaryMessage(props.message_id or "", data["run_id"], data.get("drill", ""), published))
    return out


# --- messages as data (the sandbox's volume snapshots carry them) ---------------------------


def export_messages(broker: Broker, queues: list[str], limit: int = 1000) -> dict[str, list[dict[str, Any]]]:
    """The messages of the queues as JSON-able dicts (left in the queues), over one connection."""
    out: dict[str, list[dict[str, Any]]] = {}
    with channel(broker) as ch:
        for queue in queues:
            got = _peek(ch, queue, limit)
            out[queue] = [{
                "body": base64.b64encode(body).decode(),
                "message_id": props.message_id, "timestamp": props.timestamp, "content_type": props.content_type,
                "headers": props.headers or {}, "delivery_mode": props.delivery_mode,
            } for props, body in got]
            # requeue now: the next basic_get on another queue must not see these as still held
            ch.basic_recover(requeue=True)
    return out


def import_messages(broker: Broker, queue: str, messages: list[dict[str, Any]]) -> int:
    """Publish exported messages into a queue of the broker (which must exist); returns how many."""
    if not messages:
        return 0
    with channel(broker) as ch:
        ch.confirm_delivery()
        for msg in messages:
            ch.basic_publish(
                exchange="", routing_key=queue, body=base64.b64decode(msg["body"]), mandatory=True,
                properties=pika.BasicProperties(
                    message_id=msg.get("message_id"), timestamp=msg.get("timestamp"),
                    content_type=msg.get("content_type"), headers=msg.get("headers") or None,
                    delivery_mode=msg.get("delivery_mode") or pika.DeliveryMode.Persistent,
                ),
            )
    return len(messages)
