"""Approvals end to end: a held PermissionRequest answered from the CLI, left to time out, typed into a
dialog for a CLI without hooks, and approval.require turning a tool call into an approval."""

from __future__ import annotations

import json
import os
import signal

from tests.conftest import Sandbox, process_gone, wait_until
from tests.test_watching import config, demo, events, fake_claude

ASKS = """
    turns:
      - [{ask: "rm -rf build"}, {say: after the question}]
"""


def test_a_held_permission_request_approved_from_the_cli(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "a", ASKS))
    agent = sandbox.wait_state("auth", "waiting")
    assert agent["waiting_reason"] == "approval: Bash(rm -rf build)"
    assert "Esc to cancel" not in sandbox.screen("auth")  # held by the hook: no dialog in the pane
    out = sandbox.sv("approve", "auth")
    assert "auth: approved Bash(rm -rf build)" in out.stdout
    wait_until(lambda: "approved (by hook)" in sandbox.screen("auth"), message="the CLI got the decision")
    sandbox.wait_state("auth", "idle")
    history = json.loads(sandbox.sv("show", "auth", "--json").stdout)["events"]
    assert any(e["kind"] == "approved" and e["via"] == "hook" for e in history)


def test_a_denial_and_its_reason_reach_the_agent(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "d", ASKS))
    sandbox.wait_state("auth", "waiting")
    sandbox.sv("deny", "auth", "--reason", "keep the build folder, it holds the release")
    wait_until(lambda: "denied (by hook): keep the build folder, it holds the release" in sandbox.screen("auth"),
               message="the reason on the agent's screen")
    assert "after the question" not in sandbox.screen("auth")


def test_an_unanswered_request_falls_back_to_the_cli_dialog(sandbox: Sandbox) -> None:
    config(sandbox, "")
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text() + "approval:\n  timeout: 2s\n")
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "t", ASKS))
    sandbox.wait_state("auth", "waiting")
    wait_until(lambda: "Esc to cancel" in sandbox.screen("auth"), timeout=15, message="the CLI's own dialog")
    assert any(e["kind"] == "approval_timed_out" for e in events(sandbox, "auth"))
    out = sandbox.sv("approve", "auth")  # now answered on the screen, by the option's label
    assert "via" not in out.stdout and "approved" in out.stdout
    wait_until(lambda: "after the question" in sandbox.screen("auth"), message="the turn went on")


def test_a_dialog_of_a_cli_without_hooks_is_answered_by_its_label(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "ui", "--task", "go", "--command", demo(sandbox, "s", ASKS))
    sandbox.wait_state("ui", "waiting")
    sandbox.sv("deny", "ui", "--reason", "not today")
    wait_until(lambda: "denied" in sandbox.screen("ui"), message="the dialog answered No")
    record = next(e for e in events(sandbox, "ui") if e["kind"] == "denied")
    assert record["via"] == "screen" and record["keys"] == "2"
    wait_until(lambda: "not today" in sandbox.screen("ui"), message="the reason sent as the next prompt")


def test_approval_require_turns_a_tool_call_into_an_approval(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text()
                         + "approval:\n  require: [\"Bash(git push*)\"]\n")
    sandbox.sv("start", "auth", "--task", "ship", "--command", fake_claude(sandbox, "r", """
        turns:
          - [{run: "echo safe"}, {run: "git push origin main"}]
    """))
    agent = sandbox.wait_state("auth", "waiting")
    assert agent["waiting_reason"] == "approval: Bash(Bash(git push origin main))"
    kinds = [e["kind"] for e in events(sandbox, "auth")]
    assert kinds.count("approval_required") == 1  # `echo safe` went through untouched
    sandbox.sv("deny", "auth")


def test_approve_with_nothing_to_approve_is_a_clear_error(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "auth", "--command", demo(sandbox, "n", "turns: []\n"))
    sandbox.wait_state("auth", "idle")
    done = sandbox.sv("approve", "auth", check=False)
    assert done.returncode == 1
    assert "auth is not waiting for an approval (it is idle)" in done.stderr


def test_a_waiting_reason_goes_when_the_state_leaves_waiting(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "s", ASKS))
    assert sandbox.wait_state("auth", "waiting")["waiting_reason"]
    sandbox.sv("stop", "auth")
    agent = json.loads(sandbox.sv("show", "auth", "--json").stdout)
    assert (agent["state"], agent["waiting_reason"]) == ("stopped", None)


ASKS_THEN_WORKS = """
    turns:
      - [{ask: "rm -rf build"}, {say: after the question}, {quiet: 60s}]
"""


def _kill_engine(sandbox: Sandbox) -> None:
    pid = sandbox.engine_pid()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: process_gone(pid), message="the engine killed")


def test_an_approval_after_a_restart_says_what_became_of_the_request_the_old_engine_held(sandbox: Sandbox) -> None:
    """The engine holding the request is killed, the CLI shows its own dialog, which is answered in the pane; an
    approve then starts a new engine, which still has the agent `waiting` as last seen: it says what happened
    instead of failing to read options that are not there."""
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "r", ASKS_THEN_WORKS))
    pane = sandbox.wait_state("auth", "waiting")["pane"]
    _kill_engine(sandbox)

    def screen() -> str:  # with no engine started
        return sandbox.tmux("capture-pane", "-p", "-t", pane).stdout

    wait_until(lambda: "Esc to cancel" in screen(), message="the CLI's own dialog")
    sandbox.tmux("send-keys", "-t", pane, "1")
    wait_until(lambda: "after the question" in screen(), message="answered in the pane")
    assert sandbox.sv("engine", "status", check=False).returncode == 1
    done = sandbox.sv("approve", "auth", check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].endswith("its request Bash(rm -rf build) was held by an engine that stopped")
    assert "cannot tell which option" not in done.stderr


def test_an_approval_repeated_after_a_restart_says_it_was_approved_already(sandbox: Sandbox) -> None:
    """The engine took the approval and was killed: its caller cannot know it happened; asking again says so."""
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "a", ASKS_THEN_WORKS))
    sandbox.wait_state("auth", "waiting")
    assert "auth: approved" in sandbox.sv("approve", "auth").stdout
    _kill_engine(sandbox)
    done = sandbox.sv("approve", "auth", check=False)
    assert done.returncode == 1
    assert "its request Bash(rm -rf build) was approved already (by cli)" in done.stderr.splitlines()[0]


def test_approve_always_on_a_request_its_hook_holds_is_refused_not_taken_as_once(sandbox: Sandbox) -> None:
    """The hook protocol allows one call: `--always` there would be granted as once while the human believed
    they had allowed it for the session."""
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "w", ASKS))
    sandbox.wait_state("auth", "waiting")
    done = sandbox.sv("approve", "auth", "--always", check=False)
    assert done.returncode == 1 and "held by its hook" in done.stderr
    assert sandbox.ls()["auth"]["state"] == "waiting"
    assert "approved (by hook)" not in sandbox.screen("auth")
