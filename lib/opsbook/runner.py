"""Execute a notebook with papermill and lay out its run folder.

`runs/<env>/<name>/<UTC timestamp>-<run-id>/` holds `output.ipynb` (the executed
notebook), `report.html` (code hidden, for readers who are not engineers),
`results.json` (status, duration, masked parameters, git commit, records) and
`records.jsonl` (what `opsbook.record()` appended while the kernel ran).

When a run must start its sandbox (a sandbox env, none exported here, none kept by
`opsbook sandbox up`), the sandbox starts in a thread while the kernel boots in its own
process, and the kernel gets the sandbox's env before the notebook's first cell.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
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
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args
from traitlets import Unicode, default

from opsbook.clients import RUN_ID_ENV, Env, new_run_id
from opsbook.errors import UsageError
from opsbook.notebooks import describe, find_notebook
from opsbook.params import Params, load_params, project_root
from opsbook.report.html import write_report
from opsbook.report.xlsx import write_workbook
from opsbook.results import RESULTS_FILE_ENV, read_records
from opsbook.sandbox.attach import SandboxStart, begin, ensure_reachable
from opsbook.sandbox.core import exported
from opsbook.secrets import mask

CellCallback = Callable[[str, int, int, str], None]  # event ("start"/"end"/"error"), index, total, label
BeforeCells = Callable[["OpsbookNotebookClient"], None]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class OpsbookNotebookClient(PapermillNotebookClient):
    """papermill's client, with a step between the kernel's start and the notebook's first cell."""

    def __init__(self, nb_man: Any, before_cells: BeforeCells | None = None, **kwargs: Any) -> None:
        super().__init__(nb_man, **kwargs)
        self.before_cells = before_cells

    def papermill_execute_cells(self) -> None:
        if self.before_cells is not None:
            self.before_cells(self)
        super().papermill_execute_cells()

    def run_silently(self, code: str) -> str:
        """Send code the notebook does not show; returns the request's id (see `settle`)."""
        return self.kc.execute(code, silent=True, store_history=False)

    def settle(self, msg_id: str) -> dict[str, Any]:
        """The reply to a silent request (requests must be settled in the order sent)."""
        return self.wait_for_reply(msg_id)["content"]


class OpsbookEngine(NBClientEngine):
    """papermill's nbclient engine: a callback told when each cell starts and ends, and an
    optional step before the first cell (`before_cells`, given the client)."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                 start_timeout=60, execution_timeout=None, on_cell: CellCallback | None = None,
                                 before_cells: BeforeCells | None = None, **kwargs):
        if on_cell is not None:
            _report_cells(nb_man, on_cell)
        # NBClientEngine.execute_managed_notebook's own handling of its arguments, with our client
        kwargs = remove_args(["input_path"], **kwargs)
        final = merge_kwargs(
            remove_args(["timeout", "startup_timeout"], **kwargs),
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"), startup_timeout=start_timeout,
            kernel_name=kernel_name, log=logger, log_output=log_output, stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        return OpsbookNotebookClient(nb_man, before_cells=before_cells, **final).execute()


def _report_cells(nb_man: Any, on_cell: CellCallback) -> None:
    """Wrap the notebook manager's cell hooks so that `on_cell` hears of each start and end."""
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


def _begin(params: Params) -> SandboxStart | None:
    """preflight(), except that a sandbox to start starts in the background (returned): the
    kernel boots meanwhile on the other core. Its credentials are the sandbox's own."""
    starting = begin(params)
    if starting is None:
        Env(params=params, run_id="preflight")._base_session  # noqa: B018 - raises CredentialsError
    return starting


def _sandbox_started(starting: SandboxStart, run_dir: Path) -> None:
    """A sandbox that failed to start fails the run as preflight() would: no run folder."""
    try:
        starting.wait()
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # no cell ran: there is no evidence to keep
        for folder in (run_dir.parent, run_dir.parent.parent):  # <name>/ and <env>/ when now empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


class _JoinSandbox:
    """Before the first cell: the kernel imports what every notebook's `open_env` needs while
    the sandbox finishes starting, then gets the sandbox's env, as if it had been there when
    the kernel started."""

    def __init__(self, starting: SandboxStart) -> None:
        self.starting = starting

    def __call__(self, client: OpsbookNotebookClient) -> None:
        warm = client.run_silently("import opsbook.clients")
        sandbox = self.starting.wait()
        client.settle(warm)  # a failed import shows again, in the notebook's own cell
        reply = client.settle(client.run_silently(f"import os\nos.environ.update({sandbox.env!r})"))
        if reply["status"] != "ok":
            raise RuntimeError(f"the kernel did not take the sandbox's env: {reply.get('evalue', reply)}")


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
    starting = _begin(params)

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
                kernel_manager_class=IpcKernelManager, before_cells=starting and _JoinSandbox(starting),
            )
        except PapermillExecutionError as exc:
            error = _failure(exc)
        except Exception as exc:  # noqa: BLE001 - a dead kernel or timeout still leaves evidence
            error = {"cell": None, "cell_index": None, "source": "", "ename": type(exc).__name__,
                     "evalue": _ANSI.sub("", str(exc))[:500], "traceback_tail": []}
    if starting is not None:
        _sandbox_started(starting, run_dir)
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
