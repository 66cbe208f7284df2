# The two commands of the README. Each installs what it needs, then runs.
#   make up     Driftline on the embedded store, with demo traffic
#   make test   lint, types and the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: up test lint typecheck pytest install-server install-dev node-deps system-deps bench dashboards grounding-model grounding-lexicon

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# An editable install: setup.py maps collector/ and scorers/ to driftline.collector and driftline.scorers.
install-server: $(PY)
	$(PIP) install --quiet -e ".[server]"

install-dev: $(PY)
	$(PIP) install --quiet -e ".[server,dev]"

system-deps:
	bash scripts/system-deps.sh

# The Vercel AI SDK golden test's Node project (tests/node/vercel, locked). Without npm the test
# skips on a laptop; in CI (CI=true) a missing npm fails here.
node-deps:
	@if command -v npm >/dev/null; then npm ci --prefix tests/node/vercel --no-audit --no-fund --loglevel=error; \
	elif [ "$${CI:-}" = "true" ]; then echo "npm is missing (the Vercel AI SDK test needs Node 20+)" >&2; exit 1; \
	else echo "npm is missing: the Vercel AI SDK test will skip" >&2; fi

up: install-server
	$(VENV)/bin/driftline up --demo

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy reads the file tree, not the install's package mapping: scripts/typecheck.py mirrors it.
typecheck: install-dev
	$(PY) scripts/typecheck.py

pytest: install-dev node-deps
	$(VENV)/bin/pytest

test: system-deps install-dev node-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/typecheck.py
	$(VENV)/bin/pytest

# Development tools (tools/, never installed): regenerate what the repository ships.
dashboards: install-dev
	$(PY) -m tools.dashboards

grounding-model: install-dev
	$(PY) -m tools.grounding.train

grounding-lexicon: install-dev
	$(PY) -m tools.grounding.build_lexicon
