"""Sandbox start-up, and `opsbook run health-check` against a bare papermill run.

    .venv/bin/python benchmarks/bench_runner.py [--repeat 3]

Prints medians and ratios against the baseline (a bare `papermill` run of an empty
notebook, measured in the same command), so numbers compare across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _clean_env() -> dict[str, str]:
    """No sandbox inherited: each `opsbook run` starts its own, as on a fresh terminal."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG", "OPSBOOK_SANDBOX"))}


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=_clean_env(), check=True, capture_output=True)
    return time.perf_counter() - t0


def sandbox_startup() -> tuple[float, dict[str, float]]:
    from opsbook.params import load_params
    from opsbook.sandbox import Sandbox

    box = Sandbox(load_params("sandbox"))
    t0 = time.perf_counter()
    box.start()
    elapsed = time.perf_counter() - t0
    box.stop()
    return elapsed, box.timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.ipynb"
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell("pass")]
        nbformat.write(nb, empty)

        startups = [sandbox_startup() for _ in range(args.repeat)]
        baseline = [_timed([str(BIN / "papermill"), "-k", "python3", "--no-progress-bar", str(empty),
                            str(Path(tmp) / "out.ipynb")]) for _ in range(args.repeat)]
        health = [_timed([str(BIN / "opsbook"), "run", "health-check", "--env", "sandbox", "--runs-dir",
                          str(Path(tmp) / "runs")]) for _ in range(args.repeat)]

    start = statistics.median(s for s, _ in startups)
    base, run = statistics.median(baseline), statistics.median(health)
    print(f"repeats: {args.repeat} (medians)")
    print(f"sandbox start-up:                         {start:7.2f} s")
    for name in startups[0][1]:
        if name != "total":
            print(f"  {name:<38} {statistics.median(t[name] for _, t in startups):7.2f} s")
    print(f"bare papermill, empty notebook (baseline): {base:7.2f} s   1.00x")
    print(f"opsbook run health-check --env sandbox:    {run:7.2f} s   {run / base:5.2f}x baseline")
    print(f"  of which sandbox start-up:               {start:7.2f} s   {start / base:5.2f}x baseline")


if __name__ == "__main__":
    main()
