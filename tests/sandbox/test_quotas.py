"""Contract of the Service Quotas emulator: boto3 against it, shapes from botocore's model.

The emulator is started on its own here (it needs nothing else of the sandbox); the
provisioning tests reach it through the whole sandbox.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from opsbook.params import load_params
from opsbook.sandbox.aws.quotas import QUOTAS, QuotasService
from opsbook.sandbox.core import SandboxContext

MODEL = botocore.session.get_session().get_service_model("service-quotas")
# the quotas region readiness needs, as AWS publishes them (service, code, name, default)
PUBLISHED = {
    ("vpc", "L-F678F1CE"): ("VPCs per Region", 5),
    ("vpc", "L-FE5A380F"): ("NAT gateways per Availability Zone", 5),
    ("vpc", "L-A4707A72"): ("Internet gateways per Region", 5),
    ("ec2", "L-0263D0A3"): ("EC2-VPC Elastic IPs", 5),
    ("eks", "L-1194D53C"): ("Clusters", 100),
    ("eks", "L-6D54EA21"): ("Managed node groups per cluster", 30),
    ("rds", "L-7B6409FD"): ("DB instances", 40),
}


@pytest.fixture(scope="module")
def endpoint():
    service = QuotasService()
    ctx = SandboxContext(params=load_params("sandbox"), state_dir=Path(tempfile.mkdtemp()))
    env = service.start(ctx)
    yield env["AWS_ENDPOINT_URL_SERVICE_QUOTAS"]
    service.stop()


@pytest.fixture(scope="module")
def raw_bodies() -> dict[str, list[bytes]]:
    return {}


def _client(endpoint: str, region: str, raw: dict[str, list[bytes]] | None = None):
    sq = boto3.client("service-quotas", region_name=region, endpoint_url=endpoint,
                      aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    if raw is not None:
        def keep(operation_model, response_dict, **_):
            raw.setdefault(operation_model.name, []).append(response_dict["body"])
        sq.meta.events.register("before-parse.service-quotas.*", keep)
    return sq


def _conforms(value, shape, where: str) -> list[str]:
    """What in a raw JSON answer the model does not describe (boto3 would drop it silently)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        problems = [f"{where}.{k}: not in the model" for k in value if k not in shape.members]
        for key, item in value.items():
            if key in shape.members:
                problems += _conforms(item, shape.members[key], f"{where}.{key}")
        return problems
    if kind == "list":
        return [p for i, item in enumerate(value) for p in _conforms(item, shape.member, f"{where}[{i}]")]
    if kind == "map":
        return [p for k, item in value.items() for p in _conforms(item, shape.value, f"{where}.{k}")]
    expected = {"string": str, "boolean": bool, "integer": int, "long": int, "double": (int, float),
                "timestamp": (int, float, str)}[kind]
    ok = isinstance(value, expected) and not (kind in ("integer", "long", "double") and isinstance(value, bool))
    return [] if ok else [f"{where}: expected {kind}, got {type(value).__name__}"]


def test_every_needed_quota_is_served_with_its_published_default(endpoint) -> None:
    served = {(q.service, q.code): (q.name, q.default) for q in QUOTAS}
    assert PUBLISHED.items() <= served.items()
    for region in ("eu-central-1", "eu-west-1"):
        sq = _client(endpoint, region)
        for (service, code), (name, default) in PUBLISHED.items():
            for answer in (sq.get_service_quota(ServiceCode=service, QuotaCode=code),
                           sq.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)):
                quota = answer["Quota"]
                assert (quota["QuotaName"], quota["Value"], quota["ServiceCode"]) == (name, default, service)
                assert quota["QuotaArn"].startswith(f"arn:aws:servicequotas:{region}:")


def test_answers_match_the_botocore_model(endpoint, raw_bodies) -> None:
    sq = _client(endpoint, "eu-central-1", raw_bodies)
    sq.list_services()
    sq.list_aws_default_service_quotas(ServiceCode="vpc")
    sq.list_service_quotas(ServiceCode="eks")
    sq.get_service_quota(ServiceCode="rds", QuotaCode="L-7B6409FD")
    sq.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode="L-0263D0A3")
    sq.list_requested_service_quota_change_history_by_quota(ServiceCode="vpc", QuotaCode="L-F678F1CE")
    assert len(raw_bodies) == 6
    for operation, bodies in raw_bodies.items():
        shape = MODEL.operation_model(operation).output_shape
        for body in bodies:
            assert _conforms(json.loads(body), shape, operation) == []


def test_unknown_quota_and_service_answer_like_aws(endpoint) -> None:
    sq = _client(endpoint, "eu-central-1")
    with pytest.raises(sq.exceptions.NoSuchResourceException):
        sq.get_service_quota(ServiceCode="vpc", QuotaCode="L-00000000")
    with pytest.raises(sq.exceptions.NoSuchResourceException):
        sq.list_service_quotas(ServiceCode="no-such-service")
    with pytest.raises(ClientError) as caught:
        sq.list_tags_for_resource(ResourceARN="arn:aws:servicequotas:eu-central-1:123456789012:vpc/L-F678F1CE")
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_paging_returns_every_quota_once(endpoint) -> None:
    sq = _client(endpoint, "eu-central-1")
    pages = list(sq.get_paginator("list_aws_default_service_quotas").paginate(
        ServiceCode="vpc", PaginationConfig={"PageSize": 1}))
    codes = [q["QuotaCode"] for page in pages for q in page["Quotas"]]
    assert len(pages) == len(codes) == len([q for q in QUOTAS if q.service == "vpc"]) == len(set(codes))


def test_an_increase_applies_in_its_region_only(endpoint) -> None:
    here, there = _client(endpoint, "sa-east-1"), _client(endpoint, "ca-central-1")
    code = {"ServiceCode": "vpc", "QuotaCode": "L-F678F1CE"}
    before = here.get_service_quota(**code)["Quota"]["Value"]
    with pytest.raises(here.exceptions.IllegalArgumentException):
        here.request_service_quota_increase(**code, DesiredValue=before - 1)
    asked = here.request_service_quota_increase(**code, DesiredValue=before + 7)["RequestedQuota"]
    assert asked["Status"] == "APPROVED" and asked["DesiredValue"] == before + 7
    assert here.get_service_quota(**code)["Quota"]["Value"] == before + 7
    assert here.get_aws_default_service_quota(**code)["Quota"]["Value"] == before  # the default stays
    assert there.get_service_quota(**code)["Quota"]["Value"] == before
    history = here.list_requested_service_quota_change_history_by_quota(**code)["RequestedQuotas"]
    assert [r["Id"] for r in history] == [asked["Id"]]
    assert here.get_requested_service_quota_change(RequestId=asked["Id"])["RequestedQuota"]["QuotaCode"] == code[
        "QuotaCode"]
    assert there.list_requested_service_quota_change_history_by_quota(**code)["RequestedQuotas"] == []
