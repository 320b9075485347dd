# Every target creates the virtual environment it needs; a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STACK  ?= local
# STACK reaches recipes only through the environment, as "$$STACK", never pasted into a recipe's
# text: `make render STACK='x;rm -rf ~'` must name a stack, not run a command. `$(value ...)`
# keeps make itself from expanding a `$(shell ...)` in it; the scripts validate it as a name.
override STACK := $(value STACK)
export STACK

.PHONY: venv test lint validate render schema emulator clean up down bench pulumi

# One line, before anything runs, when the Python that would run (the venv's once it exists)
# is older than 3.11; `make clean` needs no Python. Written to run on any Python, 2.7 included,
# so that an old one is named by its version.
CHECK_PY := $(if $(wildcard $(PY)),$(PY),$(PYTHON))
export MAKE_PYTHON := $(CHECK_PY)
PY_SEEN  := $(if $(filter-out clean,$(or $(MAKECMDGOALS),all)),$(shell $(CHECK_PY) -c 'import sys; sys.stdout.write("%d.%d.%d %s\n" % (sys.version_info[:3] + ("ok" if sys.version_info >= (3, 11) else "old",)))' 2>/dev/null))
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
ifeq ($(PY_SEEN),)
$(error this project needs Python 3.11 or newer, and $(CHECK_PY) does not run: install Python 3.11+ and run make again (or make PYTHON=/path/to/python3.11))
endif
ifneq ($(lastword $(PY_SEEN)),ok)
$(error this project needs Python 3.11 or newer, and $(CHECK_PY) is $(firstword $(PY_SEEN)): install 3.11+ and run make PYTHON=python3.11 (after make clean if $(VENV) was made with the old one))
endif
endif

# pip is quiet, so say what it is doing: a first install downloads for a minute or two.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "preparing the virtual environment $(VENV) (Python $(firstword $(PY_SEEN)))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "upgrading pip in $(VENV)"
	@$(PY) -m pip install -q --upgrade pip
	@echo "installing requirements-dev.txt into $(VENV) (pulumi, databricks-sdk, pydantic, test tools): a minute or two the first time"
	@$(PY) -m pip install -q -r requirements-dev.txt
	@echo "$(VENV) is ready"
	@touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/actionlint -shellcheck=$(VENV)/bin/shellcheck $(wildcard .github/workflows/*.yml)
	$(VENV)/bin/zizmor --offline --quiet .github
	$(PY) -m ruff check .
	$(PY) -m mypy $(wildcard components emulator engine testing)

# Four pytest workers on two cores: most of the suite waits on child processes (the provider
# process, make, the installer), so more workers than cores pays. Each worker starts its own
# emulator. TEST_JOBS=0 runs in one process; `-m unit` (or emulator, process, program) one layer.
# Exported and read by the shell, never pasted into the recipe's text. worksteal: a worker that
# runs out of tests takes some of another's, so the few 20-40 s tests do not end the run alone.
TEST_JOBS ?= 4
export TEST_JOBS
test: venv lint
	$(PY) -m pytest -q -n "$$TEST_JOBS" --dist worksteal

validate: venv
	$(PY) -m components validate

render: venv
	$(PY) -m components render -- "$$STACK"

schema: venv
	$(PY) -m components schema --output stack.schema.json

# The same emulator `make up STACK=local` uses (state, token files, seeded models in .emulator/),
# in the foreground; Ctrl-C stops it. `scripts/emulator.sh status` says whether it answers.
emulator: venv
	@scripts/emulator.sh run

# Convergence time, API calls, program scale, offline review speed; QUICK=1 in under two minutes.
bench: venv
	$(PY) -m bench $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The whole project on one machine (STACK=local: the emulator and a file backend in .pulumi-state/).
# Without `pulumi` on PATH, the CLI release matching the pinned SDK is installed into .venv/bin
# first (scripts/install_pulumi.py); the logic lives in scripts/.
up:
	@PYTHON="$$MAKE_PYTHON" scripts/up.sh "$$STACK"

down:
	@PYTHON="$$MAKE_PYTHON" scripts/down.sh "$$STACK"

# Find or install the Pulumi CLI; prints the folder holding it, so CI can run
# `make -s pulumi >> "$$GITHUB_PATH"`. PULUMI_RELEASES_URL overrides where releases are fetched.
pulumi:
	@"$$MAKE_PYTHON" scripts/install_pulumi.py
