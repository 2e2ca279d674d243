# Every target builds .venv from nothing on a machine with Python >= 3.11, git and tmux.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# RUN_STAMP: supervisor and what it runs on, all the demo needs; STAMP: that and the test and lint tools
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.installed-stamp
SUPERVISOR := $(abspath $(VENV))/bin/supervisor

.PHONY: demo test lint bench clean conformance conformance-bump install where

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit("supervisor needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	@echo "==> creating $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(PY)
	@echo "==> installing supervisor and what it runs on (textual, libtmux, gitpython, pyyaml, psutil, slack-sdk, pathspec, inotify-simple)"
	$(PY) -m pip install --disable-pip-version-check --progress-bar on -e .
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml $(RUN_STAMP)
	@echo "==> installing the test and lint tools"
	$(PY) -m pip install --disable-pip-version-check --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(RUN_STAMP)
	@echo "==> starting the demo (quit the dashboard with q)"
	@$(VENV)/bin/supervisor demo; status=$$?; $(WHERE); exit $$status

# How to run the `supervisor` the demo's hints name, from any repository.
WHERE = echo "supervisor is installed at $(SUPERVISOR)"; \
	echo "run it as $(SUPERVISOR), or put it on your PATH: export PATH=\"$(abspath $(VENV))/bin:\$$PATH\""; \
	echo "(or \`make install\` installs it for your user with pipx)"

where:
	@$(WHERE)

install:
	@command -v pipx >/dev/null || { echo "make install needs pipx (https://pipx.pypa.io); or run $(SUPERVISOR)"; exit 1; }
	pipx install --force .

lint: $(STAMP)
	$(PY) -m ruff check supervisor tests bench
	$(PY) -m mypy

# --durations: the slowest tests, in every run's output, to keep the suite within its 15 minutes on 2 cores.
test: lint
	$(PY) -m pytest -n 4 --durations=25 tests --ignore=tests/conformance

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
