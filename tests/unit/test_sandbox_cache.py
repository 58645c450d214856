"""The sandbox's generated-CUR cache, shared by sandboxes that start at once: an entry appears whole
or not at all, the first writer wins, and only entries unused for a day are pruned."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from opsbook.sandbox.cost import service


def _writer(text: str, wait: threading.Barrier | None = None):
    def write(folder: Path) -> None:
        (folder / "data").mkdir()
        (folder / "data" / "part.parquet").write_text(text)
        if wait is not None:
            wait.wait(timeout=10)  # both writers have written before either renames
        (folder / "generated.json").write_text("{}")
    return write


def test_two_writers_at_once_leave_one_whole_entry(tmp_path: Path) -> None:
    out = tmp_path / "abc"
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=service._publish, args=(out, _writer(t, barrier))) for t in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (out / "generated.json").is_file() and (out / "data" / "part.parquet").read_text() in ("one", "two")
    assert [p.name for p in tmp_path.iterdir()] == ["abc"]  # no private folder left


def test_a_failing_writer_leaves_nothing(tmp_path: Path) -> None:
    def fail(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError, match="generator failed"):
        service._publish(tmp_path / "abc", fail)
    assert list(tmp_path.iterdir()) == []


def test_pruning_keeps_recent_and_recently_used_entries(tmp_path: Path) -> None:
    day_ago = time.time() - service.IN_USE_SECONDS - 60
    names = [f"e{i}" for i in range(service.KEEP_ENTRIES + 3)]
    for i, name in enumerate(names):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (day_ago - i, day_ago - i))  # e0 the most recently used
    os.utime(tmp_path / names[-1])  # the oldest entry was just used again
    (tmp_path / ".abandoned-x").mkdir()
    os.utime(tmp_path / ".abandoned-x", (day_ago, day_ago))
    (tmp_path / ".writing-y").mkdir()  # another sandbox is writing it now
    service._prune(tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted([*names[:service.KEEP_ENTRIES - 1], names[-1], ".writing-y"])
