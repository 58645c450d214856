"""What a finance report is about, and how fresh its data is: the source, the metric, the
month, the CUR's last export time, the months complete and the last day billed. Recorded
as `about` by each finance notebook; report.html shows its line at the top and report.xlsx
its fields on the first sheet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from opsbook.cost.query import CostQuery, add_months, month_start
from opsbook.cost.sources import CostSource

LOOKBACK_MONTHS = 36


@dataclass
class About:
    source: str
    metric: str
    month: str  # YYYY-MM the report is about ("" when it spans months)
    last_export: str | None  # ISO time, UTC
    data_through: str | None  # the last day with cost
    months_complete: int
    first_month: str | None
    last_complete_month: str | None
    line: str = ""

    def __post_init__(self) -> None:
        self.line = self.line or freshness_line(self)

    def _repr_markdown_(self) -> str:
        return f"**Data:** {self.line}"


def freshness_line(about: About) -> str:
    export = f"last export {about.last_export[:16].replace('T', ' ')} UTC" if about.last_export \
        else "last export time not known to this source"
    span = (f"{about.months_complete} months complete ({about.first_month} to {about.last_complete_month})"
            if about.months_complete else "no complete month")
    through = f"data through {about.data_through}" if about.data_through else "no cost data"
    month = f"{about.month}, " if about.month else ""
    return f"{month}{about.metric} cost from {about.source}; {export}; {span}; {through}"


def about(source: CostSource, metric: str, today: date, month: date | str | None = None) -> About:
    """The report's source, metric and month, with the data's freshness as of `today`."""
    first = add_months(month_start(today), -min(LOOKBACK_MONTHS, source.history_months or LOOKBACK_MONTHS))
    months = source.costs(CostQuery(first, today + timedelta(days=1), "MONTHLY", (), metric))
    months = months[months["cost"] != 0]
    recent = source.costs(CostQuery(add_months(month_start(today), -2), today + timedelta(days=1), "DAILY", (), metric))
    recent = recent[recent["cost"] != 0]
    through = recent["period"].max().date() if len(recent) else None
    complete = months[months["period"].dt.date < month_start(through + timedelta(days=1))] if through else months.iloc[:0]
    exported = source.last_export()
    label = month if isinstance(month, str) else (month.strftime("%Y-%m") if month else "")
    return About(source.describe(), metric, label, exported.isoformat() if exported else None,
                 through.isoformat() if through else None, len(complete),
                 complete["period"].min().strftime("%Y-%m") if len(complete) else None,
                 complete["period"].max().strftime("%Y-%m") if len(complete) else None)
