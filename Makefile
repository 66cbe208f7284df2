# The two commands of the README. Each installs what it needs, then runs.
#   make up     Driftline on the embedded store, with demo traffic
#   make test   lint, types and the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: up test lint typecheck pytest install-server install-dev system-deps bench

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# DRIFTLINE_COMPILE=1: the normalizer is compiled with mypyc (setup.py); editing one of its modules
# needs a new install (a test says so when a compiled module is older than its source).
install-server: $(PY)
	DRIFTLINE_COMPILE=1 $(PIP) install --quiet -e ".[server]"

install-dev: $(PY)
	DRIFTLINE_COMPILE=1 $(PIP) install --quiet -e ".[server,dev]"

system-deps:
	bash scripts/system-deps.sh

up: install-server
	$(VENV)/bin/driftline up --demo

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	$(VENV)/bin/mypy

pytest: install-dev
	$(VENV)/bin/pytest

test: system-deps install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest
