"""Claude Code's workspace trust is recorded for new worktrees of a trusted repository (SPEC §7)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from supervisor.agents import profile_for
from supervisor.agents.claude import CLAUDE, record_trust


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


def test_concurrent_trust_records_lose_nothing(tmp_path: Path) -> None:
    config = tmp_path / ".claude.json"
    config.write_text(json.dumps({"projects": {"/repo": {"hasTrustDialogAccepted": True}}}))
    threads = [threading.Thread(target=record_trust, args=(config, Path("/repo"), Path(f"/wt/{i}")))
               for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    projects = json.loads(config.read_text())["projects"]
    assert all(projects[f"/wt/{i}"]["hasTrustDialogAccepted"] for i in range(20))


def test_profile_from_command_and_readiness() -> None:
    assert profile_for("claude --model opus") == "claude"
    assert profile_for("/usr/local/bin/codex") == "codex"
    assert profile_for("python -m my_agent") == "generic"
    assert CLAUDE.ready("Welcome\n> \n? for shortcuts") is True
    assert CLAUDE.ready("Do you trust the files in this folder?\n❯ 1. Yes, proceed\nEnter to confirm") is False
    assert CLAUDE.command_line("claude", resume=True) == "claude --continue"
