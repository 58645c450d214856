"""Benchmark: the monthly review's aggregation and the allocation on CURs of 1M, 10M (and 50M) line items.

Each workload runs three ways in a fresh process (so peak memory is its own):
- opsbook: the CUR source (`CurDuckDb.costs`) and `allocation.allocate`;
- pandas: `read_parquet` of the needed columns, then groupby (the plain way);
- raw DuckDB: hand-written SQL over the Parquet files.
All three compute the same answer from the same files (the same months and line types, amortized
cost the same way), and the benchmark asserts that their results agree before it reports. The
clock covers reading the CUR and computing; imports and the non-CUR inputs (params, the cluster
snapshot) are ready before it starts, the same for every method. It prints wall time (best of
--repeat runs), rows/s, peak RSS and the ratios to the other two, measured in the same command.
Targets: opsbook >= 10x faster than pandas, within 1.5x of raw DuckDB, 50M rows under 4 GiB
peak RSS. The targets are reported, not asserted.

    python benchmarks/bench_cost.py                # 1M and 10M line items
    python benchmarks/bench_cost.py --with-50m     # adds 50M (several GB on disk, minutes)
    python benchmarks/bench_cost.py --sizes 1M --skip-pandas-over 20M
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

MIB = 1024 * 1024
ROWS_PER_COPY_HOURLY = 870_000  # one estate copy, 13 months, hourly (measured: ~92 line items an hour)


def _params(copies: int, months: int = 13):
    from opsbook.params import load_params

    params = load_params("sandbox")
    gen = params.cost.generator.model_copy(update={"copies": copies, "granularity": "HOURLY", "months": months,
                                                   "end_date": date(2025, 7, 1)})
    return params.model_copy(update={"cost": params.cost.model_copy(update={"generator": gen})})


def generate(rows: int, root: Path) -> tuple[Path, int, float]:
    from opsbook.sandbox.cost.cur import generate as write

    params = _params(max(1, math.ceil(rows / ROWS_PER_COPY_HOURLY)))
    t0 = time.perf_counter()
    summary = write(params, root)
    export = root / params.cost.cur.prefix / params.cost.cur.export_name
    return export, summary["rows"], time.perf_counter() - t0


# --- the workloads (run in a child process) ------------------------------------------------
#
# Every method computes the same answer from the same Parquet files: the same months, the same
# line types, amortized cost the same way (opsbook's METRIC_SQL). Each returns its result in one
# shape (keys, then cost columns) and `check_same` asserts that they agree. Inputs that are not
# the CUR (params, the cluster snapshot, which in production comes from the Kubernetes API) are
# built by `setup` before the clock starts, the same for every method.

REVIEW_START, REVIEW_END = date(2024, 7, 1), date(2025, 7, 1)
MONTH = date(2025, 5, 1)  # the allocation's month
UNTAGGED = "(untagged)"
REVIEW_KEYS = ["period", "service", "team"]
ALLOCATION_KEYS = ["namespace", "team"]
AMORTIZED_SQL = """CASE line_item_line_item_type
                   WHEN 'SavingsPlanCoveredUsage' THEN savings_plan_savings_plan_effective_cost
                   WHEN 'SavingsPlanRecurringFee' THEN savings_plan_total_commitment_to_date - savings_plan_used_commitment
                   WHEN 'SavingsPlanNegation' THEN 0 WHEN 'SavingsPlanUpfrontFee' THEN 0
                   ELSE line_item_unblended_cost END"""


def _amortized(df):
    """pandas: the amortized cost of each line (the CUR query library's rules, as opsbook's SQL)."""
    import numpy as np

    t = df["line_item_line_item_type"]
    return np.select(
        [t == "SavingsPlanCoveredUsage", t == "SavingsPlanRecurringFee", t.isin(["SavingsPlanNegation", "SavingsPlanUpfrontFee"])],
        [df["savings_plan_savings_plan_effective_cost"],
         df["savings_plan_total_commitment_to_date"] - df["savings_plan_used_commitment"], 0.0],
        df["line_item_unblended_cost"])


def _tag(tags, key: str) -> list[str]:
    """pandas: a tag out of the resource_tags map (pandas has no map accessor: a map arrives as lists of pairs)."""
    return [(dict(t).get(key) or UNTAGGED) if t is not None else UNTAGGED for t in tags]


def review_opsbook(export: str, _inputs) -> object:
    from opsbook.cost.query import CostQuery
    from opsbook.cost.sources import CurDuckDb

    frame = CurDuckDb(export).costs(CostQuery(REVIEW_START, REVIEW_END, "MONTHLY", ("service", "team")))
    return frame[[*REVIEW_KEYS, "cost"]]


def review_pandas(export: str, _inputs) -> object:
    import pandas as pd

    cols = ["line_item_usage_start_date", "line_item_line_item_type", "line_item_product_code",
            "line_item_unblended_cost", "savings_plan_savings_plan_effective_cost",
            "savings_plan_total_commitment_to_date", "savings_plan_used_commitment", "resource_tags"]
    df = pd.read_parquet(Path(export) / "data", columns=cols,
                         filters=[("line_item_usage_start_date", ">=", pd.Timestamp(REVIEW_START)),
                                  ("line_item_usage_start_date", "<", pd.Timestamp(REVIEW_END))])
    df["cost"] = _amortized(df)
    df["team"] = _tag(df["resource_tags"], "user_team")
    # string columns arrive as categoricals (the CUR's Parquet is dictionary-encoded)
    df["service"] = df["line_item_product_code"].astype(str).where(df["line_item_line_item_type"] != "Tax", "Tax")
    df["period"] = df["line_item_usage_start_date"].dt.to_period("M").dt.to_timestamp()
    return df.groupby(REVIEW_KEYS, as_index=False)["cost"].sum()


def review_duckdb(export: str, _inputs) -> object:
    import duckdb

    sql = f"""
        SELECT date_trunc('month', line_item_usage_start_date) AS period,
               CASE WHEN line_item_line_item_type = 'Tax' THEN 'Tax' ELSE line_item_product_code END AS service,
               coalesce(nullif(resource_tags['user_team'], ''), '{UNTAGGED}') AS team,
               sum({AMORTIZED_SQL}) AS cost
        FROM read_parquet('{export}/data/*/*.parquet', hive_partitioning = true)
        WHERE line_item_usage_start_date >= TIMESTAMP '{REVIEW_START}' AND line_item_usage_start_date < TIMESTAMP '{REVIEW_END}'
        GROUP BY 1, 2, 3"""
    return duckdb.connect().execute(sql).df()


def _snapshot(params):
    """The estate's nodes with a spread of pods (the allocation's Kubernetes side)."""
    import pandas as pd
    from opsbook.cost.allocation import ClusterSnapshot
    from opsbook.sandbox.cost.cur import synthetic_inventory
    from opsbook.sandbox.cost.prices import instance_shape

    inv = synthetic_inventory(params)
    nodes, pods = [], []
    for i, n in enumerate(inv.nodes):
        cpu, mem = instance_shape(n["instance_type"])
        nodes.append({"node": f"node-{i}", "instance_id": n["instance_id"], "az": n["az"],
                      "instance_type": n["instance_type"], "node_group": n["node_group"], "cpu": cpu, "memory_gib": mem})
        for j, ns in enumerate(params.namespaces):
            pods.append({"namespace": ns.name, "pod": f"{ns.name}-{i}", "node": f"node-{i}", "cpu_request": 0.25 * (j % 3 + 1),
                         "memory_request_gib": 0.5 * (j % 2 + 1), "cpu_usage": 0.2 * (j % 4 + 1), "memory_usage_gib": 0.6})
    volumes = [{"volume_id": v["volume_id"], "namespace": k.split("/")[0], "pvc": k.split("/")[1], "pv": k}
               for k, v in inv.volumes.items()]
    return ClusterSnapshot(pd.DataFrame(nodes), pd.DataFrame(pods), pd.DataFrame(volumes))


def allocation_inputs():
    """params, the cluster snapshot and the teams: the allocation's inputs besides the CUR."""
    params = _params(1)
    return params, _snapshot(params), {ns.name: ns.team for ns in params.namespaces}


