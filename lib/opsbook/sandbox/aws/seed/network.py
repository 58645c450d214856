"""The VPC: subnets per AZ, internet gateway, route tables, NAT gateways, the office VPN."""

from __future__ import annotations

from opsbook.sandbox.aws.seed import moto_gaps
from opsbook.sandbox.aws.seed.context import Seed, tag_spec

# the two tunnels' outside addresses AWS would report (documentation range, RFC 5737)
TUNNEL_OUTSIDE_IPS = ["198.51.100.101", "198.51.100.102"]


def seed_network(seed: Seed) -> None:
    net = seed.params.network
    ec2 = seed.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=net.vpc_cidr, TagSpecifications=tag_spec("vpc", seed.tags(seed.name)))
    seed.vpc_id = vpc["Vpc"]["VpcId"]
    # private hosted zones and EKS need DNS in the VPC (one attribute per call)
    ec2.modify_vpc_attribute(VpcId=seed.vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=seed.vpc_id, EnableDnsHostnames={"Value": True})
    cluster_tag = {f"kubernetes.io/cluster/{seed.name}": "shared"}

    for az, public, private in zip(net.azs, net.public_subnets, net.private_subnets, strict=True):
        seed.public_subnets[az] = _subnet(
            seed,
            az,
            public,
            seed.tags(f"{seed.name}-public-{az}", **cluster_tag, **{"kubernetes.io/role/elb": "1"}),
        )
        seed.private_subnets[az] = _subnet(
            seed,
            az,
            private,
            seed.tags(f"{seed.name}-private-{az}", **cluster_tag, **{"kubernetes.io/role/internal-elb": "1"}),
        )
        ec2.modify_subnet_attribute(SubnetId=seed.public_subnets[az], MapPublicIpOnLaunch={"Value": True})

    igw = ec2.create_internet_gateway(TagSpecifications=tag_spec("internet-gateway", seed.tags(seed.name)))
    igw_id = igw["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=seed.vpc_id)
    public_rt = _route_table(seed, f"{seed.name}-public")
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
    for subnet in seed.public_subnets.values():
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=subnet)

    vgw_id = _vpn(seed)
    nat_azs = net.azs if net.nat_gateway_per_az else net.azs[:1]
    nats = {az: _nat_gateway(seed, az) for az in nat_azs if not seed.omit.has("nat_gateway", az)}
    for az, subnet in seed.private_subnets.items():
        rt = _route_table(seed, f"{seed.name}-private-{az}")
        # one NAT per AZ, or (nat_gateway_per_az: false) the single shared one
        nat = nats.get(az) if net.nat_gateway_per_az else next(iter(nats.values()), None)
        if nat:
            ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        if vgw_id:
            for cidr in net.vpn.office_cidrs:
                ec2.create_route(RouteTableId=rt, DestinationCidrBlock=cidr, GatewayId=vgw_id)
        ec2.associate_route_table(RouteTableId=rt, SubnetId=subnet)


def _subnet(seed: Seed, az: str, cidr: str, tags: dict[str, str]) -> str:
    subnet = seed.client("ec2").create_subnet(
        VpcId=seed.vpc_id, CidrBlock=cidr, AvailabilityZone=az, TagSpecifications=tag_spec("subnet", tags)
    )
    return subnet["Subnet"]["SubnetId"]


def _route_table(seed: Seed, name: str) -> str:
    rt = seed.client("ec2").create_route_table(
        VpcId=seed.vpc_id, TagSpecifications=tag_spec("route-table", seed.tags(name))
    )
    return rt["RouteTable"]["RouteTableId"]


def _nat_gateway(seed: Seed, az: str) -> str:
    ec2 = seed.client("ec2")
    eip = ec2.allocate_address(
        Domain="vpc", TagSpecifications=tag_spec("elastic-ip", seed.tags(f"{seed.name}-nat-{az}"))
    )
    nat = ec2.create_nat_gateway(
        SubnetId=seed.public_subnets[az],
        AllocationId=eip["AllocationId"],
        TagSpecifications=tag_spec("natgateway", seed.tags(f"{seed.name}-nat-{az}")),
    )
    return nat["NatGateway"]["NatGatewayId"]


def _vpn(seed: Seed) -> str | None:
    """Customer gateway (the office), VPN gateway on the VPC, and the connection between them."""
    if seed.omit.has("vpn"):
        return None
    vpn_params = seed.params.network.vpn
    ec2 = seed.client("ec2")
    cgw = ec2.create_customer_gateway(
        Type="ipsec.1",
        PublicIp=vpn_params.customer_gateway_ip,
        BgpAsn=vpn_params.bgp_asn,
        TagSpecifications=tag_spec("customer-gateway", seed.tags(f"{seed.name}-office")),
    )["CustomerGateway"]["CustomerGatewayId"]
    vgw = ec2.create_vpn_gateway(
        Type="ipsec.1", TagSpecifications=tag_spec("vpn-gateway", seed.tags(seed.name))
    )["VpnGateway"]["VpnGatewayId"]
    ec2.attach_vpn_gateway(VpcId=seed.vpc_id, VpnGatewayId=vgw)
    vpn = ec2.create_vpn_connection(
        Type="ipsec.1",
        CustomerGatewayId=cgw,
        VpnGatewayId=vgw,
        Options={"StaticRoutesOnly": True},
        TagSpecifications=tag_spec("vpn-connection", seed.tags(f"{seed.name}-office")),
    )["VpnConnection"]["VpnConnectionId"]
    account = seed.client("sts").get_caller_identity()["Account"]
    region = seed.params.region
    moto_gaps.set_vpn_static_routes(account, region, vpn, list(vpn_params.office_cidrs))
    tunnels = [
        (ip, not seed.omit.has("vpn_tunnel", str(n))) for n, ip in enumerate(TUNNEL_OUTSIDE_IPS, start=1)
    ]
    moto_gaps.set_vpn_telemetry(account, region, vpn, tunnels)
    return vgw
