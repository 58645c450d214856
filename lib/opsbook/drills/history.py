"""Drill history: every drill's verdict, RTO and RPO over time, from the runs' results.json.

A run folder is `runs/<env>/<name>/<UTC timestamp>-<run-id>/results.json` (written by the
runner); a drill recorded its result under the key `drill`. The same layout may be
mirrored to S3 (`s3://bucket/prefix/<env>/<name>/.../results.json`); both are read and a
run found in both places counts once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from opsbook.errors import UsageError
from opsbook.mirror import parse_s3_url
from opsbook.params import project_root

COLUMNS = ["env", "drill", "notebook", "run_id", "started_at", "status", "verdict", "reason",
           "rto_s", "rto_target_s", "rpo_s", "rpo_target_s", "source"]


def default_runs_dir() -> Path:
    return project_root() / "runs"


def _row(results: dict[str, Any], source: str) -> dict[str, Any] | None:
    drill = (results.get("records") or {}).get("drill")
    if not isinstance(drill, dict) or "verdict" not in drill:
        return None
    return {
        "env": results.get("env"), "drill": drill.get("name"), "notebook": results.get("name"),
        "run_id": results.get("run_id"), "started_at": results.get("started_at"),
        "status": results.get("status"), "verdict": drill.get("verdict"), "reason": drill.get("reason"),
        "rto_s": drill.get("rto_s"), "rto_target_s": drill.get("rto_target_s"),
        "rpo_s": drill.get("rpo_s"), "rpo_target_s": drill.get("rpo_target_s"), "source": source,
    }


def _local(runs_dir: Path, env: str | None) -> Iterable[tuple[dict[str, Any], str]]:
    pattern = f"{env or '*'}/*/*/results.json"
    for path in sorted(runs_dir.glob(pattern)):
        try:
            yield json.loads(path.read_text()), str(path)
        except (OSError, json.JSONDecodeError):
            continue  # a run still being written, or a broken file: not history


def _s3(s3: Any, uri: str, env: str | None) -> Iterable[tuple[dict[str, Any], str]]:
    bucket, prefix = parse_s3_url(uri)
    start = "/".join(p for p in (prefix, env) if p)
    start = f"{start}/" if start else ""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/results.json"):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                try:
                    yield json.loads(body), f"s3://{bucket}/{obj['Key']}"
                except json.JSONDecodeError:
                    continue


def read_history(runs_dir: Path | str | None = None, env: str | None = None, drill: str | None = None,
                 s3_uri: str | None = None, s3_client: Any = None) -> pd.DataFrame:
    """One row per drill run, oldest first; filtered by env and drill name when given."""
    runs = Path(runs_dir) if runs_dir else default_runs_dir()
    found: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    sources = list(_local(runs, env)) if runs.is_dir() else []
    if s3_uri:
        if s3_client is None:
            raise UsageError("reading history from S3 needs an environment (--env) for its S3 client",
                             remedy="pass s3_client (e.g. open_env(env).aws('s3')), or --env on the command line")
        sources += list(_s3(s3_client, s3_uri, env))
    for results, source in sources:
        row = _row(results, source)
        if row is None or (drill and drill not in (row["drill"], row["notebook"])):
            continue
        found.setdefault((row["env"], row["run_id"], row["drill"]), row)
    frame = pd.DataFrame(list(found.values()), columns=COLUMNS)
    if not frame.empty:
        frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, errors="coerce")
        frame = frame.sort_values("started_at", kind="stable").reset_index(drop=True)
    return frame


def summary(history: pd.DataFrame) -> pd.DataFrame:
    """Per env and drill: runs, passes, the latest verdict, worst and latest RTO/RPO."""
    if history.empty:
        return pd.DataFrame(columns=["env", "drill", "runs", "passed", "latest", "latest_rto_s", "max_rto_s",
                                     "latest_rpo_s", "max_rpo_s"])
    rows = []
    for (env, drill), group in history.groupby(["env", "drill"], sort=True):
        last = group.iloc[-1]
        rows.append({"env": env, "drill": drill, "runs": len(group), "passed": int((group["verdict"] == "pass").sum()),
                     "latest": last["verdict"], "latest_rto_s": last["rto_s"], "max_rto_s": group["rto_s"].max(),
                     "latest_rpo_s": last["rpo_s"], "max_rpo_s": group["rpo_s"].max()})
    return pd.DataFrame(rows)


def plot_history(history: pd.DataFrame) -> Any:
    """RTO and RPO per drill over time, each against its target (dashed); returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    for ax, metric, title in ((axes[0], "rto", "RTO"), (axes[1], "rpo", "RPO")):
        ax.set_title(f"{title} per drill run (dashed: target)")
        ax.set_ylabel("seconds")
        if history.empty:
            ax.text(0.5, 0.5, "no drill runs yet", ha="center", va="center", transform=ax.transAxes)
            continue
        for (env, drill), group in history.groupby(["env", "drill"], sort=True):
            line, = ax.plot(group["started_at"], group[f"{metric}_s"], marker="o", label=f"{drill} ({env})")
            target = group[f"{metric}_target_s"].dropna()
            if not target.empty:
                ax.axhline(float(target.iloc[-1]), color=line.get_color(), linestyle="--", linewidth=1)
            failed = group[group["verdict"] != "pass"]
            ax.scatter(failed["started_at"], failed[f"{metric}_s"], marker="x", color="red", zorder=3)
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=30)
    return fig


def history_for(env: Any, drill: str = "", runs_dir: str = "", s3: str = "") -> pd.DataFrame:
    """`read_history` for an opened environment (its S3 client reads the mirror when `s3` is set)."""
    return read_history(runs_dir or None, env=env.name, drill=drill or None, s3_uri=s3 or None,
                        s3_client=env.aws("s3") if s3 else None)
