"""AWS usage types and their region prefixes, as the CUR and the Price List write them.

A usage type carries its region as a prefix (`EUC1-BoxUsage:m6i.large`; none for most
usage in us-east-1; KMS-style types carry the region name itself: `eu-west-1-KMS-Keys`).
The prefixes are AWS's (https://docs.aws.amazon.com/cur/latest/userguide/product-columns.html
and the Price List's `usagetype` attribute). Both the cost models and the sandbox's bill
generator read them from here.
"""

from __future__ import annotations

import re

from opsbook.errors import OpsbookError

# The prefix AWS puts before usage types in each region (EC2, EBS, NAT, ELB, RDS, S3 ...): AWS's
# "Region billing codes" (https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-region-billing-codes.html),
# every region of the aws partition. us-east-1 has none for most services; KMS uses the region name itself.
REGION_PREFIX = {
    "us-east-1": "USE1", "us-east-2": "USE2", "us-west-1": "USW1", "us-west-2": "USW2",
    "ca-central-1": "CAN1", "ca-west-1": "CAN2", "mx-central-1": "MXC1",
    "af-south-1": "AFS1",
    "ap-east-1": "APE1", "ap-east-2": "APE2", "ap-northeast-1": "APN1", "ap-northeast-2": "APN2",
    "ap-northeast-3": "APN3", "ap-southeast-1": "APS1", "ap-southeast-2": "APS2", "ap-south-1": "APS3",
    "ap-southeast-3": "APS4", "ap-south-2": "APS5", "ap-southeast-4": "APS6", "ap-southeast-5": "APS7",
    "ap-southeast-6": "APS8", "ap-southeast-7": "APS9",
    "eu-central-1": "EUC1", "eu-central-2": "EUC2", "eu-west-1": "EU", "eu-west-2": "EUW2", "eu-west-3": "EUW3",
    "eu-north-1": "EUN1", "eu-south-1": "EUS1", "eu-south-2": "EUS2",
    "il-central-1": "ILC1", "me-central-1": "MEC1", "me-south-1": "MES1",
    "sa-east-1": "SAE1",
}
_PREFIXES = sorted(set(REGION_PREFIX.values()), key=len, reverse=True)
_PREFIX_RE = re.compile(r"^(?:(" + "|".join(_PREFIXES) + r")-|([a-z]{2}(?:-[a-z]+)+-\d)-)")


def strip_region(usage_type: str) -> str:
    """'EUC1-BoxUsage:m6i.large' -> 'BoxUsage:m6i.large'; 'eu-west-1-KMS-Keys' -> 'KMS-Keys'."""
    return _PREFIX_RE.sub("", usage_type, count=1)


def usage_type_in(original: str, region: str) -> str:
    """The usage type `original` would have in `region`: same base, that region's prefix.

    Unprefixed (global) usage types stay as they are; KMS-style ones take the region name.
    """
    match = _PREFIX_RE.match(original)
    if match is None:
        return original
    base = original[match.end():]
    if match.group(2):
        return f"{region}-{base}"
    if region not in REGION_PREFIX:
        raise OpsbookError(f"no usage-type prefix known for region {region!r}",
                           remedy="add it to REGION_PREFIX in opsbook/formats/aws_usage.py")
    return f"{REGION_PREFIX[region]}-{base}"


def region_of_usage_type(usage_type: str) -> str | None:
    match = _PREFIX_RE.match(usage_type)
    if not match:
        return None
    if match.group(2):
        return match.group(2)
    return {v: k for k, v in REGION_PREFIX.items()}[match.group(1)]
