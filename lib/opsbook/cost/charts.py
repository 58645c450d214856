"""Titled tables and charts for the finance notebooks (report.html hides code, so every
table and chart carries its own title and units)."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

MONEY = "${:,.2f}"
PCT = "{:,.1f}%"


def table(frame: pd.DataFrame, title: str, money: Iterable[str] = (), pct: Iterable[str] = (),
          number: Iterable[str] = (), precise: Iterable[str] = ()) -> Styler:
    """A table with a caption; money as $1,234.56, percentages, thousands separators."""
    fmt = {c: MONEY for c in money if c in frame}
    fmt |= {c: PCT for c in pct if c in frame}
    fmt |= {c: "{:,.0f}" for c in number if c in frame}
    fmt |= {c: "${:,.4f}" for c in precise if c in frame}
    styler = frame.style.format(fmt, na_rep="–").hide(axis="index").set_caption(title)
    return styler.set_table_styles([{"selector": "caption",
                                     "props": "caption-side: top; font-weight: bold; font-size: 1.1em; text-align: left"}])


def _figure(title: str, size: tuple[float, float] = (9, 4.5)) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title, loc="left", fontweight="bold")
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    plt.close(fig)  # shown by the notebook's display, not by pyplot's state
    return fig, ax


def bars(frame: pd.DataFrame, label: str, value: str, title: str, ylabel: str = "USD") -> Figure:
    fig, ax = _figure(title)
    colors = ["#c0392b" if v > 0 else "#27ae60" for v in frame[value]] if (frame[value] < 0).any() else "#2c7fb8"
    ax.barh(frame[label].astype(str), frame[value], color=colors)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def grouped_months(frame: pd.DataFrame, label: str, title: str, columns: tuple[str, str] = ("previous", "this"),
                   names: tuple[str, str] = ("previous month", "this month")) -> Figure:
    fig, ax = _figure(title)
    idx = range(len(frame))
    ax.barh([i + 0.2 for i in idx], frame[columns[0]], height=0.4, label=names[0], color="#bdc3c7")
    ax.barh([i - 0.2 for i in idx], frame[columns[1]], height=0.4, label=names[1], color="#2c7fb8")
    ax.set_yticks(list(idx), frame[label].astype(str))
    ax.invert_yaxis()
    ax.set_xlabel("USD")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def stacked(frame: pd.DataFrame, index: str, columns: list[str], title: str, ylabel: str = "USD") -> Figure:
    fig, ax = _figure(title)
    data = frame.set_index(index)[columns]
    left = pd.Series(0.0, index=data.index)
    for col in columns:
        ax.barh(data.index.astype(str), data[col], left=left, label=col)
        left = left + data[col]
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def forecast_chart(history: pd.DataFrame, forecast: pd.DataFrame, title: str,
                   cost_explorer: pd.DataFrame | None = None) -> Figure:
    """Monthly history, forecast with its interval band, and Cost Explorer's forecast."""
    fig, ax = _figure(title)
    ax.plot(history["period"], history["cost"], marker="o", color="#2c3e50", label="billed")
    ax.plot(forecast["period"], forecast["forecast"], marker="o", color="#2c7fb8", label="opsbook forecast")
    ax.fill_between(forecast["period"], forecast["lower"], forecast["upper"], color="#2c7fb8", alpha=0.2,
                    label="prediction interval")
    if cost_explorer is not None and len(cost_explorer):
        ax.plot(cost_explorer["period"], cost_explorer["cost_explorer"], marker="s", linestyle="--",
                color="#e67e22", label="Cost Explorer forecast")
    ax.set_ylabel("USD a month")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def lines(frame: pd.DataFrame, x: str, y: str, by: str, title: str, ylabel: str) -> Figure:
    fig, ax = _figure(title)
    for key, part in frame.groupby(by):
        ax.plot(part[x], part[y], marker="o", label=str(key))
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def tornado(frame: pd.DataFrame, title: str) -> Figure:
    """Sensitivity: each knob's low and high swing around the reference total."""
    fig, ax = _figure(title, (9, 0.6 * len(frame) + 1.5))
    ax.barh(frame["knob"], frame["low"], color="#27ae60", label="knob lower")
    ax.barh(frame["knob"], frame["high"], color="#c0392b", label="knob higher")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"change of the monthly total, USD (reference ${frame['reference'].iloc[0]:,.0f})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def daily_with_anomalies(daily: pd.DataFrame, anomalies: pd.DataFrame, title: str) -> Figure:
    fig, ax = _figure(title)
    total = daily.groupby("period")["cost"].sum()
    ax.plot(total.index, total.values, color="#2c3e50", label="daily cost")
    for _, a in anomalies.iterrows():
        ax.axvspan(pd.Timestamp(a["start"]), pd.Timestamp(a["end"]) + pd.Timedelta(days=1), color="#c0392b",
                   alpha=0.25)
    ax.set_ylabel("USD a day")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
