"""Execute a notebook with papermill and lay out its run folder.

`runs/<env>/<name>/<UTC timestamp>-<run-id>/` holds `output.ipynb` (the executed
notebook), `report.html` (code hidden, for readers who are not engineers),
`results.json` (status, duration, masked parameters, git commit, records) and
`records.jsonl` (what `opsbook.record()` appended while the kernel ran).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from traitlets import Unicode, default

from opsbook.clients import RUN_ID_ENV, Env, new_run_id
from opsbook.errors import UsageError
from opsbook.notebooks import describe, find_notebook
from opsbook.params import Params, load_params, project_root
from opsbook.report.html import write_report
from opsbook.report.xlsx import write_workbook
from opsbook.results import RESULTS_FILE_ENV, read_records
from opsbook.sandbox.attach import ensure_reachable
from opsbook.sandbox.core import exported
from opsbook.secrets import mask

CellCallback = Callable[[str, int, int, str], None]  # event ("start"/"end"/"error"), index, total, label
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class OpsbookEngine(NBClientEngine):
    """papermill's nbclient engine, telling a callback when each cell starts and ends."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, on_cell: CellCallback | None = None, **kwargs):
        if on_cell is not None:
            total = len(nb_man.nb.cells)
            start, complete, failed = nb_man.cell_start, nb_man.cell_complete, nb_man.cell_exception

            def cell_start(cell, cell_index=None, **kw):
                on_cell("start", cell_index or 0, total, _label(cell))
                return start(cell, cell_index, **kw)

            def cell_complete(cell, cell_index=None, **kw):
                result = complete(cell, cell_index, **kw)
                on_cell("end", cell_index or 0, total, _label(cell))
                return result

            def cell_exception(cell, cell_index=None, **kw):
                on_cell("error", cell_index or 0, total, _label(cell))
                return failed(cell, cell_index, **kw)

            nb_man.cell_start, nb_man.cell_complete, nb_man.cell_exception = cell_start, cell_complete, cell_exception
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


papermill_engines.register("opsbook", OpsbookEngine)


class IpcKernelManager(AsyncKernelManager):
    """Kernels talk over Unix sockets, not plain-text loopback TCP."""

    transport = Unicode("ipc")  # type: ignore[assignment]

    @default("ip")
    def _private_ipc_path(self) -> str:
        # jupyter_client's default ("kernel-ipc" in the cwd) is shared by every kernel that
        # starts in the same folder at once; a private folder per kernel avoids the race.
        return str(Path(tempfile.mkdtemp(prefix="opsbook-kernel-")) / "ipc")


def _label(cell: Any) -> str:
    first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    return first[:70]


@dataclass
class RunResult:
    name: str
    env: str
    run_id: str
    status: str
    run_dir: Path
    duration_s: float
    error: dict[str, Any] | None = None
    records: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "passed"


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except OSError:
        return None
    return out.stdout.strip() or None


def _failure(exc: PapermillExecutionError) -> dict[str, Any]:
    tb = [_ANSI.sub("", line) for line in exc.traceback or []]
    tail = [ln for chunk in tb for ln in chunk.splitlines() if ln.strip()][-4:]
    source = next((ln.strip() for ln in (exc.source or "").splitlines() if ln.strip()), "")
    return {"cell": exc.exec_count, "cell_index": exc.cell_index, "source": source[:80], "ename": exc.ename,
            "evalue": _ANSI.sub("", exc.evalue), "traceback_tail": tail}


def preflight(params: Params) -> None:
    """Fail before a kernel starts: sandbox reachable, AWS credentials present."""
    ensure_reachable(params)
    Env(params=params, run_id="preflight")._base_session  # noqa: B018 - raises CredentialsError


def run_notebook(
    name: str,
    env: str | Params,
    overrides: dict[str, Any] | None = None,
    runs_root: Path | None = None,
    mirror: str | None = None,
    on_cell: CellCallback | None = None,
) -> RunResult:
    """Run one runbook/notebook against an environment and leave its evidence."""
    path = find_notebook(name)
    info = describe(path)
    params = env if isinstance(env, Params) else load_params(env)
    overrides = dict(overrides or {})
    for key in overrides:
        if key not in info.parameters or key == "env":
            known = ", ".join(k for k in info.parameters if k != "env") or "(none)"
            raise UsageError(f"{info.name} has no parameter {key!r}; its parameters are: {known}")
    preflight(params)

    run_id = new_run_id()
    started = datetime.now(UTC)
    root = project_root()
    run_dir = Path(runs_root or root / "runs") / params.env / info.name / f"{started:%Y%m%dT%H%M%SZ}-{run_id}"
    run_dir.mkdir(parents=True, exist_ok=False)
    records_file = run_dir / "records.jsonl"
    parameters = {"env": params.source if _is_path_env(params) else params.env, **overrides}

    error = None
    t0 = time.monotonic()
    kernel_env = {RUN_ID_ENV: run_id, RESULTS_FILE_ENV: str(records_file), "OPSBOOK_ROOT": str(root)}
    with exported(kernel_env):
        try:
            papermill.execute_notebook(
                str(path), str(run_dir / "output.ipynb"), parameters=parameters, kernel_name="python3",
                engine_name="opsbook", progress_bar=False, cwd=str(root), on_cell=on_cell,
                kernel_manager_class=IpcKernelManager,
            )
        except PapermillExecutionError as exc:
            error = _failure(exc)
        except Exception as exc:  # noqa: BLE001 - a dead kernel or timeout still leaves evidence
            error = {"cell": None, "cell_index": None, "source": "", "ename": type(exc).__name__,
                     "evalue": _ANSI.sub("", str(exc))[:500], "traceback_tail": []}
    duration = time.monotonic() - t0
    status = "failed" if error else "passed"
    records = read_records(records_file)
    results = {
        "name": info.name, "env": params.env, "run_id": run_id, "status": status,
        "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "duration_s": round(duration, 3), "notebook": str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
        "parameters": mask(parameters), "git_commit": git_commit(root), "error": error, "records": records,
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    output = run_dir / "output.ipynb"
    executed = nbformat.read(output, as_version=4) if output.is_file() else nbformat.read(path, as_version=4)
    write_report(executed, results, run_dir / "report.html")
    write_workbook(run_dir, results)  # report.xlsx, when the notebook kept tables
    if mirror:
        from opsbook.mirror import mirror_run

        mirror_run(run_dir, mirror, Env(params=params, run_id=run_id))
    return RunResult(info.name, params.env, run_id, status, run_dir, duration, error, records)


def _is_path_env(params: Params) -> bool:
    """True when params came from a file outside params/ (the kernel needs the path)."""
    from opsbook.params import params_dir

    return Path(params.source).parent.resolve() != params_dir().resolve()


def describe_failure(result: RunResult) -> str:
    """A few lines an on-call engineer can act on."""
    if not result.error:
        return ""
    err = result.error
    lines = [f"{result.name} failed in cell {err.get('cell')} ({err.get('source', '')}): {err['ename']}: {err['evalue']}"]
    lines += [f"  {ln}" for ln in err.get("traceback_tail", [])[-3:]]
    lines.append(f"  executed notebook: {result.run_dir / 'output.ipynb'}")
    return "\n".join(lines)
