# ChargeWarden: every target sets up its own virtual environment on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run demo test bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ChargeWarden needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/chargewarden serve

demo: setup
	$(BIN)/chargewarden demo

lint: setup
	$(BIN)/ruff check src tests bench

test: setup lint
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/rpc.py
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/tls.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache src/*.egg-info
