# Every target creates the virtual environment it needs; a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STACK  ?= local

.PHONY: venv test lint validate render schema emulator clean up down bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/actionlint -shellcheck=$(VENV)/bin/shellcheck $(wildcard .github/workflows/*.yml)
	$(VENV)/bin/zizmor --offline --quiet .github
	$(PY) -m ruff check .
	$(PY) -m mypy $(wildcard components emulator testing)

test: venv lint
	$(PY) -m pytest -q

validate: venv
	$(PY) -m components validate

render: venv
	$(PY) -m components render $(STACK)

schema: venv
	$(PY) -m components schema > stack.schema.json

emulator: venv
	$(PY) -m emulator --port 8787

# Convergence time, API calls, program scale, offline review speed; QUICK=1 in under two minutes.
bench: venv
	$(PY) -m bench $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The whole project on one machine (STACK=local: the emulator and a file backend in .pulumi-state/).
# The Pulumi CLI is checked first; the logic lives in scripts/.
up:
	@scripts/up.sh "$(STACK)"

down:
	@scripts/down.sh "$(STACK)"
