"""What moto's server lacks and the health check reads, filled in through its models.

moto runs in this process (`ThreadedMotoServer`), so the seed can set attributes that
moto's models serialise but that no moto action sets. Each function names the AWS API
it stands in for; everything else goes through boto3.
"""

from __future__ import annotations

from datetime import UTC, datetime


def _vpn_connection(account: str, region: str, vpn_id: str):
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region].vpn_connections[vpn_id]


def set_vpn_static_routes(account: str, region: str, vpn_id: str, cidrs: list[str]) -> None:
    """CreateVpnConnectionRoute for each CIDR (moto: HTTP 500) and StaticRoutesOnly."""
    vpn = _vpn_connection(account, region, vpn_id)
    vpn.options = {"StaticRoutesOnly": True}
    vpn.routes = [{"DestinationCidrBlock": cidr, "Source": "Static", "State": "available"} for cidr in cidrs]


def set_vpn_telemetry(account: str, region: str, vpn_id: str, tunnels: list[tuple[str, bool]]) -> None:
    """The tunnels' VgwTelemetry (outside IP, UP/DOWN) AWS reports; moto reports none."""
    vpn = _vpn_connection(account, region, vpn_id)
    now = datetime.now(UTC).replace(microsecond=0)
    vpn.vgw_telemetry = [
        {
            "OutsideIpAddress": ip,
            "Status": "UP" if up else "DOWN",
            "StatusMessage": "" if up else "IPSEC IS DOWN",
            "LastStatusChange": now,
            "AcceptedRouteCount": 0,
        }
        for ip, up in tunnels
    ]


def issue_certificates_at_once() -> None:
    """ACM issues a DNS-validated certificate once its validation CNAME resolves.

    moto instead waits `settings.ACM_VALIDATION_WAIT` seconds, read from
    MOTO_ACM_VALIDATION_WAIT when moto is first imported (60 s by default, and moto may be
    imported before the sandbox sets it). The seed writes the validation records along
    with each request, so the certificates are due at once.
    """
    from moto import settings

    settings.ACM_VALIDATION_WAIT = 0
