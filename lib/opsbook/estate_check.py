"""The demo on generated estates of other shapes (`opsbook estates check`, `make estates`).

Each estate runs `opsbook demo --env <its params file>` in a process of its own: moto keeps
its state per process, so one process holds one estate's twin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from opsbook.params import load_params


@dataclass
class EstateResult:
    seed: int
    params: Path
    ok: bool
    failed: list[str]  # notebooks that failed (or the reason the demo could not start)


def check_estates(base: int, count: int, runs_root: Path, console: Console | None = None) -> list[EstateResult]:
    """The demo on `count` generated estates from seed `base`, each in a subprocess (moto's state is
    per process); their params go to `<runs_root>/estates/`, their runs under `<runs_root>/<env>/`."""
    from opsbook.sandbox.estates import seeds, write_estate

    console = console or Console()
    results = []
    for seed in seeds(base, count):
        path = write_estate(seed, runs_root / "estates")
        params = load_params(path)
        console.print(f"estate {seed}: {params.region}, {len(params.rds)} RDS, {len(params.namespaces)} "
                      f"namespaces ({path})", highlight=False)
        proc = subprocess.run([sys.executable, "-c", "from opsbook.cli import app; app()", "demo", "--env",
                               str(path), "--runs-dir", str(runs_root)], capture_output=True, text=True)
        failed = sorted({json.loads(r.read_text())["name"] for r in (runs_root / params.env).glob("*/*/results.json")
                         if json.loads(r.read_text())["status"] != "passed"})
        if proc.returncode and not failed:
            failed = [f"demo exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"]
        results.append(EstateResult(seed, path, proc.returncode == 0, failed))
    table = Table("seed", "params", "status", "failed", title=f"opsbook demo on {count} generated estates")
    for r in results:
        table.add_row(str(r.seed), Text(str(r.params)), Text("passed", style="green") if r.ok else Text("failed", style="red"),
                      Text(", ".join(r.failed)))
    console.print(table)
    console.print(f"replay: OPSBOOK_ESTATE_SEED={base} opsbook estates check --count {count}")
    return results
