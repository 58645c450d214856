"""`opsbook demo --jobs N`: which notebooks may run together (declared locks), on hand-built plans."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from opsbook.demo import LOCKS, Job, locks_of, startable
from opsbook.errors import UsageError
from opsbook.notebooks import all_notebooks


def _job(name: str, **locks: str) -> Job:
    return Job(Path(f"{name}.ipynb"), locks)


def test_shared_holders_run_together_and_an_exclusive_one_waits_for_every_earlier_holder() -> None:
    plan = [_job("check", rds="shared"), _job("audit", rds="shared"), _job("failover", rds="exclusive"),
            _job("cost")]
    assert startable(plan, done=set(), started=set()) == [0, 1, 3]
    assert startable(plan, done={0}, started={0, 1, 3}) == []  # "audit" still holds rds
    assert startable(plan, done={0, 1}, started={0, 1, 3}) == [2]


def test_a_later_holder_never_overtakes_an_earlier_conflicting_one() -> None:
    plan = [_job("failover", rds="exclusive"), _job("pitr", rds="exclusive", drills="shared"),
            _job("history", drills="exclusive"), _job("restore", velero="exclusive", drills="shared")]
    # the history reads what drills leave: it waits for pitr, which waits for failover; the
    # Velero drill shares "drills" with pitr but must not start before the history has run
    assert startable(plan, done=set(), started=set()) == [0]
    assert startable(plan, done={0}, started={0}) == [1]
    assert startable(plan, done={0, 1}, started={0, 1}) == [2]
    assert startable(plan, done={0, 1, 2}, started={0, 1, 2}) == [3]


def test_notebooks_without_common_locks_never_wait() -> None:
    plan = [_job("a", rds="exclusive"), _job("b", velero="exclusive"), _job("c"), _job("d", workloads="shared")]
    assert startable(plan, done=set(), started=set()) == [0, 1, 2, 3]


@pytest.mark.parametrize("locks, wrong", [({"rdss": "exclusive"}, "rdss"), ({"rds": "write"}, "write")])
def test_an_unknown_lock_or_mode_is_refused_naming_the_notebook(tmp_path: Path, locks: dict, wrong: str) -> None:
    path = tmp_path / "bad.ipynb"
    nb = nbformat.v4.new_notebook(metadata={"opsbook": {"locks": locks}})
    nbformat.write(nb, path)
    with pytest.raises(UsageError) as info:
        locks_of(path)
    assert str(path) in str(info.value) and wrong in str(info.value) and "exclusive" in str(info.value)


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.stem)
def test_every_notebook_declares_known_locks(path: Path) -> None:
    assert set(locks_of(path)) <= set(LOCKS)
