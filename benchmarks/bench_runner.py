"""Start-up and run times of opsbook (issue 11's goals), against a bare papermill run, before and after.

    .venv/bin/python benchmarks/bench_runner.py                       # this checkout
    .venv/bin/python benchmarks/bench_runner.py --before d3d7cf7      # and the same on another commit
    .venv/bin/python benchmarks/bench_runner.py --before d3d7cf7 --make-test   # + `make test` on fresh clones
    .venv/bin/python benchmarks/bench_runner.py --only cli,startup,run --repeat 5

Every measurement runs in subprocesses with PYTHONPATH pointing at the tree measured (this
checkout, or a temporary `git worktree` of `--before`), from that tree's root, with no
sandbox inherited (a fresh shell). The baseline is a bare `papermill` run of a one-cell
notebook, measured in the same command, so the ratios compare across machines and loads.
Times are medians of --repeat runs. Goals (issue 11) are printed beside the figures, never
asserted:

- sandbox start-up (in one process, --repeat starts; the first pays the imports) <= 1.5 s;
- cold `opsbook run health-check --env sandbox` <= 2x the baseline (stretch 1.5x), and
  <= 1.2x with `opsbook sandbox up` already running;
- `opsbook demo --jobs N` (N = cores) >= 1.6x faster than `--jobs 1`, same statuses and headlines;
- `opsbook --help`, `opsbook list`, `opsbook params check sandbox` under 1 s each;
- `make test` on a fresh clone (venv install included) <= 6 minutes (--make-test; long).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOALS = ("cli", "startup", "run", "daemon", "demo")

STARTUP = """
import json, sys, time
from opsbook.params import load_params
from opsbook.sandbox import Sandbox
params, out = load_params("sandbox"), []
for _ in range({repeat}):
    box = Sandbox(params)
    begun = time.perf_counter()
    box.start()
    out.append(time.perf_counter() - begun)
    box.stop()
print(json.dumps(out))
"""


def clean_env() -> dict[str, str]:
    """No sandbox, params folder or root inherited: each command starts as on a fresh terminal."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "KUBECONFIG", "DD_", "OPSBOOK_", "PYTHONPATH"))}


@dataclass
class Tree:
    """A checkout measured: its root, on PYTHONPATH, as the working directory."""

    label: str
    root: Path

    def env(self) -> dict[str, str]:
        return {**clean_env(), "PYTHONPATH": str(self.root / "lib")}

    def run(self, *args: str, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
        begun = time.perf_counter()
        out = subprocess.run(list(args), cwd=self.root, env=self.env(), capture_output=True, text=True)
        elapsed = time.perf_counter() - begun
        if check and out.returncode != 0:
            raise RuntimeError(f"{self.label}: {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
        return elapsed, out

    def opsbook(self, *args: str, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
        return self.run(str(BIN / "opsbook"), *args, check=check)


def median_of(repeat: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeat))


def baseline(repeat: int, tmp: Path) -> float:
    import nbformat

    empty = tmp / "empty.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("pass")]
    nbformat.write(nb, empty)
    papermill = [str(BIN / "papermill"), "-k", "python3", "--no-progress-bar", str(empty), str(tmp / "out.ipynb")]
    return median_of(repeat, lambda: Tree("baseline", tmp).run(*papermill)[0])


def measure_cli(tree: Tree, repeat: int) -> dict[str, float]:
    commands = {"opsbook --help": ["--help"], "opsbook list": ["list"],
                "opsbook params check sandbox": ["params", "check", "sandbox"]}
    return {name: median_of(repeat, lambda a=args: tree.opsbook(*a)[0]) for name, args in commands.items()}


def measure_startup(tree: Tree, repeat: int) -> dict[str, float]:
    _, out = tree.run(sys.executable, "-c", STARTUP.format(repeat=repeat))
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return {"sandbox start-up, median": statistics.median(times), "sandbox start-up, first (cold)": times[0]}


def measure_run(tree: Tree, repeat: int, tmp: Path) -> float:
    runs = tmp / f"runs-{tree.label}"
    return median_of(repeat, lambda: tree.opsbook("run", "health-check", "--env", "sandbox", "--runs-dir", str(runs))[0])


@contextmanager
def daemon(tree: Tree):
    tree.opsbook("sandbox", "up", "--env", "sandbox")
    try:
        yield
    finally:
        tree.opsbook("sandbox", "down", "--env", "sandbox", check=False)


def measure_daemon_run(tree: Tree, repeat: int, tmp: Path) -> float:
    with daemon(tree):
        return measure_run(tree, repeat, tmp / "daemon")


def outcomes(runs: Path) -> dict[str, tuple[str, str]]:
    """{notebook: (status, headline)}, a drill's measured RTO/RPO masked (numbers of the moment)."""
    sys.path.insert(0, str(ROOT / "lib"))
    from opsbook.demo import outcomes as demo_outcomes

    return demo_outcomes(runs)


def measure_demo(tree: Tree, jobs: list[int | None], tmp: Path) -> dict[str, tuple[float, dict]]:
    """Wall time and outcomes of `opsbook demo` (--jobs N each; None: the tree's default)."""
    found = {}
    for n in jobs:
        runs = tmp / f"demo-{tree.label}-{n or 'default'}"
        args = ["demo", "--runs-dir", str(runs)] + (["--jobs", str(n)] if n else [])
        elapsed, _ = tree.opsbook(*args, check=False)
        found[f"--jobs {n}" if n else "default"] = (elapsed, outcomes(runs))
    return found


def measure_make_test(ref: str, tmp: Path) -> float:
    """`make test` as CI runs it (.ci/run), on a fresh clone of `ref`: venv install included."""
    commit = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    clone = tmp / f"clone-{commit[:10]}"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "--detach", commit], cwd=clone, check=True)
    shared = ROOT.parent / "shared"  # DESIGN.md and new contracts beside the checkout, as in CI
    if shared.is_dir() and not (clone.parent / "shared").exists():
        (clone.parent / "shared").symlink_to(shared)
    begun = time.perf_counter()
    out = subprocess.run(["make", "test"], cwd=clone, env={**clean_env(), "OPSBOOK_REQUIRE_SERVICES": "1"},
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - begun
    tail = out.stdout.strip().splitlines()[-1:] or [""]
    print(f"  make test on a clone of {ref}: exit {out.returncode}, {tail[0]}", flush=True)
    shutil.rmtree(clone, ignore_errors=True)
    return elapsed


@contextmanager
def worktree(ref: str):
    """A temporary `git worktree` of `ref` (its own .opsbook caches: a cold start there is cold)."""
    path = Path(tempfile.mkdtemp(prefix=f"opsbook-before-{ref}-"))
    subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(path), ref], cwd=ROOT, check=True)
    try:
        yield Tree(f"before ({ref})", path)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)
        shutil.rmtree(path, ignore_errors=True)


