"""AWS service names as the CUR and Cost Explorer write them: product codes and SERVICE values.

The canonical `service` of opsbook's cost frames is the CUR product code (AmazonEC2, ...),
with tax lines under "Tax" (as Cost Explorer shows them). Cost Explorer splits EC2 into
"Amazon Elastic Compute Cloud - Compute" (instances) and "EC2 - Other" (EBS, NAT, ...);
both map back to AmazonEC2.
"""

from __future__ import annotations

TAX = "Tax"
EC2_COMPUTE = "Amazon Elastic Compute Cloud - Compute"
EC2_OTHER = "EC2 - Other"

CE_NAMES = {
    "AmazonEKS": "Amazon Elastic Container Service for Kubernetes",
    "AmazonRDS": "Amazon Relational Database Service",
    "AmazonS3": "Amazon Simple Storage Service",
    "AWSELB": "Amazon Elastic Load Balancing",
    "AWSDataTransfer": "AWS Data Transfer",
    "awskms": "AWS Key Management Service",
    "AWSCloudTrail": "AWS CloudTrail",
    "AmazonRoute53": "Amazon Route 53",
    "AmazonCloudWatch": "AmazonCloudWatch",
    "AmazonDynamoDB": "Amazon DynamoDB",
    "AmazonVPC": "Amazon Virtual Private Cloud",
    "ComputeSavingsPlans": "Savings Plans for AWS Compute usage",
    "datadog-pro-marketplace": "Datadog Pro (Annual)",
}


def ce_service(product_code: str, usage_type: str, record_type: str) -> str:
    """Cost Explorer's SERVICE value for a CUR line."""
    if record_type == "Tax":
        return TAX
    if product_code == "AmazonEC2":
        return EC2_COMPUTE if "BoxUsage" in usage_type or record_type == "Credit" else EC2_OTHER
    return CE_NAMES.get(product_code, product_code)


def product_code(ce_name: str) -> str:
    """The CUR product code (canonical service) for a Cost Explorer SERVICE value."""
    if ce_name in (EC2_COMPUTE, EC2_OTHER):
        return "AmazonEC2"
    if ce_name == TAX:
        return TAX
    for code, name in CE_NAMES.items():
        if name == ce_name:
            return code
    return ce_name


def ce_names(code: str) -> list[str]:
    """Every Cost Explorer SERVICE value standing for a product code (for filters)."""
    if code == "AmazonEC2":
        return [EC2_COMPUTE, EC2_OTHER]
    if code == TAX:
        return [TAX]
    return [CE_NAMES.get(code, code)]

