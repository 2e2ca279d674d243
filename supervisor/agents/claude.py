"""Claude Code: each agent runs with a config folder of its own (CLAUDE_CONFIG_DIR), seeded from the user's,
in which its worktree is trusted and supervisor's hooks are set; restarted with `--resume=<session id>` (the id
its SessionStart hook tells), or afresh with its task when none was told or its conversation holds no prompt."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from supervisor.agents.base import Profile
from supervisor.agents.reader import LOCAL, Reader
from supervisor.agents.screens import ESC_TO_CANCEL, ScreenRules, Verdict, marker
from supervisor.agents.session_ids import claude_conversation_held, valid
from supervisor.agents.state_folder import StateFolder
from supervisor.files import read_regular

# The hook events supervisor listens to (Claude Code's documented hook names).
HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
               "PermissionRequest", "PermissionDenied", "Notification", "Stop", "StopFailure", "SubagentStop",
               "PreCompact", "SessionEnd")
_TOOL_EVENTS = {"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest", "PermissionDenied"}
# What of the user's ~/.claude an agent sees too (copies, refreshed at each launch): their instructions and
# the commands, agents, skills and output styles they wrote. Sessions, history and todos stay the user's.
_SHARED_FILES = ("CLAUDE.md",)
_SHARED_FOLDERS = ("commands", "agents", "skills", "output-styles")
OWN_JSON_LIMIT = 64 << 20  # bytes: an agent's `.claude.json` grows with its projects' history


class ClaudeProfile(Profile):
    def resume_line(self, command: str, session: str | None, state: Path,
                    reader: Reader = LOCAL) -> str | None:
        """`--resume=<id>`, the id its SessionStart hook reported (the resumed CLI keeps it), once its
        conversation holds a prompt (before that, `--resume` finds no conversation and exits 1)."""
        session = valid(session)
        if session is None or not claude_conversation_held(state, session, reader):
            return None
        return f"{command} --resume={session}"

    def prepare_worktree(self, repo_root: Path, worktree: Path, home: Path, hook_command: str) -> None:
        """An earlier supervisor put its hooks in the worktree's `.claude/settings.local.json`: they go (the
        agent's own config folder holds them now; both would report every event twice)."""
        remove_hooks(worktree / ".claude" / "settings.local.json", hook_command)

    def prepare_state(self, state: Path, home: Path, repo_root: Path, worktree: Path,
                      hook_command: str) -> dict[str, str]:
        """Claude Code reads `.claude.json`, `settings.json` and `.credentials.json` from CLAUDE_CONFIG_DIR
        (checked with 2.1.332), and nothing from ~/.claude.json or ~/.claude/ then."""
        user = user_config_dir(home)
        own = StateFolder(state)  # the agent's: written through no link it left there
        own_json = state / ".claude.json"
        if own.read(own_json.name, OWN_JSON_LIMIT) is None:  # the agent's copy, kept across restarts (the CLI
            # records its own state in it); anything but a plain file there (a link, a FIFO) is replaced
            own.write(own_json.name, _read_text(user_json(home)) or "{}", mode=0o600)
        record_trust(own_json, repo_root, worktree, trusted_by=user_json(home))
        settings = _read_json(user / "settings.json")
        settings["hooks"] = merged_hooks(settings.get("hooks"), hook_command)
        own.write("settings.json", json.dumps(settings, indent=2), mode=0o600)
        if (user / ".credentials.json").is_file():
            own.copy_in(user / ".credentials.json", ".credentials.json", mode=0o400)
        for name in _SHARED_FILES:
            if (user / name).is_file():
                own.copy_in(user / name, name, mode=0o600)
        for name in _SHARED_FOLDERS:
            if (user / name).is_dir():
                own.copy_in(user / name, name, mode=0o600)
        return {"CLAUDE_CONFIG_DIR": str(state)}


def user_config_dir(home: Path) -> Path:
    """The user's own Claude Code config folder: their CLAUDE_CONFIG_DIR, else ~/.claude."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured).expanduser() if configured else home / ".claude"


def user_json(home: Path) -> Path:
    """The user's own `.claude.json` (in their CLAUDE_CONFIG_DIR when they set one, else ~/.claude.json)."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured).expanduser() / ".claude.json" if configured else home / ".claude.json"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_json(path: Path, *, planted: bool = False) -> dict[str, Any]:
    """A JSON object from `path`; `planted`: a file an agent may have written (no link followed, no FIFO)."""
    try:
        text = read_regular(path, OWN_JSON_LIMIT) if planted else path.read_bytes()
        data = json.loads(text or "{}")
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


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


