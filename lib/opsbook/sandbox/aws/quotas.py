"""Service Quotas in the sandbox: a small emulator of its JSON API, on loopback.

moto's Service Quotas only knows the VPC defaults, so boto3 is pointed here through
`AWS_ENDPOINT_URL_SERVICE_QUOTAS`. The region is read from each request's SigV4
credential scope, as AWS does. Quotas served (codes, names and defaults as AWS
publishes them; identical in every region until raised):

| service | quota code | name                               | default |
|---------|------------|------------------------------------|---------|
| vpc     | L-F678F1CE | VPCs per Region                    | 5       |
| vpc     | L-A4707A72 | Internet gateways per Region       | 5       |
| vpc     | L-FE5A380F | NAT gateways per Availability Zone | 5       |
| ec2     | L-0263D0A3 | EC2-VPC Elastic IPs                | 5       |
| eks     | L-1194D53C | Clusters                           | 100     |
| eks     | L-6D54EA21 | Managed node groups per cluster    | 30      |
| rds     | L-7B6409FD | DB instances                       | 40      |
| acm     | L-F141DD1D | ACM certificates                   | 2500    |

Operations: ListServices, ListAWSDefaultServiceQuotas, GetAWSDefaultServiceQuota,
ListServiceQuotas, GetServiceQuota, RequestServiceQuotaIncrease (approved at once:
the applied value in that region becomes the desired value), GetRequestedServiceQuotaChange
and ListRequestedServiceQuotaChangeHistoryByQuota. Errors have AWS's codes:
NoSuchResourceException for an unknown service or quota, IllegalArgumentException for
a bad argument, ResourceAlreadyExistsException for a second open request. Usage is not
reported here (AWS does not either: it is read from each service's own API).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.services import SERVICES

TARGET_PREFIX = "ServiceQuotasV20190624."
SERVICE_NAMES = {
    "vpc": "Amazon Virtual Private Cloud (Amazon VPC)",
    "ec2": "Amazon Elastic Compute Cloud (Amazon EC2)",
    "eks": "Amazon Elastic Kubernetes Service (Amazon EKS)",
    "rds": "Amazon Relational Database Service (Amazon RDS)",
    "acm": "AWS Certificate Manager (ACM)",
}


@dataclass(frozen=True)
class QuotaSpec:
    service: str
    code: str
    name: str
    default: float
    adjustable: bool = True


QUOTAS = [
    QuotaSpec("vpc", "L-F678F1CE", "VPCs per Region", 5),
    QuotaSpec("vpc", "L-A4707A72", "Internet gateways per Region", 5),
    QuotaSpec("vpc", "L-FE5A380F", "NAT gateways per Availability Zone", 5),
    QuotaSpec("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", 5),
    QuotaSpec("eks", "L-1194D53C", "Clusters", 100),
    QuotaSpec("eks", "L-6D54EA21", "Managed node groups per cluster", 30),
    QuotaSpec("rds", "L-7B6409FD", "DB instances", 40),
    QuotaSpec("acm", "L-F141DD1D", "ACM certificates", 2500),
]
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


class QuotaError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class QuotaStore:
    """Applied values per region, and the increase requests made."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.applied: dict[tuple[str, str], float] = {}  # (region, quota code) -> value
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def spec(self, service: str, code: str) -> QuotaSpec:
        self.service(service)
        for quota in QUOTAS:
            if quota.service == service and quota.code == code:
                return quota
        raise QuotaError("NoSuchResourceException", f"The request failed because the specified quota {code} "
                                                    f"does not exist for service {service}.")

    @staticmethod
    def service(service: str) -> str:
        if service not in SERVICE_NAMES:
            raise QuotaError("NoSuchResourceException",
                             f"The request failed because the specified service {service} does not exist.")
        return service

    def quota(self, spec: QuotaSpec, region: str, applied: bool) -> dict[str, Any]:
        value = self.applied.get((region, spec.code), spec.default) if applied else spec.default
        return {
            "ServiceCode": spec.service, "ServiceName": SERVICE_NAMES[spec.service],
            "QuotaArn": f"arn:aws:servicequotas:{region}:{self.account if applied else ''}:{spec.service}/{spec.code}",
            "QuotaCode": spec.code, "QuotaName": spec.name, "Value": float(value), "Unit": "None",
            "Adjustable": spec.adjustable, "GlobalQuota": False,
        }


def _page(items: list[Any], body: dict[str, Any], key: str) -> dict[str, Any]:
    """MaxResults/NextToken paging; the token is the index of the next item."""
    try:
        start = int(body.get("NextToken") or 0)
        size = int(body.get("MaxResults") or 100)
    except ValueError:
        raise QuotaError("InvalidPaginationTokenException", "Invalid pagination token.") from None
    if not 1 <= size <= 100:
        raise QuotaError("IllegalArgumentException", "MaxResults must be between 1 and 100.")
    out: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out


