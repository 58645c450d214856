"""Provisioning steps around Terraform: each builds a `guard.Plan` and applies only through it.

- `backend`       the Terraform state backend of an account and region (KMS, S3, DynamoDB, CloudTrail)
- `region`        new-region readiness (AZs, quotas, CIDR plan) and its terraform.tfvars
- `certificates`  ACM certificates validated through Route 53, and those about to expire
- `ssm_sync`      parameter trees compared by hash, missing parameters copied to another region
- `addons`        the EKS add-ons' Helm releases, wanted versions, and Helm values from params
"""
