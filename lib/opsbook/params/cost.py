"""Cost sources and the finance notebooks' knobs (lib/opsbook/cost reads these)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from opsbook.params.types import Model, Region


class CostBudget(Model):
    """A monthly AWS Budgets cost budget the monthly review compares against."""

    name: str = Field(min_length=1)
    monthly_usd: float = Field(gt=0)


class SharedCostRule(Model):
    """A shared cost pool and how it is split across the team namespaces.

    The pool is the CUR lines matched by product code or usage type, plus the cost
    already allocated to the listed namespaces (e.g. the Datadog agent's pods).
    """

    name: str = Field(min_length=1)
    product_codes: list[str] = []
    usage_type_contains: list[str] = []
    namespaces: list[str] = []
    split: Literal["proportional", "even", "weights"] = "proportional"
    weights: dict[str, float] = Field({}, description="namespace -> weight, for split: weights")

    @model_validator(mode="after")
    def _pool_and_split(self) -> SharedCostRule:
        if not (self.product_codes or self.usage_type_contains or self.namespaces):
            raise ValueError(f"{self.name!r}: name what to share (product_codes, usage_type_contains or namespaces)")
        if (self.split == "weights") != bool(self.weights):
            raise ValueError(f"{self.name!r}: weights are needed exactly when split is 'weights'")
        if any(w < 0 for w in self.weights.values()) or (self.weights and sum(self.weights.values()) <= 0):
            raise ValueError(f"{self.name!r}: weights must be >= 0 with a positive sum")
        return self


def _default_shared() -> list[SharedCostRule]:
    return [
        SharedCostRule(name="eks-control-plane", product_codes=["AmazonEKS"]),
        SharedCostRule(name="load-balancer", product_codes=["AWSELB"]),
        SharedCostRule(name="nat-gateways", usage_type_contains=["NatGateway"], split="even"),
        SharedCostRule(name="datadog-agent", namespaces=["datadog"]),
        SharedCostRule(name="cluster-addons", namespaces=["kube-system", "ingress-nginx", "velero"]),
    ]


class CostAllocation(Model):
    """Kubernetes cost allocation (OpenCost's method: max(request, usage) of CPU and memory)."""

    cluster_tag: str = Field("eks:cluster-name", description="resource tag naming the cluster (active as a cost allocation tag)")
    # Only the ratio matters: it splits a node's cost into CPU and memory (OpenCost's defaults).
    cpu_core_hour_usd: float = Field(0.031611, gt=0)
    ram_gib_hour_usd: float = Field(0.004237, gt=0)
    idle: Literal["show", "share"] = "show"
    shared: list[SharedCostRule] = Field(default_factory=_default_shared)


class CurExport(Model):
    """Where the CUR 2.0 export (Data Exports, Parquet) lives: S3 or a local folder."""

    bucket: str | None = Field(None, description="default: buckets.cur")
    prefix: str = "cur"
    export_name: str = "cur2"
    local_path: str | None = Field(None, description="a folder holding <export>/data/BILLING_PERIOD=.../*.parquet")


class CostAthena(Model):
    database: str = "cur"
    table: str = "cur2"
    workgroup: str = "primary"
    output_location: str | None = Field(None, description="default: s3://<cur bucket>/athena-results/")
    poll_seconds: float = Field(0.5, gt=0)
    timeout_seconds: float = Field(600, gt=0)


class SmsVolume(Model):
    """Where SMS volume comes from: a CSV (date, region, sms_count), a constant, or Datadog;
    `auto` takes Datadog when its keys are configured, else the CSV, else the constant."""

    source: Literal["auto", "csv", "constant", "datadog"] = "auto"
    csv: str | None = Field(None, description="local path or s3:// URL")
    monthly_constant: float | None = Field(None, gt=0, description="SMS a month, for source: constant")

    @model_validator(mode="after")
    def _complete(self) -> SmsVolume:
        if self.source == "csv" and not self.csv:
            raise ValueError("csv: required when source is 'csv' (a path or s3:// URL)")
        return self


class CostForecast(Model):
    """The forecast and its rolling-origin backtest (lib/opsbook/cost/forecast.py).

    The backtest forecasts each of the last `backtest_origins` complete months from the
    months before it, `horizon_months` ahead, with every model in `models`; a month's
    forecast meets the goal when the total's MAPE is within `goal_mape`, its mean signed
    error within `goal_bias`, and the share of backtest points inside the `interval`
    within `coverage_tolerance` of it (0.8 +/- 0.1: 70 to 90 %).
    """

    horizon_months: int = Field(3, ge=1, le=12, description="months forecast, and the backtest's horizons 1..this")
    backtest_origins: int = Field(6, ge=3, le=24, description="rolling origins scored (6 or more is meaningful)")
    min_train_months: int = Field(6, ge=3, le=36, description="complete months the first origin trains on")
    history_months: int = Field(36, ge=6, le=120, description="complete months read at most")
    interval: float = Field(0.8, gt=0.5, lt=1.0)
    goal_mape: float = Field(0.12, gt=0, description="mean absolute percentage error of the total, as a fraction")
    goal_bias: float = Field(0.05, gt=0, description="|mean signed percentage error| of the total, as a fraction")
    coverage_tolerance: float = Field(0.10, gt=0, lt=0.5, description="allowed gap between coverage and interval")
    models: list[str] = Field(["seasonal_naive", "driver_regression", "ets"], min_length=1,
                              description="forecast models compared (opsbook.cost.forecast_models.MODELS)")


class CostAnomaly(Model):
    baseline_days: int = Field(14, ge=7)
    threshold: float = Field(5.0, gt=0, description="robust z-score (median/MAD) above which a day is anomalous")
    min_impact_usd: float = Field(10.0, ge=0)
    lookback_days: int = Field(120, ge=14)


class NodeGroupScenario(Model):
    count: int | None = Field(None, ge=0)
    instance_type: str | None = None


class RegionScenario(Model):
    """What differs in a target region (unset: same as the actual estate)."""

    node_groups: dict[str, NodeGroupScenario] = {}
    rds_instance_class: str | None = Field(None, pattern=r"^db\.")
    nat_gateways: int | None = Field(None, ge=0)
    data_transfer_out_gb: float | None = Field(None, ge=0)
    datadog_hosts: int | None = Field(None, ge=0)


class RegionModel(Model):
    target_regions: list[Region] = []
    scenario: RegionScenario = RegionScenario()
    sensitivity: float = Field(0.2, gt=0, le=1, description="relative swing of each knob in the sensitivity chart")
    datadog_host_month_usd: float = Field(15.0, ge=0, description="Datadog Pro, annual billing, per host")


class CostSavings(Model):
    snapshot_max_age_days: int = Field(90, ge=1)
    idle_nat_gb_month: float = Field(50.0, ge=0)
    idle_nlb_lcu_month: float = Field(10.0, ge=0)
    node_request_target: float = Field(0.7, gt=0, le=1, description="requests/allocatable to aim for")
    savings_plan_target_coverage: float = Field(0.8, gt=0, le=1)
    savings_plan_discount: float = Field(0.28, gt=0, lt=1, description="Compute SP 1y no-upfront vs on-demand")


class CurGenerator(Model):
    """The sandbox's CUR generator (lib/opsbook/sandbox/cost/cur.py): the estate's bill with a real
    bill's effects (growth, weekday and month seasonality, a node group added, one anomaly)."""

    months: int = Field(13, ge=2, le=36)
    granularity: Literal["DAILY", "HOURLY"] = "DAILY"
    copies: int = Field(1, ge=1, description="replicas of the estate's resources (benchmarks)")
    seed: int = 7
    end_date: date | None = Field(None, description="day after the last one billed (default: today, UTC)")
    sms_per_day: float = Field(3_000_000, gt=0)
    sms_growth_per_month: float = Field(0.02, ge=-0.5, le=0.5)
    sms_noise: float = Field(0.04, ge=0, le=0.5, description="day-to-day noise of SMS volume (relative sd)")
    weekday_profile: list[float] = Field([1.08, 1.12, 1.12, 1.10, 1.05, 0.62, 0.50], min_length=7, max_length=7,
                                         description="SMS volume by weekday, Monday first (relative)")
    month_profile: list[float] = Field([0.95, 0.93, 0.98, 1.0, 1.02, 0.97, 0.9, 0.88, 1.0, 1.03, 1.08, 1.22],
                                       min_length=12, max_length=12,
                                       description="SMS volume by calendar month, January first (relative)")
    other_region_share: float = Field(0.12, ge=0, le=1, description="SMS share of each other region")
    tax_rate: float = Field(0.0, ge=0, le=1)
    credit_usd_month: float = Field(0.0, ge=0)
    credit_months: int = Field(0, ge=0)
    savings_plan_node_group: str | None = Field(None, description="node group covered by a Compute Savings Plan")
    added_node_group: str | None = Field(None, description="node group first billed `added_node_group_days_ago` "
                                                           "days ago (a step in the bill)")
    added_node_group_days_ago: int = Field(150, ge=1)
    anomaly_days_ago: int = Field(40, ge=2)
    anomaly_days: int = Field(3, ge=1)
    anomaly_factor: float = Field(12.0, gt=1)
    idle_nat_az: str | None = Field(None, description="AZ whose NAT gateway carries almost no traffic")

    @model_validator(mode="after")
    def _profiles_positive(self) -> CurGenerator:
        for name in ("weekday_profile", "month_profile"):
            if any(v <= 0 for v in getattr(self, name)):
                raise ValueError(f"{name}: every value must be > 0")
        return self


class Cost(Model):
    """Cost sources and the finance notebooks' knobs."""

    source: Literal["cur", "athena", "cost_explorer"] = "cur"
    metric: Literal["unblended", "amortized", "net_unblended"] = "amortized"
    cur: CurExport = CurExport()
    athena: CostAthena = CostAthena()
    budgets: list[CostBudget] = []
    allocation: CostAllocation = CostAllocation()
    sms_volume: SmsVolume = SmsVolume()
    forecast: CostForecast = CostForecast()
    anomaly: CostAnomaly = CostAnomaly()
    region_model: RegionModel = RegionModel()
    savings: CostSavings = CostSavings()
    generator: CurGenerator = CurGenerator()
