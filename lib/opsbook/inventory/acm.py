"""ACM: the certificates for the domains of params, with status and expiry."""

from __future__ import annotations

from datetime import datetime

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS

# list_certificates returns only RSA-2048 certificates unless asked for every key type
KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]


class Certificate(Model):
    arn: str
    domain: str
    alternative_names: list[str] = []
    status: str  # ISSUED, PENDING_VALIDATION, EXPIRED, ...
    not_after: datetime | None = None


@COLLECTORS.register("certificates")
def collect_certificates(env: Env) -> list[Certificate]:
    """Every certificate whose domain params list (all of them, the check picks the best)."""
    acm = env.aws("acm")
    wanted = {c.domain for c in env.params.certificates}
    arns = []
    for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": KEY_TYPES}):
        arns.extend(s["CertificateArn"] for s in page["CertificateSummaryList"] if s["DomainName"] in wanted)
    certs = []
    for arn in arns:
        cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        certs.append(
            Certificate(
                arn=arn,
                domain=cert["DomainName"],
                alternative_names=cert.get("SubjectAlternativeNames", []),
                status=cert["Status"],
                not_after=cert.get("NotAfter"),
            )
        )
    return certs
