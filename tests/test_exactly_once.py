"""Hook events applied exactly once: by the id `supervisor hook` gives each, recorded with the event, across an
engine that is killed between applying an event and reading its spooled copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.engine.hooks import spool
from supervisor.engine.once import HookLedger, Seen, ingest_spool
from supervisor.engine.spooled import read_spool
from tests.conftest import Sandbox, process_gone, wait_until
from tests.test_watching import _pane_env, config, events, fake_claude


def _send_hook(env: dict[str, str], event: dict[str, Any], at: float, key: str) -> None:
    """What `supervisor hook` sends, with an id of the test's choosing."""
    code = ("import json, os, sys\nfrom supervisor.client import request_at\n"
            "request_at(os.environ['SUPERVISOR_SOCKET'], 'hook', json.loads(sys.stdin.read()), timeout=30)\n")
    subprocess.run([sys.executable, "-c", code], input=json.dumps({"event": event, "at": at, "key": key}),
                   text=True, env=env, check=True, timeout=60)


def test_a_hook_event_applied_before_a_kill_is_not_applied_again_from_its_spooled_copy(sandbox: Sandbox) -> None:
    """The hook gave up waiting and spooled its event; the engine applied the event all the same and was killed
    before it read the spooled copy. The next engine reads that copy: the event is counted once."""
    config(sandbox)
    sandbox.sv("start", "auth", "--command", fake_claude(sandbox, "k", "turns:\n  - [{quiet: 60s}]\n"))
    sandbox.wait_state("auth", "idle")
    env = _pane_env(sandbox, "auth")
    event = {"hook_event_name": "Notification", "notification_type": "agent_needs_input", "message": "once only"}
    at = time.time()
    _send_hook(env, event, at, "late-answer")
    assert sandbox.state("auth") == "waiting"
    pid = sandbox.engine_pid()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: process_gone(pid), message="the engine killed")
    spooled = sandbox.agent_runtime("auth") / "spool"  # the agent's own: it says whose the event is
    spool(spooled, event, at=at, key="late-answer")
    sandbox.ls()  # a new engine, which reads the spool
    wait_until(lambda: not list(spooled.glob("*.json")), message="the spool read by the new engine")
    assert [e.get("message") for e in events(sandbox, "auth", "hook")].count("once only") == 1


def test_a_spooled_copy_waits_while_its_own_request_is_being_applied(tmp_path: Path) -> None:
    """The window between taking an event and recording it: its spooled copy is neither applied nor removed
    (a kill now must leave it for the next engine), and once the event is recorded the copy goes unapplied."""
    store = Store(tmp_path / "state.db")
    agent = Agent(name="auth", profile="claude", command="claude", worktree=str(tmp_path), branch="agent/auth/work",
                  base="0" * 40, target="main")
    store.add_agent(agent)
    ledger = HookLedger(store)
    applied: list[str] = []

    def apply(who: Agent, event: dict[str, Any], ran: float, key: object) -> None:
        store.append_event(who.name, "hook", key=key, **event)
        ledger.recorded(key)
        applied.append(str(key))

    directory = tmp_path / "spool"
    copy = spool(directory, {"hook_event_name": "Stop"}, at=time.time(), key="k1")
    assert ledger.claim("k1")  # its request is being applied
    assert ingest_spool(directory, "auth", store, ledger, apply) is False
    assert copy.exists() and applied == []
    ledger.recorded("k1")
    assert ingest_spool(directory, "auth", store, ledger, apply) is True
    assert not copy.exists() and applied == []

    other = spool(directory, {"hook_event_name": "Stop"}, at=time.time(), key="k2")
    assert ingest_spool(directory, "auth", store, ledger, apply) is True
    assert not other.exists() and applied == ["k2"]
    store.close()


def test_a_spool_file_being_written_is_left_to_its_writer(tmp_path: Path) -> None:
    """`supervisor hook` writes a hidden file, then renames it: read half-written, it would be taken for garbage
    and removed, and the event lost."""
    directory = tmp_path / "spool"
    directory.mkdir()
    partial = directory / ".123.000000-42.json"
    partial.write_text('{"agent": "auth", "tok')
    assert read_spool(directory) == []
    assert partial.exists()
    done = spool(directory, {"hook_event_name": "Stop"}, at=1.0, key="123.000000-42")
    assert [path for path, _ in read_spool(directory)] == [done]
    left = directory / ".99.000000-7.json"
    left.write_text("{")
    os.utime(left, (time.time() - 120, time.time() - 120))  # its hook was killed while writing it
    read_spool(directory)
    assert not left.exists()


