"""Gemini CLI: its own home per agent (GEMINI_CLI_HOME), the worktree trusted when the user trusts the repository,
resumed with `--resume <session id>` (0.61 takes "latest", an index or a session's UUID), the id read from its chat
files (see `session_files`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from supervisor.agents.base import Profile
from supervisor.agents.reader import LOCAL, Reader
from supervisor.agents.screens import CLI_LIMITS, ScreenRules, Verdict, marker
from supervisor.agents.session_files import gemini_session
from supervisor.agents.session_ids import valid
from supervisor.agents.state_folder import StateFolder

# Files of the user's ~/.gemini that hold a credential: copied read-only into the agent's home.
CREDENTIALS = ("oauth_creds.json", "google_accounts.json", "gemini-credentials.json", ".env")
TRUSTED = ("TRUST_FOLDER", "TRUST_PARENT")
FOLDER = ".gemini"  # in GEMINI_CLI_HOME


class GeminiProfile(Profile):
    def resume_line(self, command: str, session: str | None, state: Path,
                    reader: Reader = LOCAL) -> str | None:
        """`--resume=<id>` (0.61's yargs takes the value after `=` whatever it looks like: never an option)."""
        session = valid(session)
        return f"{command} --resume={session}" if session else None

    def find_session(self, state: Path, worktree: Path, since: float, reader: Reader = LOCAL) -> str | None:
        return gemini_session(state, since, reader)

    def prepare_state(self, state: Path, home: Path, repo_root: Path, worktree: Path,
                      hook_command: str) -> dict[str, str]:
        """Gemini CLI 0.61 reads `$GEMINI_CLI_HOME/.gemini` instead of `~/.gemini` (settings, credentials, trusted
        folders, sessions, history): the agent's home is `state`, seeded from the user's."""
        user = Path(os.environ.get("GEMINI_CLI_HOME") or home) / ".gemini"
        own = StateFolder(state)  # the agent's: written through no link it left there
        settings = _json(user / "settings.json")
        if not _get(settings, "security", "auth", "selectedType") and os.environ.get("GEMINI_API_KEY"):
            settings.setdefault("security", {}).setdefault("auth", {})["selectedType"] = "gemini-api-key"
        own.write(f"{FOLDER}/settings.json", _text(settings))
        for name in CREDENTIALS:
            if (user / name).is_file():
                own.copy_in(user / name, f"{FOLDER}/{name}", mode=0o400)
        user_trust = Path(os.environ.get("GEMINI_CLI_TRUSTED_FOLDERS_PATH") or user / "trustedFolders.json")
        folders = {path: level for path, level in _json(user_trust).items() if isinstance(level, str)}
        if trusts(folders, repo_root):
            folders[str(worktree)] = "TRUST_FOLDER"
        own.write(f"{FOLDER}/trustedFolders.json", _text(folders))
        return {"GEMINI_CLI_HOME": str(state),
                "GEMINI_CLI_TRUSTED_FOLDERS_PATH": str(state / FOLDER / "trustedFolders.json")}


def trusts(folders: dict[str, str], location: Path) -> bool:
    """Whether Gemini's trusted folders trust `location`: the longest rule that covers it decides (a
    TRUST_PARENT rule covers its parent folder), as Gemini CLI reads them."""
    place = location.resolve()
    best, decision = -1, False
    for rule, level in folders.items():
        covered = Path(rule).parent if level == "TRUST_PARENT" else Path(rule)
        try:
            inside = place.is_relative_to(covered.resolve())
        except OSError:
            continue
        if inside and len(rule) > best:
            best, decision = len(rule), level in TRUSTED
    return decision


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _get(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


# Rules from screens recorded from Gemini CLI 0.61.0 (tests/fixtures/gemini). It draws its input box in every
# state, so the box is a weak idle marker: the working line above it, or a dialog, decides when there is one.
GEMINI = GeminiProfile(
    name="gemini", default_command="gemini",
    state_vars=frozenset({"GEMINI_CLI_HOME", "GEMINI_CLI_TRUSTED_FOLDERS_PATH"}),
    # Its input box shows 0.3 to 0.5 s before its workspace-trust dialog, and for a second or two after it shows
    # an Enter sent 0.15 s after a paste may not submit it (measured in 160x48 panes, 0.61.0).
    ready_settle=3.0, paste_settle=0.5,
    screen=ScreenRules(
        markers=(  # no `esc to cancel` dialog marker: Gemini's working line reads `(esc to cancel, 2s)`
            marker(Verdict.WAITING, "dialog: options", r"^\s*│?\s*● 1\.\s"),
            marker(Verdict.WAITING, "approval", r"Allow execution|Apply this change\?|Do you want to proceed"),
            marker(Verdict.WORKING, "esc to cancel", r"\(esc to cancel", re.I),
            marker(Verdict.IDLE, "input box", r"Type your message|^\s*workspace \(/directory\)", weak=True),
        ),
        errors=(re.compile(r"✕|Error:"),), limits=CLI_LIMITS, box_ends_dialogs=True,
        # Its input line, `>` above the workspace row; empty, it shows its placeholder.
        input_line=re.compile(r"^ > (?P<typed>.*)\n\s*workspace \(", re.MULTILINE),
        placeholder=re.compile(r"Type your message or @path/to/file"),
    ),
    cli_processes=frozenset({"gemini", "node"}),
)
