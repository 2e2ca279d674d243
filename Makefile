# Every target builds .venv from nothing on a machine with Python >= 3.11, git and tmux.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean conformance conformance-bump

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("supervisor needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/supervisor demo

lint: $(STAMP)
	$(PY) -m ruff check supervisor tests bench
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -n 4 tests --ignore=tests/conformance

# The real agent CLIs at the versions in tests/conformance/pins.json, installed once per pin into
# $${SUPERVISOR_CONFORMANCE_CACHE:-~/.cache/supervisor-conformance}, run offline against local API stand-ins.
CONFORMANCE_WORKERS ?= 2

conformance: $(STAMP)
	$(PY) tests/conformance/install.py
	$(PY) -m pytest -n $(CONFORMANCE_WORKERS) --dist loadfile tests/conformance

# Moves the pins to the latest releases, runs the suite, and keeps every screen it names as a fixture.
conformance-bump: $(STAMP)
	$(PY) tests/conformance/install.py --bump
	SUPERVISOR_CONFORMANCE_RECORD=1 $(PY) -m pytest -n $(CONFORMANCE_WORKERS) --dist loadfile tests/conformance

bench: $(STAMP)
	$(PY) bench/spawn.py
	$(PY) bench/ui.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