def measure(tree: Tree, goals: set[str], repeat: int, jobs: int, tmp: Path, parallel_demo: bool) -> dict:
    print(f"measuring {tree.label} ...", flush=True)
    figures: dict = {}
    if "cli" in goals:
        figures.update(measure_cli(tree, repeat))
    if "startup" in goals:
        figures.update(measure_startup(tree, repeat))
    if "run" in goals:
        figures["opsbook run health-check, cold"] = measure_run(tree, repeat, tmp)
    if "daemon" in goals:
        figures["opsbook run health-check, sandbox up"] = measure_daemon_run(tree, repeat, tmp)
    if "demo" in goals:
        figures["demo"] = measure_demo(tree, [1, jobs] if parallel_demo else [None], tmp)
    return figures


def report(base: float, before: dict | None, after: dict, jobs: int) -> None:
    def cell(value: float | None) -> str:
        return f"{value:8.2f} s {value / base:5.2f}x" if value is not None else " " * 17

    targets = {"opsbook --help": "< 1 s", "opsbook list": "< 1 s", "opsbook params check sandbox": "< 1 s",
               "sandbox start-up, median": "<= 1.5 s", "opsbook run health-check, cold": "<= 2x (1.5x)",
               "opsbook run health-check, sandbox up": "<= 1.2x"}
    print(f"\nbaseline: bare papermill, one-cell notebook: {base:.2f} s (1.00x); columns: seconds, x baseline")
    print(f"{'':40} {'before':>17} {'after':>17}   goal")
    for name, value in after.items():
        if name == "demo":
            continue
        print(f"{name:40} {cell((before or {}).get(name))} {cell(value)}   {targets.get(name, '')}")
    if "demo" in after:
        demo_report(base, (before or {}).get("demo"), after["demo"], jobs)


def demo_report(base: float, before: dict | None, after: dict, jobs: int) -> None:
    for label, (elapsed, _) in (before or {}).items():
        print(f"{'opsbook demo (before: ' + label + ')':40} {elapsed:8.2f} s {elapsed / base:5.2f}x")
    (one, serial), (many, parallel) = after["--jobs 1"], after[f"--jobs {jobs}"]
    print(f"{'opsbook demo --jobs 1':40} {'':17} {one:8.2f} s {one / base:5.2f}x")
    print(f"{f'opsbook demo --jobs {jobs}':40} {'':17} {many:8.2f} s {many / base:5.2f}x   "
          f"{one / many:.2f}x faster than --jobs 1 (goal >= 1.6x)")
    differ = sorted(name for name in set(serial) | set(parallel) if serial.get(name) != parallel.get(name))
    print(f"  statuses and headlines: {'the same for all ' + str(len(serial)) if not differ else 'differ: ' + ', '.join(differ)}")
    for name in differ:
        print(f"    {name}: --jobs 1 {serial.get(name)}; --jobs {jobs} {parallel.get(name)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", metavar="GIT_REF", help="also measure this commit (a temporary git worktree)")
    parser.add_argument("--only", default=",".join(GOALS), help=f"comma-separated subset of {','.join(GOALS)}")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="demo --jobs N (default: cores)")
    parser.add_argument("--make-test", action="store_true", help="also time `make test` on fresh clones (long)")
    args = parser.parse_args()
    goals = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="opsbook-bench-") as name:
        tmp = Path(name)
        base = baseline(args.repeat, tmp)
        before = None
        if args.before:
            with worktree(args.before) as old:
                before = measure(old, goals, args.repeat, args.jobs, tmp, parallel_demo=False)
        after = measure(Tree("after", ROOT), goals, args.repeat, args.jobs, tmp, parallel_demo=True)
        report(base, before, after, args.jobs)
        if args.make_test:
            refs = [*([args.before] if args.before else []), "HEAD"]
            times = {ref: measure_make_test(ref, tmp) for ref in refs}
            for ref, elapsed in times.items():
                print(f"{'make test, fresh clone of ' + ref:40} {elapsed / 60:8.2f} min   goal <= 6 min")


if __name__ == "__main__":
    main()
