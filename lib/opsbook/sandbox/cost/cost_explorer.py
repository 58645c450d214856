"""A Cost Explorer emulator answering from the sandbox's generated CUR (JSON 1.1, AWSInsightsIndexService).

moto's Cost Explorer replays canned answers; this one computes GetCostAndUsage,
GetCostForecast, GetAnomalies (and GetAnomalyMonitors, GetDimensionValues) from the same
line items the CUR holds, with Cost Explorer's names (SERVICE values such as "EC2 - Other",
TAG keys as `team$value`), its validation errors and NextPageToken paging.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from opsbook.formats.aws_services import ce_service
from opsbook.sandbox.json_api import ApiError, validation

TARGET = "AWSInsightsIndexService"
DIMENSION_COLUMNS = {
    "SERVICE": "ce_service", "USAGE_TYPE": "line_item_usage_type", "OPERATION": "line_item_operation",
    "REGION": "ce_region", "LINKED_ACCOUNT": "line_item_usage_account_id", "AZ": "line_item_availability_zone",
    "RECORD_TYPE": "line_item_line_item_type", "INSTANCE_TYPE": "product_instance_type",
    "BILLING_ENTITY": "bill_billing_entity",
}
METRICS = {
    "AmortizedCost": "amortized", "BlendedCost": "line_item_blended_cost", "NetAmortizedCost": "amortized",
    "NetUnblendedCost": "line_item_net_unblended_cost", "UnblendedCost": "line_item_unblended_cost",
    "UsageQuantity": "line_item_usage_amount", "NormalizedUsageAmount": "line_item_usage_amount",
}
FORECAST_METRICS = {
    "AMORTIZED_COST": "amortized", "BLENDED_COST": "line_item_blended_cost", "NET_AMORTIZED_COST": "amortized",
    "NET_UNBLENDED_COST": "line_item_net_unblended_cost", "UNBLENDED_COST": "line_item_unblended_cost",
    "USAGE_QUANTITY": "line_item_usage_amount", "NORMALIZED_USAGE_AMOUNT": "line_item_usage_amount",
}
COLUMNS = [
    "line_item_usage_start_date", "line_item_line_item_type", "line_item_product_code", "line_item_usage_type",
    "line_item_operation", "product_region_code", "line_item_usage_account_id", "line_item_usage_account_name",
    "line_item_availability_zone", "product_instance_type", "bill_billing_entity", "line_item_usage_amount",
    "line_item_unblended_cost", "line_item_blended_cost", "line_item_net_unblended_cost",
    "savings_plan_savings_plan_effective_cost", "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment", "pricing_unit", "resource_tags",
]


def load_line_items(export_dir: Path) -> pd.DataFrame:
    """The CUR's line items with Cost Explorer's derived columns (service name, region, tags)."""
    files = sorted((export_dir / "data").glob("BILLING_PERIOD=*/*.parquet"))
    frames = [pq.read_table(f, columns=COLUMNS).to_pandas() for f in files]
    df = pd.concat(frames, ignore_index=True)
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(str)
    df["day"] = pd.to_datetime(df["line_item_usage_start_date"]).dt.normalize()
    t = df["line_item_line_item_type"]
    df["amortized"] = np.select(
        [t == "SavingsPlanCoveredUsage", t == "SavingsPlanRecurringFee", t == "SavingsPlanNegation"],
        [df["savings_plan_savings_plan_effective_cost"],
         df["savings_plan_total_commitment_to_date"] - df["savings_plan_used_commitment"], 0.0],
        df["line_item_unblended_cost"],
    )
    df["ce_service"] = [ce_service(p, u, r) for p, u, r in
                        zip(df["line_item_product_code"], df["line_item_usage_type"], t, strict=True)]
    df["ce_region"] = df["product_region_code"].replace("", "global")
    # resource_tags arrive as lists of (key, value); Cost Explorer names user tags without "user_"
    tags = [dict(items) if items is not None else {} for items in df.pop("resource_tags")]
    keys = sorted({k for d in tags for k in d if k.startswith("user_")})
    for key in keys:
        df[f"tag:{key.removeprefix('user_')}"] = [d.get(key, "") for d in tags]
    return df


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise validation(f"{field}: expected a date as YYYY-MM-DD, got {value!r}") from None


def _money(value: float) -> str:
    return f"{value:.10f}"


def _token(offset: int, request: dict) -> str:
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:12]
    return base64.b64encode(json.dumps({"o": offset, "h": digest}).encode()).decode()


def _offset(token: str | None, request: dict) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.b64decode(token))
    except (ValueError, json.JSONDecodeError):
        raise validation("Invalid NextPageToken") from None
    if data.get("h") != json.loads(base64.b64decode(_token(0, request)))["h"]:
        raise validation("NextPageToken does not belong to this request")
    return int(data["o"])


def _cost_and_usage_request(body: dict[str, Any]) -> tuple[date, date, str, list[str], list[dict[str, Any]]]:
    """A GetCostAndUsage request's period, granularity, metrics and groups, checked as the service does."""
    period = body.get("TimePeriod") or {}
    start, end = _date(period.get("Start"), "TimePeriod.Start"), _date(period.get("End"), "TimePeriod.End")
    if start >= end:
        raise validation("Start date (and hour) should be before end date (and hour)")
    granularity = body.get("Granularity")
    if granularity not in ("DAILY", "MONTHLY", "HOURLY"):
        raise validation("Granularity must be one of DAILY, MONTHLY, HOURLY")
    if granularity == "HOURLY":
        raise validation("Hourly granularity is not enabled for this account")
    metrics = body.get("Metrics") or []
    if not metrics:
        raise validation("Metrics is required")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise validation(f"Invalid metrics: {unknown}; valid: {', '.join(METRICS)}")
    groups = body.get("GroupBy") or []
    if len(groups) > 2:
        raise validation("GroupBy can have at most 2 elements")
    return start, end, granularity, metrics, groups


