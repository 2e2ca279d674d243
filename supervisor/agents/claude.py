"""Claude Code: launched in a worktree it already trusts, resumed with --continue."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from supervisor.agents.base import Profile


class ClaudeProfile(Profile):
    def prepare_worktree(self, repo_root: Path, worktree: Path, home: Path) -> None:
        record_trust(home / ".claude.json", repo_root, worktree)


def record_trust(config: Path, repo_root: Path, worktree: Path) -> bool:
    """Trust `worktree` in Claude Code's config when the user already trusts `repo_root` (SPEC §7).

    Claude Code keeps trust per folder and rewrites ~/.claude.json itself, so the file is changed under a
    lock with an atomic rename, keeping every other key as it was. Returns whether trust was recorded."""
    if not config.exists():
        return False
    lock_path = config.with_name(config.name + ".supervisor-lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data: dict[str, Any] = json.loads(config.read_text() or "{}")
        except (OSError, ValueError):
            return False  # never rewrite a file we cannot read
        projects = data.get("projects")
        if not isinstance(projects, dict):
            return False
        parent = projects.get(str(repo_root))
        if not isinstance(parent, dict) or not parent.get("hasTrustDialogAccepted"):
            return False
        entry = projects.setdefault(str(worktree), {})
        if not isinstance(entry, dict) or entry.get("hasTrustDialogAccepted"):
            return bool(isinstance(entry, dict))
        entry["hasTrustDialogAccepted"] = True
        _atomic_write(config, json.dumps(data, indent=2))
    return True


def _atomic_write(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


CLAUDE = ClaudeProfile(
    name="claude",
    default_command="claude",
    stagger=2.0,
    resume_args="--continue",
    ready_pattern=re.compile(r"\? for shortcuts|auto mode on|⏵⏵|^\s*[│>❯]\s*$", re.MULTILINE),
    blocked_pattern=re.compile(r"Esc to cancel|Do you trust|trust this folder|Enter to confirm"),
)