def merged_hooks(hooks: Any, hook_command: str) -> dict[str, Any]:
    """The user's own hooks (kept as they are) and supervisor's."""
    merged: dict[str, Any] = dict(hooks) if isinstance(hooks, dict) else {}
    for event, entries in hook_settings(hook_command).items():
        kept = [e for e in merged.get(event, []) if not _is_ours(e, hook_command)] \
            if isinstance(merged.get(event), list) else []
        merged[event] = kept + entries
    return merged


def remove_hooks(settings: Path, hook_command: str) -> None:
    """Take supervisor's hooks out of a Claude settings file, keeping whatever else it holds."""
    data = _read_json(settings, planted=True)
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        return
    changed = False
    for event, entries in list(hooks.items()):
        if not isinstance(entries, list):
            continue
        kept = [e for e in entries if not _is_ours(e, hook_command)]
        if len(kept) != len(entries):
            changed = True
            if kept:
                hooks[event] = kept
            else:
                del hooks[event]
    if not changed:
        return
    if not hooks:
        del data["hooks"]
    if data:
        StateFolder(settings.parent).write(settings.name, json.dumps(data, indent=2), mode=0o644)
    else:
        settings.unlink(missing_ok=True)


def _is_ours(entry: Any, hook_command: str) -> bool:
    return isinstance(entry, dict) and any(
        isinstance(h, dict) and h.get("command") == hook_command for h in entry.get("hooks", []))


def record_trust(config: Path, repo_root: Path, worktree: Path, *, trusted_by: Path | None = None) -> bool:
    """Trust `worktree` in an agent's own Claude Code config (`config`) when the user trusts `repo_root` in
    theirs (`trusted_by`, default `config` itself) (SPEC §7). Every other key stays as it was; the user's file
    is only read. Returns whether the worktree is trusted in `config`."""
    user = _read_json(trusted_by or config)
    projects = user.get("projects")
    parent = projects.get(str(repo_root)) if isinstance(projects, dict) else None
    if not isinstance(parent, dict) or not parent.get("hasTrustDialogAccepted"):
        return False
    text = read_regular(config, OWN_JSON_LIMIT)  # the agent's: no link followed, no FIFO opened
    try:
        data: dict[str, Any] = json.loads(text or b"{}")
    except (ValueError, RecursionError):
        return False
    if text is None or not isinstance(data, dict):
        return False  # never rewrite a file we cannot read
    own = data.setdefault("projects", {})
    if not isinstance(own, dict):
        return False
    entry = own.setdefault(str(worktree), {})
    if not isinstance(entry, dict):
        return False
    if not entry.get("hasTrustDialogAccepted"):
        entry["hasTrustDialogAccepted"] = True
        StateFolder(config.parent).write(config.name, json.dumps(data, indent=2), mode=0o600, durable=True)
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
    # 2.1.332's own words (tests/fixtures/claude/screens/*limit*): a subscription's limit, `You've hit your 5-hour
    # limit · resets 6:08pm (Europe/Paris)` and its footer; a limit of the API servers or of an API key's account.
    limits=(re.compile(r"\b(?:usage|hour|weekly|daily|session|Opus|Sonnet) limit reached|rate_limit_error"
                       r"|You['’]ve hit your (?:[\w-]+ )?limit\b|temporarily limiting requests|Request rejected \(429\)"
                       r"|rate limit (?:reached|exceeded)|Credit balance is too low|API Error:? \(?429\b",
                       re.IGNORECASE),),
    # Its input box: `❯` and what is typed, between two rules (a prompt submitted above shows no rule above it).
    input_line=re.compile(r"^─{10,}\n❯(?P<typed>(?:.*\n)*?)─{10,}$", re.MULTILINE),
    placeholder=re.compile(r"Press up to edit queued messages"),
)

CLAUDE = ClaudeProfile(
    name="claude",
    default_command="claude",
    stagger=2.0,
    screen=CLAUDE_SCREEN,
    cli_processes=frozenset({"claude", "node"}),
    state_vars=frozenset({"CLAUDE_CONFIG_DIR"}),
    hooks=True,
    # Its footer while it waits out a 5-hour limit (tests/fixtures/claude/screens/usage_limit_*).
    resumes_after_limit=re.compile(r"Continuing automatically at|Continuing shortly"),
)
