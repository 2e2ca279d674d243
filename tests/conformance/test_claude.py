"""Claude Code, the real CLI at its pinned version, offline against tests/fixtures/claude/messages_api.py."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.conftest import FIXTURES, LIMITS, ZONE, Run, StateTrail, limited_by_the_stand_in
from tests.conftest import wait_until

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
    run.user_config = config


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
    # The hooks came from the agent's own config folder; the user's own config was only read.
    assert json.loads((box.home / ".claude.json").read_text()) == claude.user_config
    assert (box.paths.agent_state("c1") / "settings.json").exists()
    assert not (Path(box.ls()["c1"]["worktree"]) / ".claude").exists()


def test_a_prompt_sent_mid_turn_arrives_once_and_it_stays_working_until_the_last_turn_ends(claude: Run) -> None:
    """Claude Code 2.1.332 fires UserPromptSubmit when the prompt is queued and Stop for the running turn."""
    box = claude.box
    box.sv("start", "c1", "--task", "write slowly please")
    wait_until(lambda: any(r.get("answer") == "slow" for r in claude.api.requests()), timeout=60,
               message="the slow answer under way")
    box.wait_state("c1", "working")
    trail = StateTrail(box, "c1")
    box.sv("send", "c1", "now slowly again")
    claude.record("c1", "conformance_queued_prompt")
    box.wait_state("c1", "idle", timeout=90)
    slow = [r for r in claude.api.requests() if r.get("answer") == "slow"]
    assert [r["user"] for r in slow] == ["write slowly please", "now slowly again"], claude.api.requests()
    # Quiet for a while after the turn: the footer's hints go ~5 s after it (and, with focus-events off, a
    # notice came and went ~8 s after it): no flap, no second `done`.
    done_at = time.time()
    wait_until(lambda: time.time() - done_at > 12, timeout=20, message="12 s of idle")
    seen = trail.stop()
    first_idle = next(t for t, state in trail.seen if state == "idle")
    assert first_idle >= slow[1]["t"] + SLOW_SECONDS - 1, (seen, slow[1]["t"], first_idle)
    assert seen == ["working", "idle"], (seen, [(e["kind"], e.get("hook_event_name"), e.get("state"), e.get("rule"))
                                               for e in claude.events("c1")])
    assert [e["trigger"] for e in claude.events("c1", "trigger")].count("done") == 1
    assert claude.hooks("c1").count("UserPromptSubmit") == 2


@pytest.mark.parametrize("allowed", [True, False])
def test_the_api_key_question_waits_for_a_human_and_the_task_follows_the_answer(claude: Run, allowed: bool) -> None:
    """A key the user never approved: Claude Code asks `Do you want to use this API key?` (unnumbered, `No`
    preselected). The agent waits with that question; `approve` moves the selection to `Yes` before Enter;
    the task goes in after. `deny` picks `No`: the CLI then runs without the key (not logged in)."""
    box = claude.box
    config = dict(claude.user_config)
    del config["customApiKeyResponses"]
    (box.home / ".claude.json").write_text(json.dumps(config))
    box.sv("start", "c1", "--task", "hello there")
    waiting = box.wait_state("c1", "waiting", timeout=60)
    assert waiting["waiting_reason"] == "Do you want to use this API key?"
    claude.record("c1", "conformance_api_key_dialog")
    assert not [r for r in claude.api.requests() if r.get("tools")]  # the task waits for the answer
    box.sv("approve" if allowed else "deny", "c1")
    answered = [e for e in claude.events("c1") if e["kind"] in ("approved", "denied")]
    assert answered[-1]["keys"] == ("Up Enter" if allowed else "Enter"), answered
    if allowed:
        wait_until(lambda: any(r.get("tools") for r in claude.api.requests()), timeout=60, message="the task sent")
        wait_until(lambda: "Stop" in claude.hooks("c1") and box.state("c1") == "idle", timeout=60,
                   message="its turn over")
        asked = [r for r in claude.api.requests() if r.get("tools")]
        assert [r["user"] for r in asked] == ["hello there"]
        own = json.loads((box.paths.agent_state("c1") / ".claude.json").read_text())
        assert own["customApiKeyResponses"]["approved"] == [API_KEY[-20:]]
        assert "customApiKeyResponses" not in json.loads((box.home / ".claude.json").read_text())
    else:
        own = box.paths.agent_state("c1") / ".claude.json"
        wait_until(lambda: API_KEY[-20:] in json.loads(own.read_text()).get("customApiKeyResponses", {}).get(
            "rejected", []), timeout=20, message="the key rejected in the agent's own config")
        assert not [r for r in claude.api.requests() if r.get("tools")]


def test_restart_resumes_the_conversation_by_its_session_id(claude: Run) -> None:
    box = claude.box
    box.sv("start", "c1", "--task", "hello there")
    wait_until(lambda: "Stop" in claude.hooks("c1"), timeout=60, message="the first turn over")
    session = wait_until(lambda: [e["session_id"] for e in claude.events("c1", "session")], timeout=20,
                         message="the session id kept")[-1]
    box.sv("restart", "c1")
    wait_until(lambda: claude.hooks("c1").count("SessionStart") == 2, timeout=60, message="the CLI back")
    assert claude.events("c1", "launched")[-1]["command"].endswith(f"--resume={session}")
    resumed = [e for e in claude.events("c1", "hook") if e["hook_event_name"] == "SessionStart"][-1]
    assert resumed["source"] == "resume"
    claude.wait_screen("c1", lambda s: "hello there" in s, message="the earlier conversation on screen")
    box.sv("send", "c1", "hello again")
    wait_until(lambda: claude.hooks("c1").count("Stop") == 2, timeout=60, message="the second turn over")
    last = [r for r in claude.api.requests() if r.get("tools")][-1]
    assert last["user"] == "hello again"


def manual_mode(claude: Run) -> None:
    """Claude Code asking before each command (`--permission-mode default`), as most users run it."""
    command = f"{claude.binary} --permission-mode default"
    claude.box.write_config(f"agent:\n  profile: claude\n  command: {command}\n{LIMITS}")


@pytest.mark.parametrize("allowed", [True, False])
def test_a_permission_waits_with_the_call_and_the_answer_runs_it_once_or_delivers_the_reason(
        claude: Run, allowed: bool) -> None:
    box = claude.box
    manual_mode(claude)
    box.sv("start", "c1", "--task", "run: touch made.txt")
    waiting = box.wait_state("c1", "waiting", timeout=60)
    # The held PermissionRequest names the call; 2.1.332 may draw its dialog first (then its question stands).
    assert waiting["waiting_reason"] in ("approval: Bash(touch made.txt)", "Do you want to proceed?")
    worktree = Path(waiting["worktree"])
    if allowed:
        box.sv("approve", "c1")
    else:
        box.sv("deny", "c1", "--reason", "not in this folder")
    wait_until(lambda: "Stop" in claude.hooks("c1"), timeout=60, message="the turn over")
    box.wait_state("c1", "idle", timeout=30)
    assert (worktree / "made.txt").exists() is allowed
    results = [r for r in claude.api.requests() if r.get("tool_results")]
    assert len(results) == 1, claude.api.requests()  # the call ran (or was refused) once
    if not allowed:
        assert "not in this folder" in results[0]["tool_results"][0]


def test_a_hung_request_becomes_stalled_never_idle(claude: Run) -> None:
    box = claude.box
    trail = StateTrail(box, "c1")
    box.sv("start", "c1", "--task", "hang now")
    box.wait_state("c1", "stalled", timeout=90)
    seen = trail.stop()
    assert "idle" not in seen, seen
    box.sv("stop", "c1")


def test_exit_ends_it_with_code_zero(claude: Run) -> None:
    box = claude.box
    box.sv("start", "c1", "--task", "hello there")
    wait_until(lambda: "Stop" in claude.hooks("c1"), timeout=60, message="the turn over")
    box.sv("send", "c1", "/exit")
    exited = box.wait_state("c1", "exited", timeout=60)
    assert exited["exit_code"] == 0
    assert "SessionEnd" in claude.hooks("c1")


def test_an_untrusted_repository_shows_the_trust_dialog_and_the_task_follows_approve(claude: Run) -> None:
    """A repository the user never trusted: its worktree is not trusted for them either, so Claude Code asks
    (unnumbered, `❯ No, exit` preselected). The agent waits with the question; the task goes in after approve."""
    box = claude.box
    claude_home(claude, trusted=False)
    box.sv("start", "c1", "--task", "hello there")
    waiting = box.wait_state("c1", "waiting", timeout=60)
    assert waiting["waiting_reason"] == "Quick safety check: Is this a project you created or one you trust?"
    claude.record("c1", "conformance_trust_dialog")
    assert not [r for r in claude.api.requests() if r.get("tools")]
    box.sv("approve", "c1")
    assert [e for e in claude.events("c1") if e["kind"] == "approved"][-1]["keys"] == "Down Enter"
    wait_until(lambda: any(r.get("tools") for r in claude.api.requests()), timeout=60, message="the task sent")
    assert [r["user"] for r in claude.api.requests() if r.get("tools")] == ["hello there"]


def test_a_subscriptions_usage_limit_is_limited_until_its_reset(claude: Run) -> None:
    """A claude.ai subscriber (OAuth credentials, no API key) hits the 5-hour limit: the stand-in answers 429 with
    the subscription's limit headers, and Claude Code 2.1.332 says `You've hit your 5-hour limit · resets 6:08pm
    (Europe/Paris)` (and offers to continue by itself), ending the turn with StopFailure `rate_limit`."""
    box = claude.box
    del box.env["ANTHROPIC_API_KEY"]
    box.env["TZ"] = ZONE
    credentials = box.home / ".claude" / ".credentials.json"
    credentials.parent.mkdir(parents=True, exist_ok=True)
    credentials.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-conformance-0123456789abcdefghijklmnopqrstuvwxyz",
        "refreshToken": "sk-ant-ort01-conformance", "expiresAt": int((time.time() + 86400) * 1000),
        "scopes": ["user:inference", "user:profile"], "subscriptionType": "pro"}}))
    box.sv("start", "c1", "--task", "usage limit 3600")
    limited_by_the_stand_in(claude, "c1", "error", 3600)
    assert "StopFailure" in claude.hooks("c1")
    assert "You've hit your 5-hour limit" in claude.capture("c1")
