"""Route 53 public and private zones, and ACM certificates validated through the public zone."""

from __future__ import annotations

import uuid

from opsbook.sandbox.aws.seed import moto_gaps
from opsbook.sandbox.aws.seed.context import Seed, tag_list


def seed_dns(seed: Seed) -> None:
    route53 = seed.client("route53")
    zones = seed.params.zones
    public = route53.create_hosted_zone(
        Name=zones.public,
        CallerReference=str(uuid.uuid4()),
        HostedZoneConfig={"Comment": f"{seed.name} public", "PrivateZone": False},
    )["HostedZone"]["Id"]
    route53.create_hosted_zone(
        Name=zones.private,
        CallerReference=str(uuid.uuid4()),
        VPC={"VPCRegion": seed.params.region, "VPCId": seed.vpc_id},
        HostedZoneConfig={"Comment": f"{seed.name} private", "PrivateZone": True},
    )
    _certificates(seed, public)


def _certificates(seed: Seed, public_zone_id: str) -> None:
    """One DNS-validated certificate per params entry, its validation CNAMEs in the public zone."""
    moto_gaps.issue_certificates_at_once()
    acm = seed.client("acm")
    zone = seed.params.zones.public.rstrip(".") + "."
    changes: dict[str, dict] = {}
    for cert in seed.params.certificates:
        if seed.omit.has("certificate", cert.domain):
            continue
        kwargs = (
            {"SubjectAlternativeNames": [cert.domain, *cert.alternative_names]}
            if cert.alternative_names
            else {}
        )
        arn = acm.request_certificate(
            DomainName=cert.domain, ValidationMethod="DNS", Tags=tag_list(seed.tags(cert.domain)), **kwargs
        )["CertificateArn"]
        details = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        for option in details.get("DomainValidationOptions", []):
            record = option.get("ResourceRecord")
            # Route 53 only takes names inside the zone
            if record and (record["Name"] == zone or record["Name"].endswith("." + zone)):
                changes[record["Name"]] = {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": record["Name"],
                        "Type": record["Type"],
                        "TTL": 300,
                        "ResourceRecords": [{"Value": record["Value"]}],
                    },
                }
    if changes:
        seed.client("route53").change_resource_record_sets(
            HostedZoneId=public_zone_id, ChangeBatch={"Changes": list(changes.values())}
        )
