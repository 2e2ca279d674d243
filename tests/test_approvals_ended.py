"""A request an agent's hook holds is dropped whenever the engine ends the agent's process tree (stop, kill,
timeout, restart): no approve reports an answer delivered to a process that is gone, and after a restart an
approve answers the request the running CLI waits on (real engine, real tmux, the demo agent as Claude Code)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Sandbox
from tests.test_pane_identity import engine_request
from tests.test_watching import config, fake_claude

ASKS = """
    turns:
      - [{ask: "rm -rf build/"}, {say: after the first}]
      - [{ask: "rm -rf dist/"}, {say: after the second}]
"""


def approvals(box: Sandbox, name: str) -> list[tuple[str, str, str | None]]:
    """(request, status, reason) of the agent's requests, oldest first."""
    held: list[dict[str, Any]] = engine_request(box, "approvals", name=name)
    return [(a["request"], a["status"], a["reason"]) for a in reversed(held)]


def test_a_stopped_agents_request_is_dropped_and_approve_says_so(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "halt", "--task", "clean", "--command", fake_claude(sandbox, "h", ASKS))
    sandbox.sv("start", "kill", "--task", "clean", "--command", fake_claude(sandbox, "k", ASKS))
    for name in ("halt", "kill"):
        assert sandbox.wait_state(name, "waiting")["waiting_reason"] == "approval: Bash(rm -rf build/)"
    sandbox.sv("stop", "halt")
    sandbox.sv("stop", "--kill", "kill")
    for name, state, why in (("halt", "stopped", "stopped on request"), ("kill", "killed", "killed on request")):
        done = sandbox.sv("approve", name, check=False)
        assert done.returncode == 1
        assert done.stderr.splitlines()[0] == (f"supervisor: error: {name} is not waiting for an approval (it is "
                                               f"{state}); its request Bash(rm -rf build/) was dropped: {why}")
        assert approvals(sandbox, name) == [("Bash(rm -rf build/)", "dropped", why)]


def test_after_a_restart_approve_answers_the_request_the_running_cli_waits_on(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "a", ASKS))
    assert sandbox.wait_state("auth", "waiting")["waiting_reason"] == "approval: Bash(rm -rf build/)"
    sandbox.sv("restart", "auth")  # resumed in its own conversation: the next prompt is its second turn
    assert approvals(sandbox, "auth") == [("Bash(rm -rf build/)", "dropped", "it was restarted")]
    sandbox.wait_state("auth", "idle")
    sandbox.sv("send", "auth", "go on")
    assert sandbox.wait_state("auth", "waiting")["waiting_reason"] == "approval: Bash(rm -rf dist/)"

    sandbox.sv("approve", "auth")
    sandbox.wait_state("auth", "idle")
    assert "after the second" in sandbox.screen("auth")
    assert approvals(sandbox, "auth") == [("Bash(rm -rf build/)", "dropped", "it was restarted"),
                                          ("Bash(rm -rf dist/)", "approved", None)]


def test_a_timed_out_agents_request_is_dropped(sandbox: Sandbox) -> None:
    config(sandbox, "session_timeout: 5s")
    sandbox.sv("start", "slow", "--task", "clean", "--command", fake_claude(sandbox, "s", ASKS))
    assert sandbox.wait_state("slow", "waiting")["waiting_reason"] == "approval: Bash(rm -rf build/)"
    assert sandbox.wait_state("slow", "killed", timeout=30)["reason"] == "timed out after 5s"
    done = sandbox.sv("approve", "slow", check=False)
    assert done.returncode == 1 and done.stderr.splitlines()[0].endswith("was dropped: timed out after 5s")
    assert approvals(sandbox, "slow") == [("Bash(rm -rf build/)", "dropped", "timed out after 5s")]
