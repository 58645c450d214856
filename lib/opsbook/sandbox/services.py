"""The sandbox's services, in start order: later seeds use what earlier ones made.

Each module registers its service beside the class (`@SERVICES.register("aws")`); this
list is the loader, and `Sandbox.start()` starts the services in its order, whatever
imported a module first.
"""

from opsbook.registry import Registry

SERVICES = Registry("sandbox service", [
    "opsbook.sandbox.aws.moto_server",  # moto first: every seed below uses its resources
    "opsbook.sandbox.kube.service",  # Kubernetes API emulator; PVs point at moto's EBS volumes
    "opsbook.sandbox.velero",  # Velero controller emulator on the kube API; EBS snapshots in moto
    "opsbook.sandbox.rds.dataplane",  # MariaDB data plane behind moto's RDS instances
    "opsbook.sandbox.aws.quotas",  # Service Quotas emulator
    "opsbook.sandbox.datadog.service",  # Datadog API emulator; keys from moto's SSM
    "opsbook.sandbox.cost.service",  # CUR in S3; Cost Explorer, Pricing, Athena emulators
])
