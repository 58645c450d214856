"""Which certificate is wanted and which one is current, without AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opsbook.clients import Env
from opsbook.errors import UsageError
from opsbook.params import load_params
from opsbook.provision.certificates import Wanted, _days, current_certificate, wanted


def test_wanted_from_params_or_parameters() -> None:
    env = Env(params=load_params("sandbox"), run_id="t")
    first = env.params.certificates[0]
    assert wanted(env)[0] == Wanted(first.domain, tuple(sorted({first.domain, *first.alternative_names})))
    assert wanted(env, "API.Example.com.", ["www.example.com"]) == [Wanted(
        "api.example.com", ("api.example.com", "www.example.com"))]
    with pytest.raises(UsageError, match="expected a DNS name"):
        wanted(env, "not a name")
    with pytest.raises(UsageError, match="without a domain"):
        wanted(env, "", ["www.example.com"])
    with pytest.raises(UsageError, match="whole number of days"):
        _days("30", "min_days")


def test_current_certificate_prefers_issued_and_longest_lived() -> None:
    now = datetime.now(UTC)
    want = Wanted("a.example.com", ("a.example.com", "b.example.com"))

    def cert(arn, status, days, names=("a.example.com", "b.example.com")):
        return {"CertificateArn": arn, "DomainName": names[0], "SubjectAlternativeNames": list(names),
                "Status": status, "NotAfter": now + timedelta(days=days), "CreatedAt": now}

    certs = [cert("old", "ISSUED", 10), cert("new", "ISSUED", 300), cert("pending", "PENDING_VALIDATION", 400),
             cert("other", "ISSUED", 500, ("a.example.com",)), cert("dead", "FAILED", 900)]
    assert current_certificate(certs, want)["CertificateArn"] == "new"
    assert current_certificate(certs[2:], want)["CertificateArn"] == "pending"
    assert current_certificate(certs[3:], want) is None
