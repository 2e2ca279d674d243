"""What the host has, said first on every connection (`hello`): the engine decides from it what the host can
run (tmux ≥ 3.2, git, a sandbox) and where to place agents (cores, load, disk)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from typing import Any

from . import sandbox_op


def hello(version: str, host_dir: str) -> dict[str, Any]:
    bwrap, problem = sandbox_op.bwrap()
    return {
        "version": version,
        "python": platform.python_version(),
        "git": _version(["git", "--version"], r"git version (\S+)"),
        "tmux": _version(["tmux", "-V"], r"tmux (\S+)"),
        "bwrap": bwrap is not None,  # usable, started as agents' sandboxes are (as root too)
        "bwrap_problem": problem,  # why not, in one line
        "cores": _cores(),
        "load1": os.getloadavg()[0],
        "disk_free": disk_free(host_dir),
        "user": _user(),
        "home": os.path.expanduser("~"),
        "dir": os.path.expanduser(host_dir),
        "path": os.environ.get("PATH", ""),  # where git and tmux were looked for (said when one is missing)
    }


def _version(argv: list[str], pattern: str) -> str | None:
    """The tool's version, or None when it is missing or does not run."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(pattern, done.stdout)
    return found.group(1) if done.returncode == 0 and found else None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def disk_free(host_dir: str) -> int | None:
    """Free bytes on the file system that holds `host_dir` (its nearest existing folder: made on first use)."""
    path = os.path.expanduser(host_dir)
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    try:
        return shutil.disk_usage(path or "/").free
    except OSError:
        return None


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())
