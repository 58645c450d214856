"""EC2 networking: the VPC found by its CIDR, its subnets, NAT gateways and VPN connections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS


class Subnet(Model):
    subnet_id: str
    cidr: str
    az: str


class NatGateway(Model):
    nat_gateway_id: str
    subnet_id: str
    az: str | None  # the AZ of its subnet
    state: str


class VpnTunnel(Model):
    outside_ip: str
    status: str  # UP or DOWN
    status_message: str = ""
    last_status_change: datetime | None = None


class VpnConnection(Model):
    vpn_connection_id: str
    state: str
    customer_gateway_ip: str | None
    static_routes_only: bool | None
    routes: list[str] = []
    tunnels: list[VpnTunnel] = []


class Network(Model):
    vpc_cidr: str
    vpc_id: str | None  # None: no VPC with that CIDR
    subnets: list[Subnet] = []
    nat_gateways: list[NatGateway] = []
    vpn_connections: list[VpnConnection] = []


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


@COLLECTORS.register("network")
def collect_network(env: Env) -> Network:
    """The VPC whose CIDR params name, and what hangs off it."""
    ec2 = env.aws("ec2")
    cidr = env.params.network.vpc_cidr
    vpcs = [
        v
        for v in _pages(ec2, "describe_vpcs", "Vpcs")
        if v["CidrBlock"] == cidr or any(a["CidrBlock"] == cidr for a in v.get("CidrBlockAssociationSet", []))
    ]
    if not vpcs:
        return Network(vpc_cidr=cidr, vpc_id=None)
    vpc_id = vpcs[0]["VpcId"]
    by_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    subnets = [
        Subnet(subnet_id=s["SubnetId"], cidr=s["CidrBlock"], az=s["AvailabilityZone"])
        for s in _pages(ec2, "describe_subnets", "Subnets", Filters=by_vpc)
    ]
    az_of = {s.subnet_id: s.az for s in subnets}
    nats = [
        NatGateway(
            nat_gateway_id=n["NatGatewayId"],
            subnet_id=n["SubnetId"],
            az=az_of.get(n["SubnetId"]),
            state=n["State"],
        )
        for n in _pages(ec2, "describe_nat_gateways", "NatGateways", Filters=by_vpc)
    ]
    return Network(
        vpc_cidr=cidr, vpc_id=vpc_id, subnets=subnets, nat_gateways=nats, vpn_connections=_vpn(ec2, vpc_id)
    )


def _vpn(ec2: Any, vpc_id: str) -> list[VpnConnection]:
    """VPN connections ending on a VPN gateway attached to the VPC."""
    gateways = ec2.describe_vpn_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])
    vgw_ids = {
        g["VpnGatewayId"]
        for g in gateways["VpnGateways"]
        if any(a["VpcId"] == vpc_id and a["State"] == "attached" for a in g.get("VpcAttachments", []))
    }
    if not vgw_ids:
        return []
    connections = [
        c for c in ec2.describe_vpn_connections()["VpnConnections"] if c.get("VpnGatewayId") in vgw_ids
    ]
    cgw_ids = sorted({c["CustomerGatewayId"] for c in connections})
    cgw_ip = {}
    if cgw_ids:
        for cgw in ec2.describe_customer_gateways(CustomerGatewayIds=cgw_ids)["CustomerGateways"]:
            cgw_ip[cgw["CustomerGatewayId"]] = cgw.get("IpAddress")
    return [
        VpnConnection(
            vpn_connection_id=c["VpnConnectionId"],
            state=c["State"],
            customer_gateway_ip=cgw_ip.get(c["CustomerGatewayId"]),
            static_routes_only=c.get("Options", {}).get("StaticRoutesOnly"),
            routes=[r["DestinationCidrBlock"] for r in c.get("Routes", []) if r.get("State") == "available"],
            tunnels=[
                VpnTunnel(
                    outside_ip=t.get("OutsideIpAddress", ""),
                    status=t.get("Status", ""),
                    status_message=t.get("StatusMessage", ""),
                    last_status_change=t.get("LastStatusChange"),
                )
                for t in c.get("VgwTelemetry", [])
            ],
        )
        for c in connections
        if c["State"] != "deleted"
    ]
