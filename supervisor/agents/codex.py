"""OpenAI Codex CLI: a CODEX_HOME of each agent's own, seeded from the user's, read from its screen.

Codex keeps its config, sessions, rules and a tool daemon (`codex app-server`, one per CODEX_HOME, started by
the first TUI and outliving it) in CODEX_HOME. Each agent gets its own, so no agent's tools run in a daemon
another agent started, no rule one agent's approval writes reaches another, and the agent's conversations (its
rollout files, whose names carry their ids: see `session_files`) are its alone; `codex resume <id>` resumes one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from supervisor.agents import toml_out
from supervisor.agents.base import Profile
from supervisor.agents.reader import LOCAL, Reader
from supervisor.agents.screens import CLI_LIMITS, ESC_TO_CANCEL, ScreenRules, Verdict, marker
from supervisor.agents.session_files import codex_session
from supervisor.agents.session_ids import valid
from supervisor.agents.state_folder import StateFolder

STATE_ENV = "CODEX_HOME"
CONFIG = "config.toml"
# The tables Codex writes into its own config as the agent runs (answered notices, trusted folders): kept
# from the agent's copy when it is seeded again from the user's at the next launch.
_OWN_TABLES = ("notice", "tui", "projects")


class CodexProfile(Profile):
    def resume_line(self, command: str, session: str | None, state: Path,
                    reader: Reader = LOCAL) -> str | None:
        """`codex resume -- <id>` (0.171: "Session id (UUID) or session name"; after `--`, never an option)."""
        session = valid(session)
        return f"{command} resume -- {session}" if session else None

    def find_session(self, state: Path, worktree: Path, since: float, reader: Reader = LOCAL) -> str | None:
        return codex_session(state, worktree, since, reader)

    def prepare_state(self, state: Path, home: Path, repo_root: Path, worktree: Path,
                      hook_command: str) -> dict[str, str]:
        seed_state(state, home, repo_root, worktree, program=shutil.which("codex"))
        return {STATE_ENV: str(state)}


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None


def _load_own(state: Path) -> dict[str, Any]:
    """The agent's own config.toml (its to write: read through no link, never a FIFO); empty when it is not one."""
    text = StateFolder(state).read(CONFIG)
    try:
        return tomllib.loads(text.decode("utf-8")) if text is not None else {}
    except (ValueError, RecursionError):
        return {}


def seed_state(state: Path, home: Path, repo_root: Path, worktree: Path, *, program: str | None) -> Path:
    """Write the agent's config.toml: the user's own (providers, model, policies), what Codex recorded in the
    agent's copy before, trust for the worktree when the user trusts the repository (SPEC §7), and the model
    nudge settled; copy the user's credentials read-only. Returns the config file."""
    user_home = home / ".codex"
    config = state / CONFIG
    data = _load(user_home / CONFIG) or {}  # an unreadable user config: Codex's defaults, never guessed
    own = _load_own(state)
    for table in _OWN_TABLES:
        if isinstance(own.get(table), dict):
            data[table] = _merged(data.get(table), own[table])
    projects = data.get("projects") if isinstance(data.get("projects"), dict) else {}
    parent = projects.get(str(repo_root)) if isinstance(projects, dict) else None
    if isinstance(parent, dict) and parent.get("trust_level") == "trusted":
        data.setdefault("projects", {}).setdefault(str(worktree), {})["trust_level"] = "trusted"
    StateFolder(state).write(CONFIG, toml_out.dumps(data), mode=0o600)
    if program is not None:
        settle_notices(config, data, _catalog(program, toml_out.dumps(data), user_home / "auth.json"))
    if (user_home / "auth.json").is_file():
        StateFolder(state).copy_in(user_home / "auth.json", "auth.json", mode=0o400)
    return config


