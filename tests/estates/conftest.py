"""Generated estates for the tests: the run's seed, and a sandbox process per estate.

The seed is new each run and the same in every pytest-xdist worker of a run (it comes from
xdist's run id), so workers share the parametrized estates; `OPSBOOK_ESTATE_SEED=<n>`
replays a run. It shows in the test ids (`estate-<seed>`) and the report header.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from opsbook.params import Params, load_params
from opsbook.sandbox import attach
from opsbook.sandbox.estates import new_seed, seeds, write_estate

ESTATES_PER_RUN = 3


def base_seed() -> int:
    if os.environ.get("OPSBOOK_ESTATE_SEED"):
        return int(os.environ["OPSBOOK_ESTATE_SEED"])
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # one id for every worker of the run
    return int(run[:8], 16) % 10**6 if run else new_seed()


BASE_SEED = base_seed()
SEEDS = seeds(BASE_SEED, ESTATES_PER_RUN)


def estate_id(seed: int) -> str:
    return f"estate-{seed}"


@pytest.fixture()
def exported_env() -> Iterator[None]:
    """Whatever a run exports into os.environ (another sandbox's endpoints) is undone afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def start_estate(seed: int, folder: Path, edit: Callable[[dict], None] | None = None) -> Params:
    """Write estate `seed` (its params mapping changed by `edit`) and start its sandbox process."""
    path = write_estate(seed, folder)
    if edit is not None:
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    params = load_params(path)
    attach.up(params, wait_seconds=300)
    return params


@pytest.fixture()
def estate_sandboxes(mariadb, rabbitmq, exported_env) -> Iterator[list[Params]]:
    """Estates started by the test (append to the list); each sandbox process is stopped afterwards."""
    started: list[Params] = []
    yield started
    for params in started:
        attach.down(params.env)
