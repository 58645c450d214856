# Every target that needs the environment depends on .venv/.stamp, which is rebuilt
# when pyproject.toml changes (stale) or when .venv is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp

.PHONY: demo test lab lint services clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	@touch $(STAMP)

services:
	@scripts/services.sh

demo: $(STAMP) services
	$(BIN)/opsbook demo

# Tests run in parallel, one sandbox per worker (tests/conftest.py); a module's tests stay on
# one worker (--dist loadscope), as its module fixtures and order-dependent checks expect.
TEST_WORKERS ?= auto
test: $(STAMP) services
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=.

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .opsbook
