"""Claude Code, the real CLI at its pinned version, offline against tests/fixtures/claude/messages_api.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.conftest import FIXTURES, Run, StateTrail

API_KEY = "sk-ant-test-conformance-0123456789abcdefghijklmnop"
SLOW_SECONDS = 15.0  # messages_api.py's "slow": a token every 0.5 s, 30 of them


def claude_home(run: Run, *, trusted: bool = True) -> None:
    """The user's own Claude Code config, as a configured user has it: onboarding done, the API key approved,
    the repository trusted. With it (and the stand-in as ANTHROPIC_BASE_URL) the CLI shows no first-run screen."""
    config = {
        "hasCompletedOnboarding": True,
        "lastOnboardingVersion": run.version,
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(run.box.root): {"hasTrustDialogAccepted": trusted, "allowedTools": []}},
    }
    (run.box.home / ".claude.json").write_text(json.dumps(config, indent=2))


@pytest.fixture
def claude(real_cli: Callable[..., Run]) -> Run:
    run = real_cli("claude", FIXTURES / "claude" / "messages_api.py", env={
        "ANTHROPIC_API_KEY": API_KEY, "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"})
    run.box.env["ANTHROPIC_BASE_URL"] = run.api.url
    claude_home(run)
    return run


def test_a_task_streamed_for_seconds_is_working_throughout_then_idle(claude: Run) -> None:
    box = claude.box
    trail = StateTrail(box, "c1")
    box.sv("start", "c1", "--task", "write slowly please")
    box.wait_state("c1", "working", timeout=60)
    claude.record("c1", "conformance_working_streaming")
    box.wait_state("c1", "idle", timeout=60)
    seen = trail.stop()
    claude.record("c1", "conformance_done_turn")
    asked = [r for r in claude.api.requests() if r.get("answer") == "slow"]
    assert len(asked) == 1, claude.api.requests()
    first_idle = next(t for t, state in trail.seen if state == "idle")
    assert first_idle >= asked[0]["t"] + SLOW_SECONDS - 1, (seen, asked[0]["t"], first_idle)
    assert seen[:1] == ["starting"] and "working" in seen, seen
    assert seen[seen.index("working"):] == ["working", "idle"], seen  # no false idle, no flap
    assert claude.hooks("c1").count("UserPromptSubmit") == 1
    assert Path(box.ls()["c1"]["worktree"]).is_dir()
