"""Titled tables, headline cards and charts for the finance notebooks (report.html hides code,
so every table and chart carries its own title and units). Figures read the same everywhere
(opsbook.report.formatting), and every table and headline also goes to the run's report.xlsx."""

from __future__ import annotations

import html
from collections.abc import Iterable
from functools import partial
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from opsbook.report import formatting
from opsbook.report.formatting import money_axis
from opsbook.results import record_table


def _formats(frame: pd.DataFrame, **kinds: Iterable[str]) -> dict[str, str]:
    return {column: kind for kind, columns in kinds.items() for column in columns if column in frame}


def table(frame: pd.DataFrame, title: str, money: Iterable[str] = (), pct: Iterable[str] = (),
          number: Iterable[str] = (), precise: Iterable[str] = (), missing: str = formatting.MISSING) -> Styler:
    """A table with a caption: money as $1,234.56 / -$49.38, percentages with one decimal,
    thousands separators; an empty money cell says `missing` (e.g. "unpriced"). Kept for report.xlsx."""
    formats = _formats(frame, money=money, pct=pct, number=number, precise=precise)
    record_table(title, frame, formats, missing if missing != formatting.MISSING else "")
    fmt = {c: partial(formatting.figure, kind=kind) for c, kind in formats.items()}
    fmt |= {c: (lambda v: "yes" if v else "no") for c in frame.columns if frame[c].dtype == bool}
    styler = frame.style.format(fmt, na_rep=formatting.MISSING).hide(axis="index").set_caption(html.escape(title))
    priced = [c for c, kind in formats.items() if kind in ("money", "precise")]
    if priced and missing != formatting.MISSING:  # an empty money cell says why (e.g. "unpriced")
        styler = styler.format({c: fmt[c] for c in priced}, subset=priced, na_rep=missing)
    return styler.set_table_styles([{"selector": "caption",
                                     "props": "caption-side: top; font-weight: bold; font-size: 1.1em; text-align: left"}])


def cards(values: dict[str, Any], title: str, money: Iterable[str] = (), pct: Iterable[str] = (),
          number: Iterable[str] = ()) -> HTML:
    """Headline figures as labelled cards (never a dict's repr); kept for report.xlsx as a table."""
    kinds = {k: kind for kind, keys in (("money", money), ("pct", pct), ("number", number)) for k in keys}
    shown = [(k.replace("_", " "), formatting.figure(v, kinds.get(k, "text"))) for k, v in values.items()]
    numeric = [k in kinds for k in values]
    record_table(title, pd.DataFrame({
        "figure": [label for label, _ in shown],
        "value": [float(v) if n and v is not None else float("nan") for v, n in zip(values.values(), numeric, strict=True)],
        "text": ["" if n else text for (_, text), n in zip(shown, numeric, strict=True)],
        "kind": [kinds.get(k, "text") for k in values]}), {"value": "by kind"})
    items = "".join(
        "<div style='display:inline-block;border:1px solid #d0d7de;border-radius:6px;padding:0.5em 1em;"
        f"margin:0 0.5em 0.5em 0'><div style='color:#57606a;font-size:0.85em'>{html.escape(label)}</div>"
        f"<div style='font-size:1.4em;font-weight:bold'>{html.escape(text)}</div></div>" for label, text in shown)
    return HTML(f"<div><div style='font-weight:bold;font-size:1.1em;margin-bottom:0.3em'>{html.escape(title)}</div>"
                f"{items}</div>")


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
    if ylabel == "USD":
        money_axis(ax, "x")
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
    money_axis(ax, "x")
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
    if ylabel == "USD":
        money_axis(ax, "x")
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
    money_axis(ax)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def lines(frame: pd.DataFrame, x: str, y: str, by: str, title: str, ylabel: str) -> Figure:
    fig, ax = _figure(title)
    for key, part in frame.groupby(by):
        ax.plot(part[x], part[y], marker="o", label=str(key))
    ax.set_ylabel(ylabel)
    if ylabel.startswith("USD"):
        money_axis(ax)
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
    ax.set_xlabel(f"change of the monthly total, USD (reference {formatting.money_whole(frame['reference'].iloc[0])})")
    money_axis(ax, "x")
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
    money_axis(ax)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
