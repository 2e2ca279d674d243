# Both targets build .venv from nothing on a machine with Python >= 3.11, git and tmux.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

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
	$(PY) -m pytest -n 4 tests

bench: $(STAMP)
	$(PY) bench/spawn.py
	$(PY) bench/ui.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
