# Every target that needs the environment depends on .venv/.stamp, which is rebuilt
# when pyproject.toml changes (stale) or when .venv is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp

.PHONY: demo test estates lab lint services clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	@touch $(STAMP)

services:
	@scripts/services.sh

demo: $(STAMP) services
	$(BIN)/opsbook demo

test: $(STAMP) services
	$(BIN)/python -m pytest

# the demo on 20 generated estates (a new seed each time, printed; OPSBOOK_ESTATE_SEED=<n> replays it)
estates: $(STAMP) services
	$(BIN)/opsbook estates check --count 20

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=.

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .opsbook
