"""Gemini CLI, the real CLI at its pinned version, offline against tests/fixtures/gemini/gemini_api.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.conftest import FIXTURES, ZONE, Run, StateTrail, limited_by_the_stand_in
from tests.conftest import wait_until
from tests.test_pane_identity import kill_tmux_server

QUESTION = "Do you trust the files in this folder?"


def gemini_home(run: Run, *, trusted: bool) -> None:
    """The user's own ~/.gemini, as a configured user has it: API-key auth, folder trust on, auto-update off, and
    the repository trusted (or not)."""
    own = run.box.home / ".gemini"
    own.mkdir(exist_ok=True)
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": True}},
                "general": {"disableAutoUpdate": True, "enableAutoUpdate": False},
                "privacy": {"usageStatisticsEnabled": False}}
    (own / "settings.json").write_text(json.dumps(settings, indent=2))
    (own / "trustedFolders.json").write_text(json.dumps({str(run.box.root): "TRUST_FOLDER"} if trusted else {}))


@pytest.fixture
def gemini(real_cli: Callable[..., Run]) -> Run:
    run = real_cli("gemini", FIXTURES / "gemini" / "gemini_api.py", env={"GEMINI_API_KEY": "test-key"})
    run.box.env["GOOGLE_GEMINI_BASE_URL"] = run.api.url
    return run


def asked(run: Run, text: str) -> list[dict[str, object]]:
    """The model requests that carry `text` (a turn sends a routing request, then its stream)."""
    return [r for r in run.api.requests() if text in str(r.get("user"))]


def submitted(run: Run, name: str, text: str) -> int:
    """How many times `text` shows as a submitted prompt in the agent's history (` > text`)."""
    return sum(1 for row in run.capture(name).splitlines() if row.strip() == f"> {text}")


def test_a_worktree_of_a_trusted_repository_starts_without_the_trust_dialog(gemini: Run) -> None:
    gemini_home(gemini, trusted=True)
    box = gemini.box
    trail = StateTrail(box, "g1")
    box.sv("start", "g1", "--task", "say hello please")
    box.wait_state("g1", "working", timeout=90)
    box.wait_state("g1", "idle", timeout=90)
    seen = trail.stop()
    assert asked(gemini, "say hello please") and submitted(gemini, "g1", "say hello please") == 1
    assert "waiting" not in seen, seen
    state = box.root / ".git" / "supervisor" / "agents" / "g1" / ".gemini"
    assert json.loads((state / "trustedFolders.json").read_text())[box.ls()["g1"]["worktree"]] == "TRUST_FOLDER"
    assert json.loads((box.home / ".gemini" / "trustedFolders.json").read_text()) == {str(box.root): "TRUST_FOLDER"}


def test_the_trust_dialog_waits_for_a_human_and_the_task_arrives_after(gemini: Run) -> None:
    gemini_home(gemini, trusted=False)
    box = gemini.box
    box.sv("start", "g2", "--task", "say hello please")
    agent = box.wait_state("g2", "waiting", timeout=90)
    assert agent["waiting_reason"] == QUESTION
    screen = gemini.record("g2", "conformance_trust_prompt")
    assert "● 1. Trust folder" in screen
    assert not asked(gemini, "say hello please") and "say hello please" not in screen
    box.tmux("send-keys", "-t", agent["pane"], "Enter")  # the human trusts the folder
    wait_until(lambda: asked(gemini, "say hello please"), timeout=90, message="the task reached the model")
    box.wait_state("g2", "idle", timeout=90)
    assert submitted(gemini, "g2", "say hello please") == 1


def test_approve_runs_the_call_once_and_deny_delivers_its_reason(gemini: Run) -> None:
    gemini_home(gemini, trusted=True)
    box = gemini.box
    box.sv("start", "g3", "--task", "run: touch approved.txt")
    agent = box.wait_state("g3", "waiting", timeout=90)
    assert agent["waiting_reason"] == "Allow execution of [Shell]?", agent
    gemini.record("g3", "conformance_approval_prompt")
    box.sv("approve", "g3")
    approved = gemini.events("g3", "approved")
    assert [e["keys"] for e in approved] == ["1"], approved
    worktree = Path(box.ls()["g3"]["worktree"])
    wait_until(lambda: (worktree / "approved.txt").exists(), timeout=30, message="the approved call ran")
    box.wait_state("g3", "idle", timeout=90)
    assert "Allow for this session" not in gemini.capture("g3")

    box.sv("send", "g3", "run: touch denied.txt")
    box.wait_state("g3", "waiting", timeout=90)
    box.sv("deny", "g3", "--reason", "leave the tree clean")
    assert [e["keys"] for e in gemini.events("g3", "denied")] == ["3"]
    wait_until(lambda: asked(gemini, "leave the tree clean"), timeout=60, message="the reason reached the model")
    box.wait_state("g3", "idle", timeout=90)
    assert not (worktree / "denied.txt").exists()