def _any(masks: list[np.ndarray], n: int) -> np.ndarray:
    return np.logical_or.reduce(masks) if masks else np.zeros(n, bool)


COMBINE = {"And": np.logical_and, "Or": np.logical_or}
# MatchOptions of a Dimensions/Tags term: a row matches when any of the term's options does
MATCHERS: dict[str, Callable[[pd.Series, list[str]], np.ndarray]] = {
    "EQUALS": lambda data, values: data.isin(values).to_numpy(),
    "ABSENT": lambda data, values: (data == "").to_numpy(),
    "STARTS_WITH": lambda data, values: _any([data.str.startswith(v).to_numpy() for v in values], len(data)),
    "CONTAINS": lambda data, values: _any([data.str.contains(v, regex=False).to_numpy() for v in values],
                                          len(data)),
}


class CostExplorerEmulator:
    """Cost Explorer over one frame of line items; `today` is the day after the last data."""

    def __init__(self, items: pd.DataFrame, today: date, account_id: str, page_size: int = 200) -> None:
        self.items = items
        self.today = today
        self.account_id = account_id
        self.page_size = page_size
        self.monitor_arn = f"arn:aws:ce::{account_id}:anomalymonitor/{hashlib.sha256(account_id.encode()).hexdigest()[:8]}-sandbox"
        self._results = functools.lru_cache(maxsize=32)(self._compute_results)

    def handlers(self) -> dict[str, Any]:
        return {
            f"{TARGET}.GetCostAndUsage": self.get_cost_and_usage,
            f"{TARGET}.GetCostForecast": self.get_cost_forecast,
            f"{TARGET}.GetAnomalies": self.get_anomalies,
            f"{TARGET}.GetAnomalyMonitors": self.get_anomaly_monitors,
            f"{TARGET}.GetDimensionValues": self.get_dimension_values,
        }

    # --- filters --------------------------------------------------------------------------

    def _column(self, group: dict[str, Any]) -> str:
        kind, key = group.get("Type"), group.get("Key")
        if kind == "TAG":
            return f"tag:{key}"
        if kind == "DIMENSION":
            if key not in DIMENSION_COLUMNS:
                raise validation(f"Dimension {key} is not allowed. Allowed dimension(s): {', '.join(DIMENSION_COLUMNS)}")
            return DIMENSION_COLUMNS[key]
        if kind == "COST_CATEGORY":
            raise validation("Cost categories are not defined in this account")
        raise validation(f"Group Definition type must be DIMENSION, TAG or COST_CATEGORY, got {kind!r}")

    def _mask(self, frame: pd.DataFrame, expression: dict[str, Any] | None) -> np.ndarray:
        if not expression:
            return np.ones(len(frame), bool)
        keys = [k for k in ("And", "Or", "Not", "Dimensions", "Tags", "CostCategories") if k in expression]
        if len(keys) != 1:
            raise validation("Expression must have exactly one of And, Or, Not, Dimensions, Tags, CostCategories")
        key = keys[0]
        if key in COMBINE:
            return self._combine(frame, key, expression[key])
        if key == "Not":
            return ~self._mask(frame, expression["Not"])
        if key == "CostCategories":
            raise validation("Cost categories are not defined in this account")
        return self._match(frame, key, expression[key])

    def _combine(self, frame: pd.DataFrame, key: str, operands: list[dict[str, Any]]) -> np.ndarray:
        if len(operands) < 2:
            raise validation(f"{key} expression must have at least 2 operands")
        return COMBINE[key].reduce([self._mask(frame, e) for e in operands])

    def _match(self, frame: pd.DataFrame, key: str, term: dict[str, Any]) -> np.ndarray:
        """A Dimensions or Tags term: rows matching any of its values by any of its MatchOptions."""
        column = self._column({"Type": "TAG" if key == "Tags" else "DIMENSION", "Key": term.get("Key")})
        values = term.get("Values") or []
        options = term.get("MatchOptions") or ["EQUALS"]
        data = frame[column] if column in frame else pd.Series("", index=frame.index)
        mask = np.zeros(len(frame), bool)
        for option, matches in MATCHERS.items():
            if option in options:
                mask |= matches(data, values)
        return mask

    # --- GetCostAndUsage ----------------------------------------------------------------------

    def _periods(self, start: date, end: date, granularity: str) -> list[tuple[date, date]]:
        out = []
        cur = start
        while cur < end:
            nxt = cur + timedelta(days=1) if granularity == "DAILY" else (cur.replace(day=1) + timedelta(days=32)).replace(day=1)
            out.append((cur, min(nxt, end)))
            cur = min(nxt, end)
        return out

    def get_cost_and_usage(self, body: dict[str, Any]) -> dict[str, Any]:
        groups = _cost_and_usage_request(body)[4]
        # the pages of one request share its results: computed once, not once a page
        results = self._results(json.dumps({k: v for k, v in body.items() if k != "NextPageToken"}, sort_keys=True))
        page, token = self._page(results, body)
        response: dict[str, Any] = {
            "GroupDefinitions": groups,
            "ResultsByTime": page,
            "DimensionValueAttributes": self._account_attributes(groups, page),
        }
        if token:
            response["NextPageToken"] = token
        return response

    def _compute_results(self, request: str) -> list[dict[str, Any]]:
        body = json.loads(request)
        start, end, granularity, metrics, groups = _cost_and_usage_request(body)
        columns = [self._column(g) for g in groups]
        frame = self.items
        day0, day1 = pd.Timestamp(start), pd.Timestamp(end)
        frame = frame[(frame["day"] >= day0) & (frame["day"] < day1)]
        frame = frame[self._mask(frame, body.get("Filter"))]
        results = []
        for p0, p1 in self._periods(start, end, granularity):
            part = frame[(frame["day"] >= pd.Timestamp(p0)) & (frame["day"] < pd.Timestamp(p1))]
            result: dict[str, Any] = {
                "TimePeriod": {"Start": p0.isoformat(), "End": p1.isoformat()},
                "Total": {}, "Groups": [], "Estimated": p1 > self.today.replace(day=1),
            }
            if not groups:
                result["Total"] = self._metrics(part, metrics)
            else:
                result["Groups"] = self._groups(part, groups, columns, metrics)
            results.append(result)
        return results

    def _groups(self, part: pd.DataFrame, groups: list[dict[str, Any]], columns: list[str],
                metrics: list[str]) -> list[dict[str, Any]]:
        """One entry per combination of the group columns' values, in key order."""
        out = []
        data = part.assign(**{c: part[c] if c in part else "" for c in columns})
        for keys, sub in data.groupby(columns, sort=True):
            keys = keys if isinstance(keys, tuple) else (keys,)
            labels = [f"{g['Key']}${k}" if g["Type"] == "TAG" else k for g, k in zip(groups, keys, strict=True)]
            out.append({"Keys": labels, "Metrics": self._metrics(sub, metrics)})
        return out

    def _metrics(self, part: pd.DataFrame, metrics: list[str]) -> dict[str, dict[str, str]]:
        out = {}
        for metric in metrics:
            value = float(part[METRICS[metric]].sum())
            if metric in ("UsageQuantity", "NormalizedUsageAmount"):
                units = part["pricing_unit"].unique()
                out[metric] = {"Amount": _money(value), "Unit": units[0] if len(units) == 1 else "N/A"}
            else:
                out[metric] = {"Amount": _money(value), "Unit": "USD"}
        return out

    def _page(self, results: list[dict], body: dict) -> tuple[list[dict], str | None]:
        """At most page_size groups a page; a period whose groups overflow continues on the next."""
        request = {k: v for k, v in body.items() if k != "NextPageToken"}
        offset = _offset(body.get("NextPageToken"), request)
        flat = []  # (result index, group index or None)
        for i, result in enumerate(results):
            flat += [(i, j) for j in range(len(result["Groups"]))] or [(i, None)]
        chunk = flat[offset: offset + self.page_size]
        page: list[dict] = []
        for i, j in chunk:
            if not page or page[-1]["_i"] != i:
                page.append({**results[i], "Groups": [], "_i": i})
            if j is not None:
                page[-1]["Groups"].append(results[i]["Groups"][j])
        for item in page:
            del item["_i"]
        more = offset + self.page_size < len(flat)
        return page, _token(offset + self.page_size, request) if more else None

    def _account_attributes(self, groups: list[dict], page: list[dict]) -> list[dict]:
        if not any(g.get("Key") == "LINKED_ACCOUNT" for g in groups):
            return []
        names = dict(zip(self.items["line_item_usage_account_id"], self.items["line_item_usage_account_name"], strict=True))
        return [{"Value": a, "Attributes": {"description": n}} for a, n in sorted(names.items())]

    # --- GetCostForecast ------------------------------------------------------------------------

    def get_cost_forecast(self, body: dict[str, Any]) -> dict[str, Any]:
        period = body.get("TimePeriod") or {}
        start, end = _date(period.get("Start"), "TimePeriod.Start"), _date(period.get("End"), "TimePeriod.End")
        if start < self.today:
            raise validation("Start date must be equal to or no earlier than the current date to avoid a forecast of past dates")
        if start >= end:
            raise validation("Start date (and hour) should be before end date (and hour)")
        granularity = body.get("Granularity")
        if granularity not in ("DAILY", "MONTHLY"):
            raise validation("Granularity must be DAILY or MONTHLY")
        limit = start + timedelta(days=93) if granularity == "DAILY" else (start.replace(day=1) + timedelta(days=366))
        if end > limit:
            raise validation("The forecast period is too long for this granularity (3 months DAILY, 12 months MONTHLY)")
        metric = body.get("Metric")
        if metric not in FORECAST_METRICS:
            raise validation(f"Metric must be one of {', '.join(FORECAST_METRICS)}")
        level = int(body.get("PredictionIntervalLevel", 80))
        if not 51 <= level <= 99:
            raise validation("PredictionIntervalLevel must be between 51 and 99")
        frame = self.items[self._mask(self.items, body.get("Filter"))]
        # the sandbox's model: a straight line through the last six complete months' cost a day
        closed = self.today.replace(day=1)
        months = []
        for k in range(6, 0, -1):
            m0 = (closed - timedelta(days=1)).replace(day=1)
            for _ in range(k - 1):
                m0 = (m0 - timedelta(days=1)).replace(day=1)
            m1 = (m0 + timedelta(days=32)).replace(day=1)
            part = frame[(frame["day"] >= pd.Timestamp(m0)) & (frame["day"] < pd.Timestamp(m1))]
            months.append(float(part[FORECAST_METRICS[metric]].sum()) / (m1 - m0).days)
        x = np.arange(len(months))
        slope, intercept = np.polyfit(x, months, 1)
        resid = np.array(months) - (slope * x + intercept)
        sigma = float(resid.std(ddof=2)) if len(months) > 2 else 0.0
        z = NormalDist().inv_cdf(0.5 + level / 200)
        results, total = [], 0.0
        for p0, p1 in self._periods(start, end, granularity):
            months_ahead = (p0.year - closed.year) * 12 + p0.month - closed.month + len(months)
            days = (p1 - p0).days
            mean = max(0.0, (slope * months_ahead + intercept) * days)
            half = z * sigma * days * (1 + 0.15 * (months_ahead - len(months) + 1))
            total += mean
            results.append({
                "TimePeriod": {"Start": p0.isoformat(), "End": p1.isoformat()},
                "MeanValue": _money(mean),
                "PredictionIntervalLowerBound": _money(max(0.0, mean - half)),
                "PredictionIntervalUpperBound": _money(mean + half),
            })
        return {"Total": {"Amount": _money(total), "Unit": "USD"}, "ForecastResultsByTime": results}

    # --- anomalies ----------------------------------------------------------------------------

    def _detect(self) -> list[dict[str, Any]]:
        """Days whose service cost tops the trailing 14 normal days' mean by > 3 sigma and $5.

        Flagged days stay out of the baseline of the days after them, and usage types billed
        once a month (subscriptions, hosted zones) are not judged day by day.
        """
        usage = self.items[self.items["line_item_line_item_type"] == "Usage"]
        charged = usage[usage["line_item_unblended_cost"] != 0]
        days_a_month = charged.groupby(["line_item_usage_type", charged["day"].dt.to_period("M")])["day"].nunique()
        monthly = set(days_a_month[days_a_month.groupby(level=0).transform("max") <= 1].index.get_level_values(0))
        usage = usage[~usage["line_item_usage_type"].isin(monthly)]
        daily = usage.pivot_table(index="day", columns="ce_service", values="line_item_unblended_cost",
                                  aggfunc="sum", fill_value=0.0).sort_index()
        anomalies = []
        for service in daily.columns:
            series = daily[service]
            normal: list[float] = []
            mean, std = {}, {}
            flagged = []
            for day, value in series.items():
                if len(normal) >= 14:
                    window = np.array(normal[-14:])
                    mean[day], std[day] = float(window.mean()), max(float(window.std(ddof=1)), 0.5)
                    if value > mean[day] + 3 * std[day] and value - mean[day] > 5:
                        flagged.append(day)
                        continue
                normal.append(float(value))
            run: list[pd.Timestamp] = []
            for day in [*flagged, None]:
                if run and (day is None or day - run[-1] != pd.Timedelta(days=1)):
                    anomalies.append(self._anomaly(service, run, series, pd.Series(mean), pd.Series(std), usage))
                    run = []
                if day is not None:
                    run.append(day)
        return sorted(anomalies, key=lambda a: a["AnomalyStartDate"])

    def _anomaly(self, service: str, days: list, series: pd.Series, mean: pd.Series, std: pd.Series,
                 usage: pd.DataFrame) -> dict[str, Any]:
        expected = float(sum(mean[d] for d in days))
        actual = float(sum(series[d] for d in days))
        scores = [float((series[d] - mean[d]) / std[d]) for d in days]
        window = usage[(usage["ce_service"] == service) & usage["day"].isin(days)]
        before = usage[(usage["ce_service"] == service) & (usage["day"] < days[0])
                       & (usage["day"] >= days[0] - pd.Timedelta(days=14))]
        delta = (window.groupby(["line_item_usage_type", "ce_region", "line_item_usage_account_id"])[
            "line_item_unblended_cost"].sum()
            - before.groupby(["line_item_usage_type", "ce_region", "line_item_usage_account_id"])[
            "line_item_unblended_cost"].sum() * len(days) / 14).dropna().sort_values(ascending=False)
        names = dict(zip(usage["line_item_usage_account_id"], usage["line_item_usage_account_name"], strict=True))
        causes = [{"Service": service, "Region": r, "LinkedAccount": a, "LinkedAccountName": names.get(a, ""),
                   "UsageType": u} for (u, r, a), v in delta.head(3).items() if v > 0]
        ident = hashlib.sha256(f"{service}/{days[0]}".encode()).hexdigest()
        return {
            "AnomalyId": f"{ident[:8]}-{ident[8:12]}-{ident[12:16]}-{ident[16:20]}-{ident[20:32]}",
            "AnomalyStartDate": days[0].date().isoformat(),
            "AnomalyEndDate": days[-1].date().isoformat(),
            "DimensionValue": service,
            "RootCauses": causes,
            "AnomalyScore": {"MaxScore": max(scores), "CurrentScore": scores[-1]},
            "Impact": {
                "MaxImpact": float(max(series[d] - mean[d] for d in days)),
                "TotalImpact": actual - expected,
                "TotalActualSpend": actual,
                "TotalExpectedSpend": expected,
                "TotalImpactPercentage": (actual - expected) / expected * 100 if expected else 0.0,
            },
            "MonitorArn": self.monitor_arn,
            "Feedback": "NO",
        }

    def get_anomalies(self, body: dict[str, Any]) -> dict[str, Any]:
        interval = body.get("DateInterval") or {}
        if not interval.get("StartDate"):
            raise validation("DateInterval.StartDate is required")
        start = _date(interval["StartDate"], "DateInterval.StartDate")
        end = _date(interval.get("EndDate") or self.today.isoformat(), "DateInterval.EndDate")
        if body.get("MonitorArn") and body["MonitorArn"] != self.monitor_arn:
            raise ApiError("UnknownMonitorException", f"Monitor {body['MonitorArn']} does not exist")
        found = [a for a in self._detect() if start.isoformat() <= a["AnomalyStartDate"] <= end.isoformat()]
        impact = body.get("TotalImpact")
        if impact:
            op, lo, hi = impact.get("NumericOperator"), float(impact.get("StartValue", 0)), impact.get("EndValue")
            checks = {
                "EQUAL": lambda v: v == lo, "GREATER_THAN_OR_EQUAL": lambda v: v >= lo, "GREATER_THAN": lambda v: v > lo,
                "LESS_THAN_OR_EQUAL": lambda v: v <= lo, "LESS_THAN": lambda v: v < lo,
                "BETWEEN": lambda v: lo <= v <= float(hi if hi is not None else lo),
            }
            if op not in checks:
                raise validation(f"TotalImpact.NumericOperator must be one of {', '.join(checks)}")
            found = [a for a in found if checks[op](a["Impact"]["TotalImpact"])]
        request = {k: v for k, v in body.items() if k not in ("NextPageToken",)}
        size = int(body.get("MaxResults") or 100)
        offset = _offset(body.get("NextPageToken"), request)
        response: dict[str, Any] = {"Anomalies": found[offset: offset + size]}
        if offset + size < len(found):
            response["NextPageToken"] = _token(offset + size, request)
        return response

    def get_anomaly_monitors(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"AnomalyMonitors": [{
            "MonitorArn": self.monitor_arn, "MonitorName": "services", "MonitorType": "DIMENSIONAL",
            "MonitorDimension": "SERVICE", "CreationDate": "2024-01-01",
        }]}

    def get_dimension_values(self, body: dict[str, Any]) -> dict[str, Any]:
        period = body.get("TimePeriod") or {}
        start, end = _date(period.get("Start"), "TimePeriod.Start"), _date(period.get("End"), "TimePeriod.End")
        column = self._column({"Type": "DIMENSION", "Key": body.get("Dimension")})
        frame = self.items[(self.items["day"] >= pd.Timestamp(start)) & (self.items["day"] < pd.Timestamp(end))]
        values = sorted(v for v in frame[column].unique() if v)
        return {"DimensionValues": [{"Value": v, "Attributes": {}} for v in values],
                "ReturnSize": len(values), "TotalSize": len(values)}
