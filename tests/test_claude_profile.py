"""Claude Code's per-agent config folder: seeded from the user's, the worktree trusted when the user trusts the
repository (SPEC §7), supervisor's hooks in it; the user's own files never written."""

from __future__ import annotations

import json
from pathlib import Path

from supervisor.agents import profile_for
from supervisor.agents.base import hook_command
from supervisor.agents.claude import CLAUDE, hook_settings, record_trust


def test_trust_is_copied_from_the_repository_and_nothing_else_changes(tmp_path: Path) -> None:
    config = tmp_path / ".claude.json"
    original = {"numStartups": 3, "projects": {"/repo": {"hasTrustDialogAccepted": True, "allowedTools": []}}}
    config.write_text(json.dumps(original))
    config.chmod(0o600)
    assert record_trust(config, Path("/repo"), Path("/repo-worktrees/auth"))
    data = json.loads(config.read_text())
    assert data["numStartups"] == 3
    assert data["projects"]["/repo"] == original["projects"]["/repo"]
    assert data["projects"]["/repo-worktrees/auth"]["hasTrustDialogAccepted"] is True
    assert config.stat().st_mode & 0o777 == 0o600


def test_untrusted_or_unreadable_config_is_left_alone(tmp_path: Path) -> None:
    config = tmp_path / ".claude.json"
    config.write_text(json.dumps({"projects": {"/repo": {"hasTrustDialogAccepted": False}}}))
    assert not record_trust(config, Path("/repo"), Path("/wt"))
    config.write_text("{not json")
    assert not record_trust(config, Path("/repo"), Path("/wt"))
    assert config.read_text() == "{not json"
    assert not record_trust(tmp_path / "absent.json", Path("/repo"), Path("/wt"))


def test_each_agent_gets_its_own_claude_config_seeded_from_the_users(tmp_path: Path) -> None:
    home, state = tmp_path / "home", tmp_path / "state" / "auth"
    (home / ".claude" / "commands").mkdir(parents=True)
    state.mkdir(parents=True)
    user_json = {"hasCompletedOnboarding": True, "customApiKeyResponses": {"approved": ["abc"], "rejected": []},
                 "projects": {"/repo": {"hasTrustDialogAccepted": True, "allowedTools": []}}}
    (home / ".claude.json").write_text(json.dumps(user_json))
    user_hook = {"hooks": [{"type": "command", "command": "my-own-hook"}]}
    (home / ".claude" / "settings.json").write_text(json.dumps({"model": "opus", "hooks": {"Stop": [user_hook]}}))
    (home / ".claude" / ".credentials.json").write_text('{"claudeAiOauth": {"accessToken": "t"}}')
    (home / ".claude" / "CLAUDE.md").write_text("be brief\n")
    (home / ".claude" / "commands" / "ship.md").write_text("ship it\n")
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}

    env = CLAUDE.prepare_state(state, home, Path("/repo"), Path("/repo-worktrees/auth"), hook_command())

    assert env == {"CLAUDE_CONFIG_DIR": str(state)}
    assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file()} == before  # the user's files: untouched
    own = json.loads((state / ".claude.json").read_text())
    assert own["customApiKeyResponses"] == user_json["customApiKeyResponses"]
    assert own["projects"]["/repo-worktrees/auth"]["hasTrustDialogAccepted"] is True
    settings = json.loads((state / "settings.json").read_text())
    assert settings["model"] == "opus"
    assert settings["hooks"]["Stop"][0] == user_hook and len(settings["hooks"]["Stop"]) == 2
    assert {"PermissionRequest", "UserPromptSubmit", "SessionEnd"} <= set(settings["hooks"])
    credentials = state / ".credentials.json"
    assert credentials.read_text() == '{"claudeAiOauth": {"accessToken": "t"}}'
    assert credentials.stat().st_mode & 0o777 == 0o400
    assert (state / "CLAUDE.md").read_text() == "be brief\n" and (state / "commands" / "ship.md").exists()

    # A restart keeps what the CLI recorded in its own copy, and takes the user's refreshed credentials.
    own["numStartups"] = 7
    (state / ".claude.json").write_text(json.dumps(own))
    (home / ".claude" / ".credentials.json").write_text('{"claudeAiOauth": {"accessToken": "t2"}}')
    CLAUDE.prepare_state(state, home, Path("/repo"), Path("/repo-worktrees/auth"), hook_command())
    assert json.loads((state / ".claude.json").read_text())["numStartups"] == 7
    assert "t2" in credentials.read_text() and credentials.stat().st_mode & 0o777 == 0o400


def test_an_untrusted_repository_leaves_the_worktree_untrusted(tmp_path: Path) -> None:
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    state.mkdir()
    CLAUDE.prepare_state(state, home, Path("/repo"), Path("/wt"), hook_command())  # no ~/.claude.json at all
    assert json.loads((state / ".claude.json").read_text()) == {}
    assert "hooks" in json.loads((state / "settings.json").read_text())


def test_the_hooks_run_the_command_of_the_machine_the_agent_runs_on(tmp_path: Path) -> None:
    """An agent on a host: its hooks run that host's client, as the engine names it (never this machine's)."""
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    state.mkdir()
    there = "python3 -I -S /home/u/.local/share/supervisor/host-0123.pyz client hook"
    CLAUDE.prepare_state(state, home, Path("/repo"), Path("/wt"), there)
    hooks = json.loads((state / "settings.json").read_text())["hooks"]
    commands = {h["command"] for entries in hooks.values() for entry in entries for h in entry["hooks"]}
    assert commands == {there}


def test_hooks_an_earlier_version_put_in_the_worktree_go(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    settings = worktree / ".claude" / "settings.local.json"
    settings.parent.mkdir(parents=True)
    ours = hook_settings(hook_command())
    settings.write_text(json.dumps({"permissions": {"allow": ["Bash(ls)"]}, "hooks": ours}))
    CLAUDE.prepare_worktree(tmp_path, worktree, tmp_path, hook_command())
    assert json.loads(settings.read_text()) == {"permissions": {"allow": ["Bash(ls)"]}}
    settings.write_text(json.dumps({"hooks": ours}))
    CLAUDE.prepare_worktree(tmp_path, worktree, tmp_path, hook_command())
    assert not settings.exists()


def test_profile_from_command_and_readiness() -> None:
    assert profile_for("claude --model opus") == "claude"
    assert profile_for("/usr/local/bin/codex") == "codex"
    assert profile_for("python -m my_agent") == "generic"
    assert CLAUDE.ready("Welcome\n> \n? for shortcuts") is True
    assert CLAUDE.ready("Do you trust the files in this folder?\n❯ 1. Yes, proceed\nEnter to confirm") is False
    assert CLAUDE.resume_line("claude", None, Path("/nowhere")) is None  # never `--continue`: afresh, with its task
    assert CLAUDE.resume_line("claude", "ab-1", Path("/nowhere")) is None  # not a UUID (tests/test_session_ids.py)
