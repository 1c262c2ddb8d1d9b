# Huiju: two commands do all the set-up (`make demo`, `make test`); see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.huiju-stamp

.PHONY: setup demo up down test test-fast bench lint lock clean distclean

setup: $(STAMP)

# The environment is rebuilt only when what it is built from changes.
$(STAMP): requirements.txt pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Huiju needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	# Bytecode is compiled at install: PYTHONDONTWRITEBYTECODE would otherwise make every import of Airflow and GX 3x slower.
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

demo: setup
	bash scripts/install_cjk_font.sh   # the reports' charts are set in Noto Sans CJK (Debian's fonts-noto-cjk)
	$(BIN)/huiju demo

up: setup
	$(BIN)/huiju up

down: setup
	$(BIN)/huiju down

# On every core (pytest-xdist): a test file at a time per worker, the two daily-cycle files first (tests/conftest.py).
# `make test PARALLEL=` runs in one process (e.g. to read a failing test's output in order).
PARALLEL ?= -n auto --dist loadfile --no-loadscope-reorder

# The 25 slowest tests are listed at the end: the suite's budget is 20 minutes on 2 cores.
test: setup
	$(BIN)/python -m pytest -p no:cacheprovider --durations=25 $(PARALLEL) $(PYTEST_ARGS)

# Everything but the end-to-end demo cycles: the edit–test loop.
test-fast: setup
	$(BIN)/python -m pytest -p no:cacheprovider -m "not e2e" $(PARALLEL) $(PYTEST_ARGS)

bench: setup
	bash scripts/install_cjk_font.sh   # report_monthly renders the reports' charts (Noto Sans CJK)
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check .
	cd dbt_project && ../$(BIN)/sqlfluff lint models --processes 2

# Re-resolve requirements.in into the pinned requirements.txt.
lock: setup
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --annotation-style line requirements.in -o requirements.txt

clean:
	-$(BIN)/huiju down 2>/dev/null
	-$(BIN)/huiju warehouse --stop 2>/dev/null
	rm -rf var

distclean: clean
	rm -rf $(VENV)