def test_restart_resumes_the_agents_own_session_by_its_id(gemini: Run) -> None:
    gemini_home(gemini, trusted=True)
    box = gemini.box
    box.sv("start", "g4", "--task", "say hello please")
    box.wait_state("g4", "idle", timeout=90)
    box.sv("restart", "g4")  # the id is read from its chat file at the latest now, whatever the watcher saw
    session = box.agent("g4")["session_id"]
    assert gemini.events("g4", "launched")[-1]["command"] == f"{gemini.binary} --resume={session}"
    box.wait_state("g4", "idle", timeout=90)
    gemini.wait_screen("g4", lambda screen: "> say hello please" in screen, message="the resumed conversation")
    box.sv("send", "g4", "and once more")
    wait_until(lambda: asked(gemini, "and once more"), timeout=60, message="the follow-up reached the model")
    box.wait_state("g4", "idle", timeout=90)
    # One conversation, carried on: not a new session. Gemini 0.61 begins every launch with a chat file of its
    # own (named by the minute and the id, so a restart within the same minute writes on in the same file), the
    # resumed id and no message in it, before it loads the resumed conversation and writes on in that one.
    chats = list((box.root / ".git" / "supervisor" / "agents" / "g4" / ".gemini" / "tmp").glob("*/chats/*"))
    assert {json.loads(chat.read_text().splitlines()[0])["sessionId"] for chat in chats} == {session}, chats
    spoken = [chat.read_text() for chat in chats if "and once more" in chat.read_text()]
    assert len(spoken) == 1 and "say hello please" in spoken[0], chats
    assert not list((box.home / ".gemini").glob("tmp/*/chats/*"))  # the user's own sessions untouched


def test_a_streamed_answer_is_working_throughout_then_idle(gemini: Run) -> None:
    gemini_home(gemini, trusted=True)
    box = gemini.box
    trail = StateTrail(box, "g5")
    box.sv("start", "g5", "--task", "write slowly please")
    box.wait_state("g5", "working", timeout=90)
    gemini.record("g5", "conformance_working_streaming")
    box.wait_state("g5", "idle", timeout=90)
    seen = trail.stop()
    stream = [r for r in gemini.api.requests() if r.get("answer") == "slow"]
    assert len(stream) == 1, gemini.api.requests()
    first_idle = next(t for t, state in trail.seen if state == "idle")
    assert first_idle >= stream[0]["t"] + 14, (seen, stream[0]["t"], first_idle)  # 30 chunks, one every 0.5 s
    assert seen[seen.index("working"):] == ["working", "idle"], seen  # no false idle, no flap


def test_a_hung_request_becomes_stalled_never_idle(gemini: Run) -> None:
    gemini_home(gemini, trusted=True)
    box = gemini.box
    trail = StateTrail(box, "g5")
    box.sv("start", "g5", "--task", "now hang")
    box.wait_state("g5", "stalled", timeout=60)
    seen = trail.stop()
    assert seen[seen.index("working"):] == ["working", "stalled"], seen  # never idle while it hangs
    gemini.record("g5", "conformance_working_hung")


def chats(run: Run, name: str) -> list[Path]:
    state = run.box.root / ".git" / "supervisor" / "agents" / name
    return sorted(state.glob(".gemini/tmp/*/chats/session-*.json*"))


def test_restore_after_the_tmux_server_died_resumes_its_conversation_by_the_id_gemini_keeps(gemini: Run) -> None:
    """Gemini CLI keeps each conversation in .gemini/tmp/<project>/chats/session-<time>-<id[:8]>.jsonl (its first
    line names the sessionId); `restore` runs `gemini --resume <id>`: the conversation is back, the task not sent
    again."""
    gemini_home(gemini, trusted=True)
    box = gemini.box
    box.sv("start", "g1", "--task", "remember the word pelican")
    box.wait_state("g1", "working", timeout=90)
    box.wait_state("g1", "idle", timeout=90)
    session = wait_until(lambda: box.agent("g1").get("session_id"), timeout=30, message="g1's conversation id")
    (chat,) = [path for path in chats(gemini, "g1") if session[:8] in path.name]
    gemini.keep(f"chats/{chat.name}", chat.read_text())
    kill_tmux_server(box)
    box.wait_state("g1", "exited")
    asked_before = asked(gemini, "remember the word pelican")

    box.sv("restore", "--all")
    gemini.wait_screen("g1", lambda s: "remember the word pelican" in s, timeout=90, message="the resumed one")
    box.wait_state("g1", "idle", timeout=90)
    assert gemini.events("g1", "launched")[-1]["command"] == f"{gemini.binary} --resume={session}"
    assert len(asked(gemini, "remember the word pelican")) == len(asked_before)
    assert box.agent("g1")["session_id"] == session


def test_a_quota_is_limited_until_its_reset_dialog_and_all(gemini: Run) -> None:
    """A quota exhausted (429 RESOURCE_EXHAUSTED with a RetryInfo of an hour): Gemini CLI 0.61.0 asks `Usage limit
    reached for all Pro models. / Access resets at 7:08 PM GMT+1.` with Keep trying / Stop; the limit, not the
    dialog, is what holds the agent."""
    gemini_home(gemini, trusted=True)
    box = gemini.box
    box.env["TZ"] = ZONE
    box.sv("start", "g6", "--task", "usage limit 3600")
    limited_by_the_stand_in(gemini, "g6", "limit", 3600)