def _allocate(lines, inputs):
    from opsbook.cost.allocation import allocate

    params, snapshot, teams = inputs
    return allocate(lines, snapshot, params.cost.allocation, teams).table


def allocation_opsbook(export: str, inputs) -> object:
    from opsbook.cost.allocation import cluster_lines
    from opsbook.cost.sources import CurDuckDb

    return _allocate(cluster_lines(CurDuckDb(export), inputs[0], MONTH), inputs)


def _lines_from(frame, inputs):
    """The allocation's input built from plain per-resource sums (the same rules as opsbook's)."""
    from opsbook.cost.allocation import assign_rules

    params = inputs[0]
    frame["rule"] = assign_rules(frame, params.cost.allocation.shared)
    keep = (frame["cluster"] == params.eks.cluster_name) | (
        frame["rule"].notna() & frame["region"].isin([params.region, "global"]) & (frame["cluster"] == UNTAGGED))
    return frame[keep]


def allocation_pandas(export: str, inputs) -> object:
    import pandas as pd

    cols = ["line_item_usage_start_date", "line_item_line_item_type", "line_item_resource_id", "line_item_product_code",
            "line_item_usage_type", "product_region_code", "line_item_unblended_cost",
            "savings_plan_savings_plan_effective_cost", "savings_plan_total_commitment_to_date",
            "savings_plan_used_commitment", "resource_tags"]
    df = pd.read_parquet(Path(export) / "data" / f"BILLING_PERIOD={MONTH:%Y-%m}", columns=cols)
    start, end = pd.Timestamp(MONTH), pd.Timestamp(MONTH) + pd.offsets.MonthBegin(1)
    # the cluster's bill leaves tax and credits out (billed per product, not per resource)
    df = df[~df["line_item_line_item_type"].isin(["Tax", "Credit"])
            & (df["line_item_usage_start_date"] >= start) & (df["line_item_usage_start_date"] < end)].copy()
    df["cost"] = _amortized(df)
    df["cluster"] = _tag(df["resource_tags"], "user_eks_cluster_name")
    df["region"] = df["product_region_code"].astype(str).replace({"": "global", "nan": "global"})
    frame = df.groupby(["line_item_resource_id", "line_item_product_code", "line_item_usage_type", "region", "cluster"],
                       observed=True, as_index=False)["cost"].sum()
    # keys arrive as categoricals (the CUR's Parquet is dictionary-encoded)
    frame = frame.rename(columns={"line_item_resource_id": "resource_id", "line_item_product_code": "service",
                                  "line_item_usage_type": "usage_type"}).astype({"resource_id": str, "service": str,
                                                                                  "usage_type": str})
    return _allocate(_lines_from(frame, inputs), inputs)


