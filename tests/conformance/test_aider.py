"""aider, the real CLI at its pinned version, offline against tests/fixtures/aider/chat_api.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.conftest import FIXTURES, Run, StateTrail
from tests.conftest import wait_until
from tests.test_watching import ticks_pass

SLOW_SECONDS = 15.0  # chat_api.py's "slow": a word every 0.5 s, 30 of them
STALL_AFTER = 20
# What a user runs: the local model, diff edits (shell command suggestions come with them), no update check.
ARGS = "--model openai/gpt-fixture --edit-format diff --no-check-update --no-show-model-warnings"


def aider_home(run: Run) -> None:
    """The user's own ~/.aider as a configured user has it: this version's "what's new" seen, the price list
    cached (aider fetches it from the network otherwise)."""
    folder = run.box.home / ".aider"
    (folder / "caches").mkdir(parents=True, exist_ok=True)
    (folder / "caches" / "model_prices_and_context_window.json").write_text(json.dumps({"gpt-fixture": {
        "max_input_tokens": 128000, "max_output_tokens": 4096, "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0, "litellm_provider": "openai", "mode": "chat"}}))
    # Keyed by aider's `sys.executable`: the interpreter its script's first line names (`venv/bin/python` as pip
    # writes it today; `python3` is kept for an install made otherwise).
    first = run.binary.read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    named = first[2:].strip().split()[0] if first.startswith("#!") and first[2:].strip() else ""
    pythons = {str(run.binary.parent / "python3"), *([named] if named else [])}
    (folder / "installs.json").write_text(json.dumps({str((run.version, python)): True for python in pythons}))


def make_aider(real_cli: Callable[..., Run], args: str) -> Run:
    run = real_cli("aider", FIXTURES / "aider" / "chat_api.py", args=args, env={
        "OPENAI_API_KEY": "sk-test-conformance-0123456789", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    run.box.env["AIDER_OPENAI_API_BASE"] = f"{run.api.url}/v1"
    # aider's first request of a session loads litellm and maps the repository first, seconds of CPU in aider
    # itself (which, like its spinner, is no progress): on a loaded machine that outlasts the suite's 8 s.
    config = run.box.root / "supervisor.yaml"
    text, count = re.subn(r"stall_after: \S+", f"stall_after: {STALL_AFTER}s", config.read_text())
    assert count == 1, text
    config.write_text(text)
    aider_home(run)
    return run


@pytest.fixture
def aider(real_cli: Callable[..., Run]) -> Run:
    return make_aider(real_cli, f"{ARGS} --no-gitignore")


def asked(run: Run, kind: str) -> list[dict[str, object]]:
    return [r for r in run.api.requests() if r.get("answer") == kind]


def test_a_streamed_answer_is_working_throughout_then_idle(aider: Run) -> None:
    box = aider.box
    trail = StateTrail(box, "a1")
    box.sv("start", "a1", "--task", "be slow please")
    box.wait_state("a1", "working", timeout=60)
    wait_until(lambda: asked(aider, "slow"), 30, message="the slow request")
    aider.wait_screen("a1", lambda s: "word3" in s, 20, "streamed words")
    aider.record("a1", "working_streaming")
    box.wait_state("a1", "idle", timeout=60)
    wait_until(lambda: "idle" in trail.states(), 5, message="the trail saw idle")
    seen = trail.stop()
    aider.record("a1", "done_turn")
    first_idle = next(t for t, state in trail.seen if state == "idle")
    assert first_idle >= float(asked(aider, "slow")[0]["t"]) + SLOW_SECONDS - 1, (seen, first_idle)  # type: ignore
    assert seen[seen.index("working"):] == ["working", "idle"], seen  # no false idle, no stall, no flap
    assert [e["kind"] for e in aider.events("a1", "alert") if e.get("trigger") == "done"] in ([], ["alert"])
    # Its histories are the agent's own, never files in the worktree.
    worktree = Path(box.ls()["a1"]["worktree"])
    assert not list(worktree.glob(".aider.*history*")), list(worktree.iterdir())
    state = box.paths.agent_state("a1")
    assert "be slow please" in (state / "chat.history.md").read_text()


def test_a_hung_request_stalls_and_is_never_idle(aider: Run) -> None:
    box = aider.box
    box.sv("start", "a1", "--task", "hello")
    box.wait_state("a1", "idle", timeout=60)
    trail = StateTrail(box, "a1")
    box.sv("send", "a1", "hang now")
    wait_until(lambda: asked(aider, "hang"), 30, message="the hung request")
    first = aider.record("a1", "working_hung_1", aider.wait_screen("a1", lambda s: "Waiting for" in s, 15, "spinner"))
    aider.record("a1", "working_hung_2", aider.wait_screen("a1", lambda s: s != first, 5, "another spinner frame"))
    box.wait_state("a1", "stalled", timeout=STALL_AFTER + 20)
    seen = trail.stop()
    assert seen[seen.index("working"):] == ["working", "stalled"], seen  # never idle, the spinner is no progress


def test_a_question_is_waiting_approve_runs_it_once_deny_refuses(aider: Run) -> None:
    box = aider.box
    box.sv("start", "a1", "--task", "run: touch approved.txt")
    agent = box.wait_state("a1", "waiting", timeout=60)
    aider.record("a1", "question_run_command")
    assert "Run shell command?" in (agent.get("waiting_reason") or ""), agent
    worktree = Path(agent["worktree"])
    assert not (worktree / "approved.txt").exists()
    box.sv("approve", "a1")
    wait_until(lambda: (worktree / "approved.txt").exists(), 15, message="the approved command ran")
    box.wait_state("a1", "idle", timeout=30)
    screen = aider.record("a1", "question_approved")
    assert "[Yes]: y" in screen and "(D)on't ask again [Yes]: d" not in screen, screen
    assert box.ls()["a1"]["waiting_reason"] is None

    box.sv("send", "a1", "run: touch denied.txt")
    box.wait_state("a1", "waiting", timeout=30)
    box.sv("deny", "a1", "--reason", "not that file")
    aider.record("a1", "question_denied", aider.wait_screen("a1", lambda s: "[Yes]: n" in s, 10, "the answer"))
    wait_until(lambda: [r for r in aider.api.requests() if r.get("user") == "not that file"], 30,
               message="the reason reached the model")
    box.wait_state("a1", "idle", timeout=30)
    assert not (worktree / "denied.txt").exists()

    box.sv("send", "a1", "run: echo hi there; sleep 1")  # output (and time for aider to read it: pexpect drops
    # the output of a command that ends at once): aider asks the next question right after it
    box.wait_state("a1", "waiting", timeout=30)
    aider.record("a1", "question_run_echo")
    box.sv("approve", "a1")
    screen = aider.wait_screen("a1", lambda s: "Add command output to the chat?" in s, 15, "the next question")
    aider.record("a1", "question_command_output", screen)
    wait_until(lambda: "Add command output" in (box.ls()["a1"]["waiting_reason"] or ""), 10,
               message="waiting for the next question")
    box.sv("deny", "a1")
    box.wait_state("a1", "idle", timeout=30)

    box.sv("send", "a1", "edit: README.md")  # a file the answer names: aider asks to add it
    agent = box.wait_state("a1", "waiting", timeout=30)
    aider.record("a1", "question_add_file")
    assert "Add file to the chat?" in (agent.get("waiting_reason") or ""), agent
    box.sv("approve", "a1")
    box.wait_state("a1", "idle", timeout=30)
    assert any("I added these files" in str(r.get("user")) or r.get("answer") == "text" for r in
               aider.api.requests()[-1:])
    approvals = [e for e in aider.events("a1") if e["kind"] in ("approved", "denied")]
    assert [e.get("keys") for e in approvals] == ["y Enter", "n Enter", "y Enter", "n Enter", "y Enter"], approvals


def test_a_first_run_question_waits_and_the_task_arrives_after_a_human_answers(real_cli: Callable[..., Run]) -> None:
    run = make_aider(real_cli, ARGS)  # aider asks to add .aider* to the repository's .gitignore
    box = run.box
    box.sv("start", "a1", "--task", "hello there")
    agent = box.wait_state("a1", "waiting", timeout=60)
    run.record("a1", "startup_gitignore_question")
    assert ".gitignore" in (agent.get("waiting_reason") or ""), agent
    ticks_pass(box, 3)  # the engine looked again, and typed the task nowhere: not into the question
    assert box.state("a1") == "waiting"
    assert not run.api.requests()
    box.tmux("send-keys", "-t", agent["pane"], "n", "Enter")  # the human answers in the pane
    wait_until(lambda: [r for r in run.api.requests() if r.get("user") == "hello there"], 60,
               message="the task reached the model")
    box.wait_state("a1", "idle", timeout=60)
    assert len([r for r in run.api.requests() if r.get("user") == "hello there"]) == 1


def test_exit_records_its_exit_code_and_restart_restores_the_chat(aider: Run) -> None:
    box = aider.box
    box.sv("start", "a1", "--task", "hello")
    box.wait_state("a1", "idle", timeout=60)
    box.sv("send", "a1", "/exit")
    agent = box.wait_state("a1", "exited", timeout=30)
    assert agent["exit_code"] == 0, agent
    box.sv("restart", "a1")
    box.wait_state("a1", "idle", timeout=60)
    launched = [str(e["command"]) for e in aider.events("a1") if e.get("command")]
    assert launched[-1].endswith(" --restore-chat-history"), launched
    screen = aider.capture("a1")
    if "Restored previous conversation history." in screen:  # once seen only a rule a moment after idle
        aider.record("a1", "restored_chat", screen)
    # The conversation goes on: the model gets the earlier exchange with the next message.
    box.sv("send", "a1", "hello again")
    request = wait_until(lambda: [r for r in aider.api.requests() if r.get("user") == "hello again"], 60,
                         message="the next message reached the model")[0]
    assert any("scripted stand-in" in text for text in request["assistant"]), request


def test_a_send_while_working_arrives_once_and_it_stays_working_until_the_last_turn(aider: Run) -> None:
    box = aider.box
    box.sv("start", "a1", "--task", "hello")
    box.wait_state("a1", "idle", timeout=60)
    trail = StateTrail(box, "a1")
    box.sv("send", "a1", "be slow please")
    wait_until(lambda: asked(aider, "slow"), 30, message="the slow request")
    aider.wait_screen("a1", lambda s: "word2" in s, 20, "streamed words")
    box.sv("send", "a1", "and then hello again")
    wait_until(lambda: [r for r in aider.api.requests() if r.get("user") == "and then hello again"], 60,
               message="the second message reached the model")
    box.wait_state("a1", "idle", timeout=30)
    wait_until(lambda: trail.states()[-1:] == ["idle"], 5, message="the trail saw idle")
    seen = trail.stop()
    assert seen[seen.index("working"):] == ["working", "idle"], seen
    assert len([r for r in aider.api.requests() if r.get("user") == "and then hello again"]) == 1
    assert len(asked(aider, "slow")) == 1
