"""Generated estates: valid params of other shapes than params/sandbox.yaml, for sandboxes.

A seeded generator (`random.Random(seed)`): the same seed always writes the same params
file, so a failing estate is replayed from its seed alone. What varies, each drawn from
what the real services accept:

- the home region, among the regions botocore knows in the `aws` partition, its AZs from
  moto's zones of that region (2 or 3), the CIDRs, the office VPN;
- 1 to 3 RDS instances (MySQL or MariaDB, any class `db.<type>` of a family RDS offers,
  Multi-AZ or not, backups or not; at least one Multi-AZ with backups, for the drills),
  each with its own identifier, database, user (sometimes shared between instances, with
  a password of its own per instance) and tables;
- 1 to 6 namespaces with their teams and deployments, RabbitMQ and MySQL stateful sets
  with any replica count (at least one namespace is stateful, for the Velero drill);
- node groups of any instance type moto's EC2 catalogue knows that can run the cluster's
  pods (64-bit Linux, at least 2 vCPUs and 4 GiB), sized so every pod finds a node in
  every AZ;
- the names of buckets, SSM parameters, KMS aliases, zones, certificates and the trail;
- 1 or 2 other regions of the estate (the provisioning runbooks target the first), and the
  regions the duplication model prices;
- the CUR generator (months, granularity, tax, credits, Savings Plan node group, idle NAT).

The account stays moto's (`123456789012`): moto bills every request to that account.
The file extends nothing; `write_estate` puts it where the caller says, and `opsbook
params check <file>` validates it (the generator checks it with the same loader).
"""

from __future__ import annotations

import ipaddress
import random
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from opsbook.params import load_params
from opsbook.sandbox.aws.catalogue import aws_regions, instance_types, rds_classes, shape, zones

MOTO_ACCOUNT = "123456789012"  # moto's default account: every sandbox request is billed to it
RDS_ENGINES = {"mysql": ("8.0.39", "8.0.40", "8.4.3"), "mariadb": ("10.11.10", "11.4.4")}
EKS_VERSIONS = ("1.29", "1.30", "1.31")
ADDON_RELEASES = (  # the cluster's add-ons, as Helm charts publish them (chart version, app version)
    ("ingress-nginx", "ingress-nginx", "4.11.3", "1.11.3"),
    ("cluster-autoscaler", "kube-system", "9.43.2", "1.31.0"),
    ("external-dns", "kube-system", "1.15.0", "0.15.0"),
    ("velero", "velero", "8.0.0", "1.15.0"),
    ("datadog", "datadog", "3.80.0", "7.59.0"),
)
RESERVED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease", "velero", "datadog",
                       "ingress-nginx"}
NODE_MIN_VCPU, NODE_MIN_GIB = 2, 4
NODE_MAX_VCPU = 64  # beyond this a node stands for a whole rack; nothing more to learn
# Datadog's public list prices (the PoC cost notebook projects with them)
DATADOG_PRICING = {
    "source": "https://www.datadoghq.com/pricing/ and https://www.datadoghq.com/pricing/allotments/",
    "as_of": "2025-09-01", "currency": "USD",
    "plans": [
        {"plan": "Pro", "billing": "annual", "host_month": 15, "containers_per_host": 5, "container_month": 1.0,
         "custom_metrics_per_host": 100, "custom_metric_month": 0.05},
        {"plan": "Enterprise", "billing": "annual", "host_month": 23, "containers_per_host": 10,
         "container_month": 1.0, "custom_metrics_per_host": 200, "custom_metric_month": 0.05},
    ],
    "cloudwatch": {"source": "https://aws.amazon.com/cloudwatch/pricing/", "as_of": "2025-09-01",
                   "metric_month": 0.30, "alarm_month": 0.10, "dashboard_month": 3.00,
                   "container_insights_metrics_per_node": 30, "dashboards": 3},
}
MONITOR_TEMPLATES = (  # (name, query with {threshold}, critical) over the placeholders params allow
    ("[$env] nodes not ready",
     "max(last_5m):sum:kubernetes_state.node.by_condition{{kube_cluster_name:$cluster,condition:ready,"
     "status:false}} > {threshold}", 0),
    ("[$env] database CPU", "avg(last_15m):avg:aws.rds.cpuutilization{{dbinstanceidentifier:$rds}} > {threshold}",
     85),
    ("[$env] queue depth", "avg(last_10m):sum:rabbitmq.queue.messages{{kube_cluster_name:$cluster}} > {threshold}",
     10000),
)


# --- what the services accept ------------------------------------------------------------------