def allocation_duckdb(export: str, inputs) -> object:
    import duckdb

    sql = f"""
        SELECT line_item_resource_id AS resource_id, line_item_product_code AS service,
               line_item_usage_type AS usage_type, coalesce(nullif(product_region_code, ''), 'global') AS region,
               coalesce(nullif(resource_tags['user_eks_cluster_name'], ''), '{UNTAGGED}') AS cluster,
               sum({AMORTIZED_SQL}) AS cost
        FROM read_parquet('{export}/data/BILLING_PERIOD={MONTH:%Y-%m}/*.parquet')
        WHERE line_item_line_item_type NOT IN ('Tax', 'Credit')
          AND line_item_usage_start_date >= TIMESTAMP '{MONTH}'
          AND line_item_usage_start_date < TIMESTAMP '{MONTH}' + INTERVAL 1 MONTH
        GROUP BY ALL"""
    return _allocate(_lines_from(duckdb.connect().execute(sql).df(), inputs), inputs)


WORKLOADS = {
    "monthly review": {"opsbook": review_opsbook, "pandas": review_pandas, "raw duckdb": review_duckdb},
    "allocation": {"opsbook": allocation_opsbook, "pandas": allocation_pandas, "raw duckdb": allocation_duckdb},
}
SETUP = {"monthly review": None, "allocation": allocation_inputs}
KEYS = {"monthly review": REVIEW_KEYS, "allocation": ALLOCATION_KEYS}
PERIODS = {"monthly review": [f"{y}-{m:02d}" for y, m in [(2024, m) for m in range(7, 13)] + [(2025, m) for m in range(1, 7)]],
           "allocation": [f"{MONTH:%Y-%m}"]}


def canonical(frame, keys: list[str]):
    """Keys as strings (periods as YYYY-MM), rows sorted by them, the index dropped."""
    import pandas as pd

    out = frame.copy()
    if "period" in out:
        out["period"] = pd.to_datetime(out["period"]).dt.strftime("%Y-%m")
    out[keys] = out[keys].astype(str)
    return out.sort_values(keys).reset_index(drop=True)


def check_same(workload: str, results: dict[str, tuple]) -> None:
    """Every method's answer equals opsbook's (keys exactly, costs to 1e-9 relative: sums run in other orders)."""
    import pandas as pd

    keys = KEYS[workload]
    base = canonical(results["opsbook"][1], keys)
    if base.empty:
        raise AssertionError(f"{workload}: opsbook's answer is empty; nothing to compare")
    for method, (_, frame, _) in results.items():
        other = canonical(frame, keys)[list(base.columns)]
        try:
            pd.testing.assert_frame_equal(base, other, check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-6)
        except AssertionError as exc:
            raise AssertionError(f"{workload}: {method} disagrees with opsbook: {exc}") from None


