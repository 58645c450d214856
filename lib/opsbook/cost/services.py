"""Display names of AWS services in opsbook's tables and charts (by CUR product code)."""

from __future__ import annotations

from opsbook.formats.aws_services import TAX

DISPLAY = {
    "AmazonEC2": "EC2 (instances, EBS, NAT)",
    "AmazonEKS": "EKS control plane",
    "AmazonRDS": "RDS MySQL",
    "AmazonS3": "S3",
    "AWSELB": "Load balancing",
    "AWSDataTransfer": "Data transfer",
    "awskms": "KMS",
    "AWSCloudTrail": "CloudTrail",
    "AmazonRoute53": "Route 53",
    "ComputeSavingsPlans": "Savings Plans fee",
    "datadog-pro-marketplace": "Datadog (Marketplace)",
    TAX: "Tax",
}


def display(code: str) -> str:
    return DISPLAY.get(code, code)