@cache
def node_types() -> tuple[str, ...]:
    """Types an EKS node can be: 64-bit Linux (no Mac hosts), big enough for the cluster's pods."""
    fits = [(name, shape(name)) for name in instance_types()]
    return tuple(sorted(name for name, s in fits if s and s.arch in ("x86_64", "arm64")
                        and NODE_MIN_VCPU <= s.vcpu <= NODE_MAX_VCPU and s.memory_gib >= NODE_MIN_GIB))


# --- names ---------------------------------------------------------------------------------------


class Names:
    """Pronounceable made-up words, never one twice (so no two estate objects share a name)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: tuple[int, int] = (2, 3)) -> str:
        while True:
            n = self.rng.randint(*syllables)
            word = "".join(self.rng.choice("bdfgklmnprstvz") + self.rng.choice("aeiou") for _ in range(n))
            if word not in self.used:
                self.used.add(word)
                return word

    def joined(self, sep: str, parts: int = 2, syllables: tuple[int, int] = (2, 3)) -> str:
        return sep.join(self.word(syllables) for _ in range(parts))


# --- the parts of an estate ------------------------------------------------------------------------


def _network(rng: random.Random, region: str) -> dict[str, Any]:
    available = zones(region)
    azs = sorted(rng.sample(available, min(len(available), rng.choice((2, 3, 3)))))
    vpc = ipaddress.IPv4Network(f"10.{rng.randint(0, 250)}.0.0/16")
    halves = list(vpc.subnets(new_prefix=17))
    public = list(halves[0].subnets(new_prefix=20))[:len(azs)]
    private = list(halves[1].subnets(new_prefix=19))[:len(azs)]
    office = [f"192.168.{16 * i}.0/20" for i in range(rng.randint(1, 2))]
    return {"vpc_cidr": str(vpc), "azs": azs, "public_subnets": [str(s) for s in public],
            "private_subnets": [str(s) for s in private], "nat_gateway_per_az": rng.random() < 0.8,
            "vpn": {"customer_gateway_ip": f"203.0.113.{rng.randint(1, 254)}", "bgp_asn": rng.randint(64512, 65534),
                    "office_cidrs": office}}


def _node_groups(rng: random.Random, names: Names, azs: list[str], pods: int) -> list[dict[str, Any]]:
    """1-3 groups; the first has a node in every AZ and room for every pod (1 vCPU / 2 GiB each)."""
    groups = []
    for index in range(rng.randint(1, 3)):
        itype = rng.choice(node_types())
        size = shape(itype)
        assert size is not None
        desired = rng.randint(1, 4)
        if index == 0:
            per_node = max(1, min(size.vcpu, int(size.memory_gib // 2)))
            desired = max(desired, len(azs), -(-pods // per_node) + 1)
        desired = min(desired, 12)
        groups.append({"name": names.word(), "instance_type": itype, "min_size": rng.randint(0, desired),
                       "max_size": desired + rng.randint(0, 6), "desired_size": desired})
    return groups


def _rds(rng: random.Random, names: Names, ssm_prefix: str) -> list[dict[str, Any]]:
    instances = []
    users = [names.word() + rng.choice(("", "_app", "_ops", str(rng.randint(1, 99))))]
    for index in range(rng.randint(1, 3)):
        engine = rng.choice(sorted(RDS_ENGINES))
        ident = names.joined("-", rng.randint(1, 3)) + rng.choice(("", f"-{rng.randint(1, 99)}"))
        if rng.random() < 0.5 or index == 0:  # a user of its own, or the same name as another instance's
            users.append(names.word() + rng.choice(("", "_rw", "_drill")))
        user = rng.choice(users)
        instances.append({
            "identifier": ident, "engine": engine, "engine_version": rng.choice(RDS_ENGINES[engine]),
            "instance_class": rng.choice(rds_classes()), "allocated_storage_gb": rng.choice((20, 50, 100, 250, 500)),
            "multi_az": rng.random() < 0.7, "backup_retention_days": rng.choice((0, 1, 7, 14, 35)),
            "storage_encrypted": rng.random() < 0.9, "database": names.word() + rng.choice(("", "_db", "_main")),
            "username": user, "password_ssm": f"{ssm_prefix}/rds/{ident}/{user}-password",
            "tables": sorted({names.word() + rng.choice(("", "s", "_log", "_2024")) for _ in range(rng.randint(1, 4))}),
        })
    if not any(i["multi_az"] and i["backup_retention_days"] for i in instances):
        pick = rng.choice(instances)  # the drills need one Multi-AZ instance with backups
        pick.update(multi_az=True, backup_retention_days=7)
    return instances


def _namespaces(rng: random.Random, names: Names) -> list[dict[str, Any]]:
    teams = [names.word() for _ in range(rng.randint(1, 3))]
    namespaces = []
    for _ in range(rng.randint(1, 6)):
        name = names.joined("-", rng.randint(1, 2), (2, 2))
        while name in RESERVED_NAMESPACES:  # the cluster's own (add-ons, Kubernetes)
            name = names.joined("-", 2, (2, 2))
        stateful = []
        for _ in range(rng.choice((0, 1, 1, 2))):
            kind = rng.choice(("rabbitmq", "mysql"))
            workload: dict[str, Any] = {"name": names.word((2, 2)) + ("-mq" if kind == "rabbitmq" else "-db"),
                                        "kind": kind, "replicas": rng.randint(1, 3),
                                        "volume_size_gi": rng.choice((5, 10, 20, 50, 100))}
            if kind == "mysql" and rng.random() < 0.4:
                workload["database"] = names.word()
            stateful.append(workload)
        namespaces.append({"name": name, "team": rng.choice(teams),
                           "deployments": [names.word((2, 2)) for _ in range(rng.randint(0, 2))],
                           "stateful": stateful})
    if not any(ns["stateful"] for ns in namespaces):  # the Velero drill needs a stateful namespace
        rng.choice(namespaces)["stateful"] = [{"name": names.word((2, 2)) + "-db", "kind": "mysql", "replicas": 1}]
    return namespaces


def _pods(namespaces: list[dict[str, Any]]) -> int:
    """Pods the cluster runs: the add-ons' (about 12), two per deployment, one per stateful replica."""
    return 12 + sum(2 * len(ns["deployments"]) + sum(w.get("replicas", 1) for w in ns["stateful"])
                    for ns in namespaces)