def _merged(base: Any, own: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in own.items():
        merged[key] = _merged(merged.get(key), value) if isinstance(value, dict) else value
    return merged


def _catalog(program: str, config: str, auth: Path) -> list[dict[str, Any]]:
    """The model catalog this Codex ships (`codex debug models`), which names each model's upgrade.

    Codex runs here on the engine's side, outside any sandbox: in a CODEX_HOME of its own holding only the
    config just written and the user's credentials, never the agent's folder, where whatever the agent left
    (its rules, a `.env`, an app-server's socket) would run or be read with the engine's reach."""
    with tempfile.TemporaryDirectory(prefix="sv-codex-") as scratch:
        try:
            (Path(scratch) / CONFIG).write_text(config)
            if auth.is_file():
                shutil.copyfile(auth, Path(scratch) / "auth.json")
            done = subprocess.run([program, "debug", "models"], capture_output=True, text=True, timeout=15,
                                  stdin=subprocess.DEVNULL, check=False, cwd=scratch,
                                  env={**os.environ, STATE_ENV: scratch})
            models = json.loads(done.stdout).get("models") if done.returncode == 0 else None
        except (OSError, ValueError, AttributeError, subprocess.SubprocessError):
            return []
    return [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []


def settle_notices(config: Path, data: dict[str, Any], catalog: list[dict[str, Any]]) -> bool:
    """Record the model nudge ("Meet …" · `1. Try new model` / `2. Use existing model`) as seen for the
    agent's model, as Codex itself does when a human answers it (`[notice.model_migrations] "<model>" =
    "<upgrade>"`), and the new-model tips as shown. Returns whether anything changed."""
    model = data.get("model")
    changed = False
    if isinstance(model, str):
        upgrade = next((m.get("upgrade") for m in catalog if m.get("slug") == model), None)
        target = upgrade.get("model") if isinstance(upgrade, dict) else None
        migrations = data.setdefault("notice", {}).setdefault("model_migrations", {})
        if isinstance(target, str) and migrations.get(model) != target:
            migrations[model] = target
            changed = True
    nux = data.setdefault("tui", {}).setdefault("model_availability_nux", {})
    for entry in catalog:
        slug = entry.get("slug")
        if entry.get("availability_nux") and isinstance(slug, str) and slug not in nux:
            nux[slug] = 1
            changed = True
    if changed:
        StateFolder(config.parent).write(config.name, toml_out.dumps(data), mode=0o600)
    return changed



# Rules from screens recorded from Codex 0.169.0 and 0.171.0 (tests/fixtures/codex). Codex draws its input
# box in every state, so the box is a weak idle marker: the working line above it, or a dialog, decides.
CODEX = CodexProfile(
    name="codex", default_command="codex",
    screen=ScreenRules(
        markers=(
            ESC_TO_CANCEL,
            marker(Verdict.WAITING, "dialog: enter", r"enter continue · esc|enter/esc confirm|Press enter to confirm"),
            marker(Verdict.WAITING, "dialog: options", r"^\s*›\s*1\.\s"),
            marker(Verdict.WORKING, "esc to interrupt", r"esc to interrupt", re.I),
            marker(Verdict.IDLE, "input box", r"\? for shortcuts|Ask Codex to do anything|^\s*\S+ default · ",
                   weak=True),
        ),
        errors=(re.compile(r"^\s*(■|error|Error)[: ]"),), limits=CLI_LIMITS,
        # Codex draws nothing while text streams: idle once `Worked for` (or an interruption) ends the turn.
        prompt_line=re.compile(r"^› "), turn_end=re.compile(r"^\s*Worked for |^■ "),
        # Its composer: `›` and what is typed, right above the model's status row; empty, it shows a suggestion.
        input_line=re.compile(r"^›(?!\s*\d+\.\s)(?P<typed>.*\n(?:(?!›).*\n)*?)\s*\S+ \S+ · ", re.MULTILINE),
        placeholder=re.compile(r"Ask Codex to do anything|Explain this codebase|Summarize recent commits"
                               r"|Implement \{feature\}|Find and fix a bug in @filename|Write tests for @filename"
                               r"|Improve documentation in @filename|Run /review on my current changes"
                               r"|Use /skills to list available skills"),
    ),
    cli_processes=frozenset({"codex", "node"}),
    state_env=STATE_ENV,
    state_vars=frozenset({STATE_ENV}),
    # 0.171 draws its composer ~1 s after launch and echoes a paste within 0.2 s of it, but a paste into a
    # Codex still starting (or behind a notice) shows only seconds later, and it was pasted twice then.
    ready_settle=1.0, echo_timeout=10.0, repaste=False,
)
