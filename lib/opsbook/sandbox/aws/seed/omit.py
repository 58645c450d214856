"""`params.sandbox.omit`: pieces of the estate the seed leaves out or leaves wrong.

Tests use it to make the sandbox differ from its params, so that the health checks have
something to report. Accepted forms (anything else is rejected before anything is seeded):

    nat_gateway/<az>       no NAT gateway (nor its Elastic IP) in that AZ of network.azs;
                           that AZ's private route table gets no default route
    vpn                    no VPN gateway, customer gateway or VPN connection
    vpn_tunnel/<1|2>       that tunnel of the VPN connection reports DOWN
    node_group/<name>      no EKS node group <name> (of eks.node_groups) and no instances for it
    rds/<identifier>       no RDS instance <identifier> (of rds)
    bucket/<key>           no bucket buckets.<key> (terraform_state, velero, static, logs, cur);
                           without the logs bucket there is no trail either
    lock_table             no DynamoDB lock table
    kms_rotation/<key>     key rotation left disabled on the KMS key kms.<key> (terraform, rds, ssm)
    trail                  no CloudTrail trail
    trail_logging          the trail exists but is not logging
    certificate/<domain>   no ACM certificate for <domain> (of certificates)
    ssm_parameter/<name>   no SSM parameter <name> (of ssm.required or ssm.secure)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opsbook.errors import ParamsError
from opsbook.params import Params

# the accepted forms as documented above, quoted in errors
FORMS = __doc__.split("seeded):\n", 1)[1].rstrip()


def _choices(params: Params) -> dict[str, Callable[[], list[str]] | None]:
    """Each kind of omission and the qualifiers it accepts (None: takes no qualifier)."""
    return {
        "nat_gateway": lambda: list(params.network.azs),
        "vpn": None,
        "vpn_tunnel": lambda: ["1", "2"],
        "node_group": lambda: [g.name for g in params.eks.node_groups],
        "rds": lambda: [i.identifier for i in params.rds],
        "bucket": lambda: list(params.buckets.model_dump()),
        "lock_table": None,
        "kms_rotation": lambda: list(params.kms.model_dump()),
        "trail": None,
        "trail_logging": None,
        "certificate": lambda: [c.domain for c in params.certificates],
        "ssm_parameter": lambda: list(dict.fromkeys([*params.ssm.required, *params.ssm.secure])),
    }


@dataclass(frozen=True)
class Omit:
    """The validated omissions: `omit.has("nat_gateway", "eu-central-1c")`."""

    entries: frozenset[tuple[str, str]] = frozenset()

    def has(self, kind: str, qualifier: str = "") -> bool:
        return (kind, qualifier) in self.entries


def parse_omit(params: Params) -> Omit:
    """Validate `sandbox.omit`; a ParamsError names the entry and the accepted forms."""
    raw = params.sandbox.omit if params.sandbox else []
    choices = _choices(params)
    entries: set[tuple[str, str]] = set()
    for index, entry in enumerate(raw):
        kind, _, qualifier = entry.partition("/")
        field = f"{params.source}: field 'sandbox.omit.{index}'"
        if kind not in choices:
            raise ParamsError(f"{field}: unknown omission {entry!r}; expected one of these forms:\n{FORMS}")
        allowed = choices[kind]
        if allowed is None:
            if qualifier:
                raise ParamsError(f"{field}: {kind!r} takes no qualifier, got {entry!r}")
        elif qualifier not in (options := allowed()):
            raise ParamsError(f"{field}: expected {kind}/<one of {', '.join(options)}>, got {entry!r}")
        entries.add((kind, qualifier))
    return Omit(frozenset(entries))