def _ssm(prefix: str, rds: list[dict[str, Any]], secure: list[str], plain: list[str]) -> dict[str, Any]:
    secrets = [i["password_ssm"] for i in rds] + secure
    return {"prefix": prefix, "required": list(dict.fromkeys(secrets + plain)), "secure": list(dict.fromkeys(secrets))}


def _datadog(rng: random.Random, ssm_prefix: str, poc_target: str) -> dict[str, Any]:
    monitors = []
    for name, query, critical in rng.sample(MONITOR_TEMPLATES, rng.randint(1, len(MONITOR_TEMPLATES))):
        monitors.append({"name": name, "query": query.format(threshold=critical), "critical": critical,
                         "priority": rng.randint(1, 5), "message": "Look at the estate's runbooks.",
                         "tags": ["service:estate"]})
    return {"site": rng.choice(("datadoghq.eu", "datadoghq.com")), "api_key_ssm": f"{ssm_prefix}/datadog/api-key",
            "app_key_ssm": f"{ssm_prefix}/datadog/app-key", "monitors": monitors, "pricing": DATADOG_PRICING,
            "poc_target_env": poc_target}


def _cost(rng: random.Random, names: Names, region: str, buckets: dict[str, str], azs: list[str],
          groups: list[dict[str, Any]], others: list[str]) -> dict[str, Any]:
    hourly = rng.random() < 0.15
    months = rng.randint(9, 11) if hourly else rng.randint(9, 24)
    credit_months = rng.choice((0, 0, 1, 3))
    elsewhere = [r for r in aws_regions() if r != region]
    scenario: dict[str, Any] = {"node_groups": {g["name"]: {"count": rng.randint(1, 6)} for g in groups
                                                if rng.random() < 0.5}}
    if rng.random() < 0.5:
        scenario["nat_gateways"] = rng.randint(1, 3)
    word = names.word()
    return {
        "source": "cur", "metric": rng.choice(("amortized", "unblended")),
        "cur": {"prefix": names.word(), "export_name": f"{word}-cur2"},
        "athena": {"database": names.word(), "table": f"{word}_cur2"},
        "budgets": [{"name": f"{names.word()}-monthly", "monthly_usd": rng.randint(500, 50_000)}
                    for _ in range(rng.randint(0, 2))],
        "sms_volume": {"source": "csv", "csv": f"s3://{buckets['cur']}/drivers/sms-volume.csv"},
        "forecast": {"backtest_origins": rng.randint(3, 8), "min_train_months": rng.randint(3, 8)},
        "region_model": {"target_regions": sorted(rng.sample([r for r in elsewhere if r not in others] or elsewhere,
                                                             rng.randint(1, 3))),
                         "scenario": scenario},
        "generator": {
            "months": months, "granularity": "HOURLY" if hourly else "DAILY", "seed": rng.randint(1, 10_000),
            "sms_per_day": float(rng.randint(100_000, 5_000_000)), "other_region_share": round(rng.uniform(0.02, 0.2), 3),
            "tax_rate": rng.choice((0.0, 0.0, 0.19, 0.2, 0.23)),
            "credit_usd_month": float(rng.choice((0, 50, 150, 400))) if credit_months else 0.0,
            "credit_months": credit_months,
            "savings_plan_node_group": rng.choice([None] + [g["name"] for g in groups]),
            "idle_nat_az": rng.choice([None, *azs]), "anomaly_days_ago": rng.randint(20, 60),
        },
    }


