"""Certificates on the sandbox: request, Route 53 validation, ISSUED, expiry list, renewal."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from opsbook.errors import OpsbookError
from opsbook.provision import certificates, steps


def _zone_id(env, name: str) -> str:
    zones = env.aws("route53").list_hosted_zones_by_name(DNSName=name)["HostedZones"]
    [zone] = [z for z in zones if z["Name"] == name + "." and not z["Config"]["PrivateZone"]]
    return zone["Id"].split("/")[-1]


def _cnames(env, zone_id: str) -> dict[str, str]:
    records = env.aws("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {r["Name"]: r["ResourceRecords"][0]["Value"] for r in records if r["Type"] == "CNAME"}


def _self_signed(names: list[str], days: int) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def test_request_validate_issue_then_nothing_to_do(sandbox_env) -> None:
    env = sandbox_env
    zone = env.params.zones.public
    names = [f"lib-{env.run_id}.{zone}", f"www.lib-{env.run_id}.{zone}"]
    plan = certificates.plan_certificates(env, names[0], names[1:])
    assert [(c.resource, c.action) for c in plan.pending] == [
        (f"acm {names[0]}", "create"), (f"route53 {zone}", "create"), (f"route53 {zone}", "create"),
        (f"acm {names[0]}", "create")]
    assert steps.apply_plan(plan, apply=True).changed == 4

    acm = env.aws("acm")
    mine = [c for c in acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]
            if c["DomainName"] == names[0]]
    assert len(mine) == 1
    cert = acm.describe_certificate(CertificateArn=mine[0]["CertificateArn"])["Certificate"]
    assert sorted(cert["SubjectAlternativeNames"]) == sorted(names)
    records = _cnames(env, _zone_id(env, zone))
    for option in cert["DomainValidationOptions"]:
        assert records[option["ResourceRecord"]["Name"]] == option["ResourceRecord"]["Value"]
    tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=cert["CertificateArn"])["Tags"]}
    assert tags["opsbook:run-id"] == env.run_id

    again = certificates.plan_certificates(env, names[0], names[1:])
    assert again.empty and steps.apply_plan(again, apply=True).changed == 0


def test_expiring_certificate_is_listed_and_renewed(sandbox_env) -> None:
    env = sandbox_env
    names = [f"old-{env.run_id}.{env.params.zones.public}"]
    pem, key = _self_signed(names, days=10)
    arn = env.aws("acm").import_certificate(Certificate=pem, PrivateKey=key)["CertificateArn"]
    try:
        soon = certificates.expiring(env, 30)
        row = soon[soon["arn"] == arn]
        assert len(row) == 1 and row.iloc[0]["days_left"] in (9, 10)
        assert arn not in set(certificates.expiring(env, 5)["arn"])

        plan = certificates.plan_certificates(env, names[0], min_days=30)
        first = plan.changes[0]
        assert first.action == "create" and first.current.endswith(": renew")
        steps.apply_plan(plan, apply=True)
        after = certificates.plan_certificates(env, names[0], min_days=30)
        assert after.empty
        assert after.changes[0].current.startswith("ISSUED")
    finally:  # an expiring certificate would trip other checks of this sandbox
        env.aws("acm").delete_certificate(CertificateArn=arn)


def test_a_name_without_a_public_zone_fails_before_any_change(sandbox_env) -> None:
    before = len(sandbox_env.aws("acm").list_certificates()["CertificateSummaryList"])
    with pytest.raises(OpsbookError, match="no public Route 53 zone holds api.nowhere.example"):
        certificates.plan_certificates(sandbox_env, "api.nowhere.example")
    with pytest.raises(OpsbookError, match="no public Route 53 zone"):  # a private zone cannot validate
        certificates.plan_certificates(sandbox_env, f"db.{sandbox_env.params.zones.private}")
    assert len(sandbox_env.aws("acm").list_certificates()["CertificateSummaryList"]) == before
