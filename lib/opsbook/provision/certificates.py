"""ACM certificates validated through Route 53, and the certificates about to expire.

For each wanted certificate (a domain and its alternative names) the plan shows the
certificate in use (status, days left), its DNS validation CNAMEs in the public zone
that holds each name, and the wait for ISSUED. A certificate missing, failed, or
expiring within `min_days` is requested anew (ACM renews DNS-validated certificates by
itself only while they are in use and their CNAMEs resolve; a replacement is the
on-call fix). Applying twice changes nothing: the second plan finds the certificate
ISSUED and every CNAME in place.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions
import pandas as pd

from opsbook.clients import Env
from opsbook.errors import OpsbookError, UsageError
from opsbook.guard import Change, Plan, aws_tags, ownership_tags
from opsbook.provision import naming

PURPOSE = "certificate"
ALL_STATUSES = ["PENDING_VALIDATION", "ISSUED", "INACTIVE", "EXPIRED", "VALIDATION_TIMED_OUT", "REVOKED",
                "FAILED"]
USABLE = ("ISSUED", "PENDING_VALIDATION")
_DNS_NAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class Wanted:
    """A certificate to have: its domain and every name it must cover."""

    domain: str
    names: tuple[str, ...]


def _name(value: str, field: str) -> str:
    name = value.strip().lower().rstrip(".")
    if not _DNS_NAME.match(name):
        raise UsageError(f"{field}: expected a DNS name such as api.example.com, got {value!r}")
    return name


def wanted(env: Env, domain: str = "", alternative_names: list[str] | tuple[str, ...] = ()) -> list[Wanted]:
    """The certificate given as parameters, or else every one in params `certificates`."""
    if domain:
        main = _name(domain, "domain")
        alts = [_name(n, "alternative_names") for n in alternative_names]
        return [Wanted(main, tuple(sorted({main, *alts})))]
    if alternative_names:
        raise UsageError("alternative_names: given without a domain", remedy="set domain too")
    if not env.params.certificates:
        raise UsageError(f"{env.params.source}: no certificates in params and no domain given",
                         remedy="pass domain, or list the certificates in params (certificates)")
    return [Wanted(c.domain, tuple(sorted({c.domain, *c.alternative_names}))) for c in env.params.certificates]


# --- reading ACM and Route 53 ---------------------------------------------------------------


def list_certificates(env: Env, region: str) -> list[dict[str, Any]]:
    acm = env.aws("acm", region)
    arns = [c["CertificateArn"] for page in acm.get_paginator("list_certificates").paginate(
        CertificateStatuses=ALL_STATUSES) for c in page["CertificateSummaryList"]]
    return [acm.describe_certificate(CertificateArn=arn)["Certificate"] for arn in arns]


def _names(cert: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted({cert["DomainName"], *cert.get("SubjectAlternativeNames", [])}))


def _days(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{field}: expected a whole number of days (0 or more), got {value!r}")
    return value


def _days_left(cert: dict[str, Any], now: datetime) -> int | None:
    not_after = cert.get("NotAfter")
    return None if not_after is None else (not_after - now).days


def current_certificate(certs: list[dict[str, Any]], want: Wanted) -> dict[str, Any] | None:
    """The usable certificate for exactly these names that lasts longest (the newest request on a tie)."""
    matching = [c for c in certs if _names(c) == want.names and c["Status"] in USABLE]
    if not matching:
        return None
    far = datetime.max.replace(tzinfo=UTC)
    return max(matching, key=lambda c: (c["Status"] == "ISSUED", c.get("NotAfter") or far,
                                        c.get("CreatedAt") or c.get("ImportedAt") or far))


class Zones:
    """The account's public hosted zones; the one holding a name is its longest suffix."""

    def __init__(self, env: Env) -> None:
        self.route53 = env.aws("route53")
        pages = self.route53.get_paginator("list_hosted_zones").paginate()
        self.public = [(z["Name"].rstrip("."), z["Id"].split("/")[-1]) for p in pages for z in p["HostedZones"]
                       if not z.get("Config", {}).get("PrivateZone")]

    def holding(self, name: str) -> tuple[str, str]:
        name = name.rstrip(".")
        found = [(zone, zid) for zone, zid in self.public if name == zone or name.endswith("." + zone)]
        if not found:
            known = ", ".join(sorted(z for z, _ in self.public)) or "none"
            raise OpsbookError(f"no public Route 53 zone holds {name}, so ACM cannot validate it by DNS (public "
                               f"zones: {known})", remedy="create the zone or delegate the name, then plan again")
        longest = max(len(z) for z, _ in found)
        best = [f for f in found if len(f[0]) == longest]
        if len(best) > 1:
            raise OpsbookError(f"{len(best)} public zones are named {best[0][0]} ({', '.join(i for _, i in best)})",
                               remedy="delete the stray one so validation records have one home, then plan again")
        return best[0]

    def cname(self, zone_id: str, name: str) -> str | None:
        fqdn = name.rstrip(".") + "."
        answer = self.route53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=fqdn,
                                                        StartRecordType="CNAME", MaxItems="1")
        for record in answer["ResourceRecordSets"]:
            if record["Name"] == fqdn and record["Type"] == "CNAME":
                return record["ResourceRecords"][0]["Value"]
        return None

    def upsert(self, zone_id: str, name: str, value: str) -> None:
        change = self.route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={
            "Comment": "ACM DNS validation (opsbook)",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": name, "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": value}]}}]})
        self.route53.get_waiter("resource_record_sets_changed").wait(
            Id=change["ChangeInfo"]["Id"], WaiterConfig={"Delay": 10, "MaxAttempts": 60})


# --- the plan -------------------------------------------------------------------------------


def _describe(cert: dict[str, Any] | None, now: datetime) -> str | None:
    if cert is None:
        return None
    days = _days_left(cert, now)
    until = f", expires {cert['NotAfter']:%Y-%m-%d} ({days} days)" if days is not None else ""
    return f"{cert['Status']}{until}"


class _Work:
    """One certificate's changes; the ARN is the current certificate's, or the one just requested."""

    def __init__(self, env: Env, region: str, want: Wanted, zones: Zones, arn: str | None,
                 timeout_minutes: float) -> None:
        self.env, self.region, self.want, self.zones, self.arn = env, region, want, zones, arn
        self.acm = env.aws("acm", region)
        self.timeout = timeout_minutes

    def request(self) -> None:
        token = hashlib.sha256(f"{self.want.names}{self.env.run_id}".encode()).hexdigest()[:32]
        tags = ownership_tags(self.env.run_id, PURPOSE, self.env.now().isoformat(timespec="seconds"))
        alts = [n for n in self.want.names if n != self.want.domain]
        kwargs: dict[str, Any] = {"SubjectAlternativeNames": [self.want.domain, *alts]} if alts else {}
        self.arn = self.acm.request_certificate(DomainName=self.want.domain, ValidationMethod="DNS",
                                                IdempotencyToken=token, Tags=aws_tags(tags),
                                                **kwargs)["CertificateArn"]

    def records(self) -> dict[str, tuple[str, str]]:
        """Name -> (record name, value) of each validation CNAME; ACM fills them in within seconds."""
        if self.arn is None:
            raise OpsbookError(f"no certificate for {self.want.domain} to validate (its request did not run)",
                               remedy="plan again: the request comes before validation in the plan")
        deadline = time.monotonic() + 120
        while True:
            options = self.acm.describe_certificate(CertificateArn=self.arn)["Certificate"].get(
                "DomainValidationOptions", [])
            found = {o["DomainName"]: (o["ResourceRecord"]["Name"], o["ResourceRecord"]["Value"])
                     for o in options if o.get("ResourceRecord")}
            if len(found) == len(self.want.names) or time.monotonic() > deadline:
                return found
            time.sleep(5)

    def validate(self, name: str) -> None:
        record = self.records().get(name)
        if record is None:
            raise OpsbookError(f"ACM gave no validation record for {name} of {self.arn} within 2 minutes",
                               remedy=f"describe the certificate (aws acm describe-certificate --certificate-arn "
                                      f"{self.arn}) and run again")
        zone, zone_id = self.zones.holding(record[0])
        self.zones.upsert(zone_id, record[0], record[1])

    def wait_issued(self) -> None:
        delay = 15
        try:
            self.acm.get_waiter("certificate_validated").wait(
                CertificateArn=self.arn, WaiterConfig={"Delay": delay,
                                                       "MaxAttempts": max(1, int(self.timeout * 60 / delay))})
        except botocore.exceptions.WaiterError as exc:  # timed out, or FAILED
            status = self.acm.describe_certificate(CertificateArn=self.arn)["Certificate"]["Status"]
            raise OpsbookError(f"certificate {self.arn} for {self.want.domain} is {status}, not ISSUED, after "
                               f"{self.timeout:g} minutes ({exc})",
                               remedy="check its validation CNAMEs resolve (dig CNAME <record>) and run again to keep "
                                      "waiting") from None


def plan_certificates(env: Env, domain: str = "", alternative_names: list[str] | tuple[str, ...] = (),
                      min_days: int | None = None, region: str = "", timeout_minutes: float = 30) -> Plan:
    """Request (or replace) each wanted certificate, validate it through Route 53, wait for ISSUED."""
    region = naming.target_region(env.params, region)
    min_days = _days(env.params.cert_min_days if min_days is None else min_days, "min_days")
    wants = wanted(env, domain, alternative_names)
    zones = Zones(env)
    for want in wants:  # fail before anything changes when a name has no zone
        for name in want.names:
            zones.holding(name)
    certs = list_certificates(env, region)
    now = env.now()
    plan = Plan(f"certificates of {env.name} in {region}", production=env.params.production)
    for want in wants:
        cert = current_certificate(certs, want)
        days = _days_left(cert, now) if cert else None
        renew = cert is not None and cert["Status"] == "ISSUED" and days is not None and days < min_days
        keep = cert is not None and not renew
        work = _Work(env, region, want, zones, cert["CertificateArn"] if keep else None, timeout_minutes)
        res = f"acm {want.domain}"
        desired = f"ISSUED, at least {min_days} days left"
        current = _describe(cert, now)
        if renew:
            current = f"{current}: renew"
        plan.add(Change(res, "certificate", current, desired, "no-op" if keep else "create", do=work.request))
        if keep:
            options = {o["DomainName"]: o.get("ResourceRecord") for o in cert.get("DomainValidationOptions", [])}
            for name in want.names:
                record = options.get(name)
                if record is None:
                    if cert["Status"] == "ISSUED":
                        continue  # validated already; nothing to keep in DNS that ACM told us of
                    raise OpsbookError(f"certificate {cert['CertificateArn']} has no DNS validation record for "
                                       f"{name} (requested with another validation method?)",
                                       remedy="request a new one with DNS validation (delete this one, then plan "
                                              "again)")
                zone, zone_id = zones.holding(record["Name"])
                have = zones.cname(zone_id, record["Name"])
                action = "no-op" if have == record["Value"] else ("update" if have else "create")
                plan.add(Change(f"route53 {zone}", f"CNAME {record['Name']}", have, record["Value"], action,
                                do=lambda n=name, w=work: w.validate(n)))
        else:
            for name in want.names:
                zone, _ = zones.holding(name)
                plan.add(Change(f"route53 {zone}", f"validation CNAME for {name}", None,
                                "(known once requested)", "create", do=lambda n=name, w=work: w.validate(n)))
        status = cert["Status"] if keep else None
        plan.add(Change(res, "status", status, "ISSUED", "no-op" if status == "ISSUED" else (
            "update" if keep else "create"), do=work.wait_issued))
    return plan


def expiring(env: Env, days: int | None = None, region: str = "") -> pd.DataFrame:
    """Certificates whose end of validity falls within `days` (default params cert_min_days)."""
    region = naming.target_region(env.params, region)
    days = _days(env.params.cert_min_days if days is None else days, "expiring_within_days")
    now = env.now()
    rows = []
    for cert in list_certificates(env, region):
        left = _days_left(cert, now)
        if left is None or left > days:
            continue
        rows.append({"domain": cert["DomainName"], "names": ", ".join(_names(cert)), "status": cert["Status"],
                     "type": cert.get("Type"), "not_after": cert["NotAfter"], "days_left": left,
                     "in_use": bool(cert.get("InUseBy")), "arn": cert["CertificateArn"]})
    columns = ["domain", "names", "status", "type", "not_after", "days_left", "in_use", "arn"]
    return pd.DataFrame(rows, columns=columns).sort_values("days_left", ignore_index=True)
