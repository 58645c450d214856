# Every target that needs the environment depends on .venv/.stamp, which is rebuilt
# when pyproject.toml changes (stale) or when .venv is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp

.PHONY: setup browser demo test estates lab lint services clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	@touch $(STAMP)

# Everything the tests need on this machine: the virtualenv, MariaDB and RabbitMQ, Chromium.
setup: $(STAMP) services browser

services:
	@scripts/services.sh

browser:
	@scripts/browser.sh

demo: $(STAMP) services
	$(BIN)/opsbook demo

# Tests run in parallel, one sandbox per worker (tests/conftest.py); a module's tests stay on
# one worker (--dist loadscope), as its module fixtures and order-dependent checks expect.
TEST_WORKERS ?= auto
test: $(STAMP) services browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

# the demo on 20 generated estates (a new seed each time, printed; OPSBOOK_ESTATE_SEED=<n> replays it)
estates: $(STAMP) services
	$(BIN)/opsbook estates check --count 20

# JupyterLab on the checkout: open a runbook, set its parameters cell, run it against that env.
# (Interactive runs are not recorded; each notebook says so at its top, and how to record one.)
lab: $(STAMP) services
	OPSBOOK_ROOT=$(CURDIR) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/jupyter lab --notebook-dir=. \
		$$([ "$$(id -u)" = 0 ] && echo --allow-root)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .opsbook