def test_a_hook_row_that_does_not_decode_does_not_stop_the_ledger(tmp_path: Path) -> None:
    """Reading the ids recorded since a spooled event ran (what an engine does at start) skips a row whose data
    does not decode, or is not an object, and still finds the others."""
    store = Store(tmp_path / "state.db")
    store.append_event("auth", "hook", hook_event_name="Stop", key="before")
    with store.transaction() as db:
        for data in ("{broken", "[1, 2]"):
            db.execute("INSERT INTO events(ts, agent, kind, data) VALUES (?, 'auth', 'hook', ?)", (time.time(), data))
    store.append_event("auth", "hook", hook_event_name="Stop", key="after")
    ledger = HookLedger(store)
    ledger.cover(time.time() - 60)
    assert ledger.seen("before") is Seen.RECORDED and ledger.seen("after") is Seen.RECORDED
    assert ledger.seen("other") is Seen.NEW
    store.close()


def test_a_hook_event_of_any_size_reaches_the_engine_and_an_unread_tool_call_is_asked_about(
        sandbox: Sandbox) -> None:
    """Past the engine's 16 MiB request limit an event was refused by `supervisor hook` and lost (not even
    spooled); its long strings are cut now. A tool call too large to read whole cannot be checked against
    approval.require: it is asked about, never let through."""
    config(sandbox)
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text() + "approval:\n  require: [\"Bash(rm -rf*)\"]\n")
    sandbox.sv("start", "auth", "--command", fake_claude(sandbox, "big", "turns:\n  - [{quiet: 60s}]\n"))
    sandbox.wait_state("auth", "idle")
    env = _pane_env(sandbox, "auth")

    def hook(event: dict[str, Any]) -> str:
        done = subprocess.run([sys.executable, "-m", "supervisor", "hook"], input=json.dumps(event).encode(),
                              env=env, capture_output=True, check=True, timeout=120)
        return done.stdout.decode()

    big = "x" * (20 * 1024 * 1024)
    answer = hook({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                   "tool_input": {"command": "rm -rf build", "description": big}})
    assert json.loads(answer)["hookSpecificOutput"]["permissionDecision"] == "ask"
    many = {f"part{number}": "y" * 60_000 for number in range(350)}  # 21 MB in strings under the cut
    assert hook({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                 "tool_input": {"command": "ls -la", **many}}) == ""  # still judged: allowed to go on
    answer = hook({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                   "tool_input": {"command": "ls", "description": "z" * (65 * 1024 * 1024)}})
    assert json.loads(answer)["hookSpecificOutput"]["permissionDecision"] == "ask"
    tools = [e.get("tool") for e in events(sandbox, "auth", "hook") if e.get("hook_event_name") == "PreToolUse"]
    assert tools == ["Bash(rm -rf build)", "Bash(ls -la)", "Bash"]


def test_a_hook_event_recorded_by_an_engine_killed_before_it_applied_it_decides_the_adopted_state(
        sandbox: Sandbox) -> None:
    """Recorded (so its spooled copy is skipped) but not applied: the next engine takes the agent's hook state
    from that event, not from a screen that shows nothing of it."""
    config(sandbox)
    sandbox.sv("start", "auth", "--command", fake_claude(sandbox, "r", "turns:\n  - [{quiet: 60s}]\n"))
    sandbox.wait_state("auth", "idle")
    pid = sandbox.engine_pid()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: process_gone(pid), message="the engine killed")
    event = {"hook_event_name": "Notification", "notification_type": "agent_needs_input", "message": "pick one"}
    store = Store(sandbox.paths.db_path)  # what the killed engine recorded, and no more
    store.append_event("auth", "hook", key="recorded-only", **event)
    store.close()
    spool(sandbox.agent_runtime("auth") / "spool", event, at=time.time(), key="recorded-only")
    agent = sandbox.wait_state("auth", "waiting")
    assert agent["waiting_reason"] == "pick one"
    assert [e.get("message") for e in events(sandbox, "auth", "hook")].count("pick one") == 1