class QuotasApi:
    """The operations; each takes the JSON body and the request's region."""

    def __init__(self, store: QuotaStore) -> None:
        self.store = store

    def ListServices(self, body: dict, region: str) -> dict:
        services = [{"ServiceCode": c, "ServiceName": n} for c, n in sorted(SERVICE_NAMES.items())]
        return _page(services, body, "Services")

    def ListAWSDefaultServiceQuotas(self, body: dict, region: str) -> dict:
        service = self.store.service(_required(body, "ServiceCode"))
        return _page([self.store.quota(q, region, False) for q in QUOTAS if q.service == service], body, "Quotas")

    def GetAWSDefaultServiceQuota(self, body: dict, region: str) -> dict:
        spec = self.store.spec(_required(body, "ServiceCode"), _required(body, "QuotaCode"))
        return {"Quota": self.store.quota(spec, region, False)}

    def ListServiceQuotas(self, body: dict, region: str) -> dict:
        service = self.store.service(_required(body, "ServiceCode"))
        quotas = [q for q in QUOTAS if q.service == service and body.get("QuotaCode") in (None, q.code)]
        return _page([self.store.quota(q, region, True) for q in quotas], body, "Quotas")

    def GetServiceQuota(self, body: dict, region: str) -> dict:
        spec = self.store.spec(_required(body, "ServiceCode"), _required(body, "QuotaCode"))
        return {"Quota": self.store.quota(spec, region, True)}

    def RequestServiceQuotaIncrease(self, body: dict, region: str) -> dict:
        spec = self.store.spec(_required(body, "ServiceCode"), _required(body, "QuotaCode"))
        desired = body.get("DesiredValue")
        if not isinstance(desired, int | float):
            raise QuotaError("IllegalArgumentException", "DesiredValue must be a number.")
        with self.store.lock:
            current = self.store.applied.get((region, spec.code), spec.default)
            if not spec.adjustable:
                raise QuotaError("IllegalArgumentException", f"The quota {spec.code} is not adjustable.")
            if desired <= current:
                raise QuotaError("IllegalArgumentException",
                                 f"DesiredValue {desired} must be greater than the current value {current}.")
            now = datetime.now(UTC).timestamp()
            request = {
                "Id": uuid.uuid4().hex, "CaseId": f"case-{uuid.uuid4().hex[:10]}", "ServiceCode": spec.service,
                "ServiceName": SERVICE_NAMES[spec.service], "QuotaCode": spec.code, "QuotaName": spec.name,
                "DesiredValue": float(desired), "Status": "APPROVED", "Created": now, "LastUpdated": now,
                "Requester": f"arn:aws:iam::{self.store.account}:root", "Unit": "None", "GlobalQuota": False,
                "QuotaArn": self.store.quota(spec, region, True)["QuotaArn"], "_region": region,
            }
            self.store.requests.append(request)
            self.store.applied[(region, spec.code)] = float(desired)  # approved at once in the sandbox
        return {"RequestedQuota": _public(request)}

    def GetRequestedServiceQuotaChange(self, body: dict, region: str) -> dict:
        wanted = _required(body, "RequestId")
        for request in self.store.requests:
            if request["Id"] == wanted:
                return {"RequestedQuota": _public(request)}
        raise QuotaError("NoSuchResourceException", f"The request {wanted} does not exist.")

    def ListRequestedServiceQuotaChangeHistoryByQuota(self, body: dict, region: str) -> dict:
        spec = self.store.spec(_required(body, "ServiceCode"), _required(body, "QuotaCode"))
        found = [_public(r) for r in self.store.requests if r["QuotaCode"] == spec.code and r["_region"] == region
                 and body.get("Status") in (None, r["Status"])]
        return _page(found, body, "RequestedQuotas")


def _public(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if not k.startswith("_")}


def _required(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise QuotaError("IllegalArgumentException", f"{key} is required.")
    return value


def make_app(store: QuotaStore) -> Any:
    api = QuotasApi(store)

    @Request.application
    def app(request: Request) -> Response:
        target = request.headers.get("X-Amz-Target", "")
        match = _SCOPE.search(request.headers.get("Authorization", ""))
        region = match.group(1) if match else "us-east-1"
        operation = target.removeprefix(TARGET_PREFIX)
        try:
            if request.method != "POST" or not target.startswith(TARGET_PREFIX):
                raise QuotaError("UnknownOperationException", f"Unknown operation {target or request.path}")
            handler = getattr(api, operation, None)
            if handler is None or operation.startswith("_"):
                raise QuotaError("UnknownOperationException",
                                 f"The sandbox's Service Quotas does not implement {operation}.")
            try:
                body = json.loads(request.get_data() or b"{}")
            except json.JSONDecodeError:
                raise QuotaError("SerializationException", "The request body is not JSON.") from None
            answer, status = handler(body, region), 200
        except QuotaError as exc:
            answer, status = {"__type": exc.code, "Message": exc.message}, exc.status
        return Response(json.dumps(answer), status=status, content_type="application/x-amz-json-1.1",
                        headers={"x-amzn-RequestId": uuid.uuid4().hex})

    return app


@SERVICES.register("service-quotas")
class QuotasService:
    """The emulator in a thread of this process, reached through AWS_ENDPOINT_URL_SERVICE_QUOTAS."""

    name = "service-quotas"
    needs = ()

    def __init__(self) -> None:
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.store: QuotaStore | None = None

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        self.store = QuotaStore(ctx.params.account_id)
        # port 0: the OS picks a free port as it binds (sandboxes starting at once never race for one)
        self.server = make_server("127.0.0.1", 0, make_app(self.store), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="opsbook-quotas", daemon=True)
        self.thread.start()
        return {"AWS_ENDPOINT_URL_SERVICE_QUOTAS": f"http://127.0.0.1:{self.server.server_port}"}

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
