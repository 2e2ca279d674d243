"""The domain core, the engine and the CLI never import Textual: the dashboard is just one client."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "supervisor.core.model", "supervisor.core.store", "supervisor.core.tasks", "supervisor.core.durations",
    "supervisor.config", "supervisor.engine.engine", "supervisor.engine.watcher", "supervisor.client", "supervisor.cli",
    "supervisor.tmux.server", "supervisor.git.worktrees", "supervisor.agents",
]


def test_core_does_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_cli_module_imports_stay_light() -> None:
    """The CLI runs on every hook call: importing it must not pull in libtmux, git, psutil or yaml."""
    code = ("import sys, supervisor.cli\n"
            "print(','.join(m for m in ('libtmux', 'git', 'psutil', 'yaml') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
