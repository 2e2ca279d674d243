"""Claude Code: launched in a worktree it already trusts, resumed with --continue."""

from __future__ import annotations

import fcntl
import json
import re
from pathlib import Path
from typing import Any

from supervisor.agents.base import Profile
from supervisor.agents.screens import ESC_TO_CANCEL, ScreenRules, Verdict, marker
from supervisor.files import write_atomically

# The hook events supervisor listens to (Claude Code's documented hook names).
HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
               "PermissionRequest", "PermissionDenied", "Notification", "Stop", "StopFailure", "SubagentStop",
               "PreCompact", "SessionEnd")
_TOOL_EVENTS = {"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest", "PermissionDenied"}


class ClaudeProfile(Profile):
    def prepare_worktree(self, repo_root: Path, worktree: Path, home: Path, hook_command: str) -> None:
        record_trust(home / ".claude.json", repo_root, worktree)
        install_hooks(worktree / ".claude" / "settings.local.json", hook_command)


def hook_settings(hook_command: str, timeout: int = 30) -> dict[str, Any]:
    """The `hooks` block that makes Claude Code report every state change to supervisor."""
    hooks: dict[str, Any] = {}
    for event in HOOK_EVENTS:
        # A permission request is held until a human answers; the engine lets go after approval.timeout.
        limit = 86400 if event == "PermissionRequest" else timeout
        entry: dict[str, Any] = {"hooks": [{"type": "command", "command": hook_command, "timeout": limit}]}
        if event in _TOOL_EVENTS:
            entry["matcher"] = "*"
        hooks[event] = [entry]
    return hooks


def install_hooks(settings: Path, hook_command: str) -> None:
    """Add supervisor's hooks to the worktree's own Claude settings (a file git never sees: it is
    excluded), keeping whatever else the file holds. Project-level hooks do not reliably reach worktrees,
    so each worktree gets its own."""
    data: dict[str, Any] = {}
    if settings.exists():
        try:
            loaded = json.loads(settings.read_text() or "{}")
            data = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            data = {}
    hooks = data.setdefault("hooks", {})
    for event, entries in hook_settings(hook_command).items():
        kept = [e for e in hooks.get(event, []) if not _is_ours(e, hook_command)]
        hooks[event] = kept + entries
    settings.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2)
    write_atomically(settings, text)


def _is_ours(entry: Any, hook_command: str) -> bool:
    return isinstance(entry, dict) and any(
        isinstance(h, dict) and h.get("command") == hook_command for h in entry.get("hooks", []))


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
        write_atomically(config, json.dumps(data, indent=2), durable=True)
    return True


# Recorded from Claude Code 2.1.330 (tests/fixtures/claude): the footer under the input box is the last line
# with a marker and decides. It reads `esc to interrupt` while Claude works, only its mode (`auto mode on`,
# `manual mode on · ? for shortcuts`) when it is idle, and gives way to `Esc to cancel` or `Enter to confirm`
# under every dialog (permissions, auto-mode notices, workspace trust). The input box itself (`❯` and a
# no-break space) is drawn in every state and so is no marker.
CLAUDE_SCREEN = ScreenRules(
    markers=(
        ESC_TO_CANCEL,
        marker(Verdict.WAITING, "dialog: Enter to confirm/continue", r"Enter to (confirm|continue|stay)"),
        marker(Verdict.WORKING, "footer: esc to interrupt", r"esc to interrupt"),
        marker(Verdict.IDLE, "footer: mode", r"^\s*(⏵⏵|⏸|⏵)?\s*(auto mode|manual mode|accept edits|plan mode|"
                                             r"bypass permissions) on\b|\? for shortcuts"),
    ),
    errors=(re.compile(r"API Error|^\s*⎿\s+Error:|Connection refused|retrying in \d+s"),),
    limits=(re.compile(r"\b(?:usage|hour|weekly|daily|session|Opus|Sonnet) limit reached|rate_limit_error"
                       r"|rate limit (?:reached|exceeded)|Credit balance is too low|API Error:? \(?429\b",
                       re.IGNORECASE),),
)

CLAUDE = ClaudeProfile(
    name="claude",
    default_command="claude",
    stagger=2.0,
    resume_args="--continue",
    screen=CLAUDE_SCREEN,
    cli_processes=frozenset({"claude", "node"}),
    hooks=True,
)