# --- the estate --------------------------------------------------------------------------------------


def estate(seed: int, path: Path | None = None) -> dict[str, Any]:
    """The params (as a mapping) of the estate `seed`; `path` is where the file will live."""
    rng = random.Random(seed)
    names = Names(rng)
    env = f"estate-{seed}"
    region = rng.choice(aws_regions())
    prefix = "/" + names.word()
    ssm_prefix = f"{prefix}/{env}"
    org = names.word()
    network = _network(rng, region)
    namespaces = _namespaces(rng, names)
    groups = _node_groups(rng, names, network["azs"], _pods(namespaces))
    rds = _rds(rng, names, ssm_prefix)
    buckets = {key: f"{org}-{env}-{names.word()}" for key in ("terraform_state", "velero", "static", "logs", "cur")}
    others = sorted(rng.sample([r for r in aws_regions() if r != region], rng.randint(1, 2)))
    domain = f"{names.word()}.{rng.choice(('example', 'test'))}"
    rabbit_pw, mysql_pw = f"{ssm_prefix}/broker/{names.word()}-password", f"{ssm_prefix}/db/{names.word()}-password"
    dd = _datadog(rng, ssm_prefix, str(path) if path else env)
    plain = [f"{ssm_prefix}/app/{names.word()}/{names.word()}" for _ in range(rng.randint(0, 2))]
    token = names.word((1, 2))
    return {
        "env": env, "production": False, "account_id": MOTO_ACCOUNT, "region": region, "other_regions": others,
        "network": network,
        "eks": {"cluster_name": f"{org}-{names.word()}", "version": rng.choice(EKS_VERSIONS), "node_groups": groups,
                "addons": [{"name": n, "namespace": ns, "chart": n, "version": v, "app_version": a}
                           for n, ns, v, a in ADDON_RELEASES]},
        "rds": rds, "buckets": buckets, "lock_table": f"{org}-{names.word()}-locks",
        "kms": {key: f"alias/{org}-{names.word()}" for key in ("terraform", "rds", "ssm")},
        "zones": {"public": domain, "private": f"{names.word()}.internal"},
        "certificates": [{"domain": f"{names.word()}.{domain}",
                          "alternative_names": [f"{names.word()}.{domain}" for _ in range(rng.randint(0, 2))]}
                         for _ in range(rng.randint(1, 2))],
        "cert_min_days": rng.choice((14, 30, 45)),
        "ssm": _ssm(ssm_prefix, rds, [dd["api_key_ssm"], dd["app_key_ssm"], rabbit_pw, mysql_pw], plain),
        "trail_name": f"{org}-{names.word()}", "datadog": dd, "namespaces": namespaces,
        "stateful_access": {
            "rabbitmq": {"host": "127.0.0.1", "management_url": "http://127.0.0.1:15672",
                         "vhost": f"{token}.{{namespace}}.{{service}}", "username": f"{names.word()}-{token}",
                         "password_ssm": rabbit_pw},
            "mysql": {"host": "127.0.0.1", "database": f"{token}_{{namespace}}_{{database}}",
                      "username": f"{names.word()}_{token}", "password_ssm": mysql_pw},
        },
        "velero": {"timeout_minutes": 5, "pod_ready_timeout_minutes": 2, "poll_seconds": 0.5,
                   "rpo_minutes": rng.choice((1500, 2000))},
        "targets": {"rto_minutes": 30, "rpo_minutes": 15},
        "sandbox": {"omit": []},
        "cost": _cost(rng, names, region, buckets, network["azs"], groups, others),
    }


def write_estate(seed: int, folder: Path) -> Path:
    """Write the estate `seed` as `<folder>/estate-<seed>.yaml`, checked by the params loader."""
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"estate-{seed}.yaml").resolve()
    header = (f"# A generated estate (opsbook.sandbox.estates, seed {seed}); regenerate it with\n"
              f"# `opsbook estates write --seed {seed}`. It extends nothing.\n")
    path.write_text(header + yaml.safe_dump(estate(seed, path), sort_keys=False, width=120))
    load_params(path)  # a ParamsError here is a bug of the generator
    return path


def new_seed() -> int:
    """A fresh seed (printed by whoever uses it, so the run can be replayed)."""
    return random.SystemRandom().randint(1, 10**6 - 1)




def seeds(base: int, count: int) -> list[int]:
    """The seeds of a run of `count` estates starting at `base` (a run is replayed from its base)."""
    return [base + i for i in range(count)]
