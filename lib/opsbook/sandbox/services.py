"""The sandbox's services, in start order: later seeds use what earlier ones made.

`core` imports these modules (each registers its service with `@register`) and starts
the services in the order of this list, whatever imported a module first.
"""

SERVICE_MODULES = [
    "opsbook.sandbox.aws.moto_server",  # moto first: every seed below uses its resources
    "opsbook.sandbox.kube.service",  # Kubernetes API emulator; PVs point at moto's EBS volumes
    "opsbook.sandbox.velero",  # Velero controller emulator on the kube API; EBS snapshots in moto
    "opsbook.sandbox.rds.dataplane",  # MariaDB data plane behind moto's RDS instances
    "opsbook.sandbox.aws.quotas",  # Service Quotas emulator
    "opsbook.sandbox.datadog.service",  # Datadog API emulator; keys from moto's SSM
    "opsbook.sandbox.cost.service",  # CUR in S3; Cost Explorer, Pricing, Athena emulators
]
