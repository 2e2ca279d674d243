"""An agent's CLI folder for a host, made here by the profile's own code (`Profile.prepare_state`, through
supervisor/engine/cli_folder.py) in a local staging folder, then written file by file on the host with the
link's `write` op, its paths made the host's: the staging folder's path becomes the agent's folder there
(`layout.state(name)`), and the hook command this installation writes becomes the host client's."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from supervisor.agents.base import hook_command
from supervisor.hosts.link import Link
from supervisor.hostsconfig import CREDENTIALS_COPY, CREDENTIALS_HOST

CALL_TIMEOUT = 30.0
CLAUDE_JSON = ".claude.json"
SETTINGS_JSON = "settings.json"
LOGIN_KEYS = ("oauthAccount", "primaryApiKey", "customApiKeyResponses")  # of .claude.json: the user's login
LOGIN_SETTINGS = ("apiKeyHelper", "env")  # of settings.json: a key's helper, variables that may hold keys
# Files of a CLI folder that hold the user's login (claude, codex, gemini): copied only with `credentials: copy`.
CREDENTIAL_FILES = frozenset({".credentials.json", "auth.json", "oauth_creds.json", "google_accounts.json",
                              "gemini-credentials.json", ".env"})
LIMIT = 8 << 20  # bytes: a file bigger than this is not the CLI's settings, and is not copied


def staging_folder(state_dir: Path, host: str, file_name: str) -> Path:
    """Where an agent's CLI folder for `host` is staged here (kept between launches, the engine's own)."""
    return state_dir / "hosts" / host / "agents" / file_name


def host_text(text: str, staged: Path, state: str, hook: str) -> str:
    """A staged file's text as the host reads it: its staging path → the host's, our hook command → the host's."""
    text = text.replace(str(staged), state)
    ours = hook_command()
    text = text.replace(json.dumps(ours)[1:-1], json.dumps(hook)[1:-1])  # inside JSON strings
    return text.replace(ours, hook)


def host_env(env: Mapping[str, str], staged: Path, state: str) -> dict[str, str]:
    """The launch's environment with every path into the staging folder pointing at the host's folder."""
    return {key: value.replace(str(staged), state) for key, value in env.items()}


def upload(link: Link, staged: Path, state: str, hook: str, *, credentials: str = CREDENTIALS_HOST,
           worktree: str = "") -> int:
    """Write each regular file of `staged` at the same place under `state` on the host (its mode kept);
    links and other odd files are left out. How many were written.

    With `credentials: host` (the default) no credential file goes (`CREDENTIAL_FILES`): the CLI logs in on the
    host. Claude Code's own `.claude.json` is written only while the host has none (after that it is the CLI's,
    which keeps its conversations' state there), and without the user's MCP servers and other projects: only
    the agent's `worktree` entry (its trust) is kept."""
    written = 0
    for folder, folders, files in os.walk(staged, followlinks=False):
        folders[:] = [name for name in folders if not (Path(folder) / name).is_symlink()]
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or path.stat().st_size > LIMIT:
                continue
            if name in CREDENTIAL_FILES and credentials != CREDENTIALS_COPY:
                continue
            text = host_text(path.read_bytes().decode("utf-8", "surrogateescape"), staged, state, hook)
            target = f"{state}/{path.relative_to(staged).as_posix()}"
            if name == CLAUDE_JSON:
                if _exists(link, target):
                    continue
                text = stripped_claude_json(text, worktree, logins=credentials == CREDENTIALS_COPY)
            elif name == SETTINGS_JSON and credentials != CREDENTIALS_COPY:
                text = _without(text, LOGIN_SETTINGS)
            link.call("write", path=target, text=text, mode=path.stat().st_mode & 0o777, timeout=CALL_TIMEOUT)
            written += 1
    return written


def stripped_claude_json(text: str, worktree: str, *, logins: bool) -> str:
    """The user's `.claude.json` as copied to a host: without `mcpServers` (their env holds tokens), with only
    the agent's own worktree among `projects` (its trust, and none of its MCP servers either), and without the
    user's account and keys unless `logins` are copied."""
    try:
        data = json.loads(text)
    except ValueError:
        return "{}"
    if not isinstance(data, dict):
        return "{}"
    for key in ("mcpServers", *(() if logins else LOGIN_KEYS)):
        data.pop(key, None)
    projects = data.get("projects")
    kept = projects.get(worktree) if isinstance(projects, dict) else None
    data["projects"] = {}
    if isinstance(kept, dict):
        data["projects"][worktree] = {key: value for key, value in kept.items() if "mcp" not in key.lower()}
    return json.dumps(data, indent=2)


def _without(text: str, keys: tuple[str, ...]) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict) or not any(key in data for key in keys):
        return text
    return json.dumps({key: value for key, value in data.items() if key not in keys}, indent=2)


def _exists(link: Link, path: str) -> bool:
    return bool(link.call("run", argv=["test", "-e", path], timeout=CALL_TIMEOUT)["rc"] == 0)