def _child(workload: str, fn_name: str, export: str, out: mp.Queue) -> None:
    # imports and the non-CUR inputs are ready before the clock starts: the benchmark times the work
    import duckdb  # noqa: F401
    import opsbook.cost.allocation  # noqa: F401
    import opsbook.cost.sources  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    try:
        setup = SETUP[workload]
        inputs = setup() if setup else None
        fn = globals()[fn_name]
        t0 = time.perf_counter()
        result = fn(export, inputs)
        wall = time.perf_counter() - t0
        out.put((wall, result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
    except BaseException as exc:  # hand the failure to the parent, which would otherwise wait forever
        out.put(RuntimeError(f"{workload} / {fn_name}: {exc!r}"))
        raise


def measure(workload: str, fn, export: Path, repeat: int) -> tuple[float, object, int]:
    """Best wall time of `repeat` runs (the machine is shared: the minimum is the least noisy), peak RSS of all."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: its peak RSS is the workload's own
    best = None
    for _ in range(repeat):
        out = ctx.Queue()
        proc = ctx.Process(target=_child, args=(workload, fn.__name__, str(export), out))
        proc.start()
        result = out.get()
        proc.join()
        if isinstance(result, Exception):
            raise result
        best = result if best is None or result[0] < best[0] else best
        best = (best[0], best[1], max(best[2], result[2]))
    return best


def rows_in(export: Path, periods: list[str]) -> int:
    """Line items in the billing periods a workload reads (from the Parquet footers)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for p in periods
               for f in (export / "data" / f"BILLING_PERIOD={p}").glob("*.parquet"))


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated line-item counts (default 1M,10M)")
    parser.add_argument("--with-50m", action="store_true", help="add the 50M case (slow; only when asked)")
    parser.add_argument("--skip-pandas-over", default="20M", help="skip the pandas baseline above this size (50M rows in pandas needs > 24 GiB)")
    parser.add_argument("--keep", type=Path, help="generate into (and keep, and reuse) this folder")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept")
    parser.add_argument("--pandas-repeat", type=int, help="runs of the pandas baseline (default: --repeat)")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    if args.with_50m:
        sizes.append(50_000_000)
    pandas_limit = parse_size(args.skip_pandas_over)
    root = args.keep or Path(tempfile.mkdtemp(prefix="opsbook-bench-"))
    print(f"{'size':>6} {'rows':>11} {'workload':<15} {'method':<11} {'wall s':>8} {'rows/s':>12} {'peak MiB':>9}"
          f" {'x pandas':>9} {'/ duckdb':>9}")
    print("# rows/s: line items in the billing periods the workload reads (12 months / 1 month), per second")
    try:
        for size in sizes:
            done = root / f"{size}" / "rows.txt"
            if args.keep and done.is_file():
                export, rows = Path(done.read_text().split()[1]), int(done.read_text().split()[0])
                print(f"# reusing {rows:,} line items in {export}")
            else:
                export, rows, gen_s = generate(size, root / f"{size}")
                done.write_text(f"{rows} {export}")
                print(f"# generated {rows:,} line items in {gen_s:.1f}s ({rows / gen_s:,.0f} rows/s)")
            for workload, methods in WORKLOADS.items():
                results = {}
                for method, fn in methods.items():
                    if method == "pandas" and size > pandas_limit:
                        continue
                    repeat = args.pandas_repeat or args.repeat if method == "pandas" else args.repeat
                    results[method] = measure(workload, fn, export, repeat)
                check_same(workload, results)
                scanned = rows_in(export, PERIODS[workload])
                for method, (wall, _, rss) in results.items():
                    vs_pandas = results["pandas"][0] / wall if "pandas" in results else float("nan")
                    vs_duckdb = wall / results["raw duckdb"][0]
                    print(f"{size / 1e6:>5.0f}M {rows:>11,} {workload:<15} {method:<11} {wall:>8.2f} "
                          f"{scanned / wall:>12,.0f} {rss / MIB:>9.0f} {vs_pandas:>9.1f} {vs_duckdb:>9.2f}")
                wall, _, rss = results["opsbook"]
                checks = [f"{results['pandas'][0] / wall:.1f}x pandas (target >= 10x)" if "pandas" in results else "",
                          f"{wall / results['raw duckdb'][0]:.2f}x raw DuckDB's time (target <= 1.5x)",
                          f"peak {rss / MIB:,.0f} MiB" + (" (target < 4096 MiB at 50M)" if size >= 50_000_000 else "")]
                print("#   opsbook " + workload + ": " + "; ".join(c for c in checks if c)
                      + f"; {', '.join(results)} agree on {len(results['opsbook'][1])} result rows")
            if not args.keep:
                shutil.rmtree(root / f"{size}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
