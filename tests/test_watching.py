"""True states, from hooks and from screens, and the triggers of SPEC §5, with real panes and a real engine.

The fake `claude` is the demo agent with `--claude --look claude`: it reads Claude Code's settings files and
calls their hooks with the documented JSON, and draws Claude Code's markers on its screen."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.engine.hooks import spool
from tests.conftest import DEMO_AGENT, PYTHON, Sandbox, wait_until


def fake_claude(box: Sandbox, name: str, script: str, *, hooks: bool = True) -> str:
    """A `claude` command (on its own PATH entry) running `script`; returns the command line."""
    bindir = box.root.parent / "bin"
    bindir.mkdir(exist_ok=True)
    claude = bindir / "claude"
    claude.write_text(f"#!/bin/sh\nexec {PYTHON} -m supervisor.demo.agent --look claude --notify-delay 0.3s \"$@\"\n")
    claude.chmod(0o755)
    path = box.root.parent / f"{name}.yaml"
    path.write_text(textwrap.dedent(script))
    return f"{claude} {'--claude ' if hooks else ''}--script {path}"


def demo(box: Sandbox, name: str, script: str) -> str:
    path = box.root.parent / f"{name}.yaml"
    path.write_text(textwrap.dedent(script))
    return f"{DEMO_AGENT} --script {path}"


def events(box: Sandbox, agent: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    db = sqlite3.connect(box.root / ".git" / "supervisor" / "state.db")
    try:
        rows = db.execute("SELECT ts, agent, kind, data FROM events ORDER BY id").fetchall()
    finally:
        db.close()
    found = []
    for ts, row_agent, row_kind, data in rows:
        if (agent is None or row_agent == agent) and (kind is None or row_kind == kind):
            found.append({"at": ts, "agent": row_agent, "kind": row_kind, **json.loads(data)})
    return found


def states(box: Sandbox, agent: str) -> list[str]:
    return [e["state"] for e in events(box, agent) if "state" in e and "previous" in e]


def ticks_pass(box: Sandbox, count: int) -> None:
    """Wait until the engine has looked at every agent `count` more times."""
    def ticks() -> int:
        return int(json.loads(box.sv("engine", "status", "--json").stdout)["ticks"])

    start = ticks()
    wait_until(lambda: ticks() >= start + count, message=f"{count} ticks")


def idle_again(box: Sandbox, agent: str, after: int) -> None:
    """Wait for the agent to go idle once more than `after` times: the engine has seen the turn a send began
    (a plain wait for `idle` can return on the idle from before the send)."""
    wait_until(lambda: states(box, agent).count("idle") > after, message=f"{agent} idle after its turn")


def triggers(box: Sandbox, agent: str, trigger: str) -> list[dict[str, Any]]:
    return [e for e in events(box, agent, "trigger") if e["trigger"] == trigger]


def config(box: Sandbox, extra: str = "") -> None:
    box.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                     f"limits:\n  idle_after: 1s\n{textwrap.indent(textwrap.dedent(extra), '  ')}")


SCRIPT = """
    turns:
      - [{work: 1s}, {ask: "Run the migrations?"}, {run: "echo migrated"}]
      - [{work: 1s}]
"""


@pytest.mark.both_isolations
def test_hooks_drive_every_state_of_claude(sandbox: Sandbox) -> None:
    config(sandbox)
    command = fake_claude(sandbox, "c", SCRIPT)
    sandbox.sv("start", "auth", "--task", "migrate", "--command", command)
    worktree = Path(sandbox.ls()["auth"]["worktree"])
    assert sandbox.agent("auth")["isolation"] == sandbox.isolation  # (marked: run sandboxed and without)
    # Its hooks are in its own config folder (CLAUDE_CONFIG_DIR), not in the worktree it can edit.
    settings = json.loads((sandbox.paths.agent_state("auth") / "settings.json").read_text())
    assert "PermissionRequest" in settings["hooks"] and "Stop" in settings["hooks"]
    assert not (worktree / ".claude").exists() and not (sandbox.home / ".claude.json").exists()
    assert sandbox.git("status", "--porcelain", cwd=worktree) == ""

    waiting = sandbox.wait_state("auth", "waiting")
    assert waiting["waiting_reason"].startswith("approval: Bash(Run the migrations?")
    assert [t["active"] for t in triggers(sandbox, "auth", "waiting")] == [True]
    assert "needs you: approval: Bash(Run the migrations?" in sandbox.sv("ls").stdout
    sandbox.sv("approve", "auth")  # the held PermissionRequest gets the human's answer
    idle = sandbox.wait_state("auth", "idle")
    assert idle["waiting_reason"] is None
    kinds = {e["hook_event_name"] for e in events(sandbox, "auth", "hook")}
    assert kinds >= {"SessionStart", "UserPromptSubmit", "PermissionRequest", "PreToolUse", "PostToolUse", "Stop"}
    order = [e["hook_event_name"] for e in events(sandbox, "auth", "hook")]
    assert order.index("PermissionRequest") < order.index("PreToolUse") < order.index("Stop")
    assert [t["active"] for t in triggers(sandbox, "auth", "waiting")] == [True, False]
    assert len(triggers(sandbox, "auth", "done")) == 1
    # Decided by hooks: the idle after the turn came from the Stop hook.
    last = [e for e in events(sandbox, "auth") if e.get("state") == "idle"][-1]
    assert last["rule"] == "hook"
    sandbox.sv("send", "auth", "/exit")
    sandbox.wait_state("auth", "exited")
    assert "SessionEnd" in {e["hook_event_name"] for e in events(sandbox, "auth", "hook")}


def test_a_prompt_sent_mid_turn_keeps_claude_working_until_its_own_turn_ends(sandbox: Sandbox) -> None:
    """Claude Code fires UserPromptSubmit when a prompt sent mid-turn is queued, then Stop for the turn that
    was running: that Stop must not read as idle while the queued prompt's turn runs."""
    config(sandbox)
    command = fake_claude(sandbox, "c", """
        turns:
          - [{work: 7s}]
          - [{work: 4s}]
    """)
    sandbox.sv("start", "auth", "--task", "first", "--command", command)
    sandbox.wait_state("auth", "working")
    sandbox.sv("send", "auth", "second")  # queued: turn 1 is still running
    wait_until(lambda: [e["hook_event_name"] for e in events(sandbox, "auth", "hook")].count("Stop") == 2,
               timeout=30, message="both turns' Stop hooks")
    sandbox.wait_state("auth", "idle")
    stops = [e["at"] for e in events(sandbox, "auth", "hook") if e["hook_event_name"] == "Stop"]
    idles = [e["at"] for e in events(sandbox, "auth") if e.get("state") == "idle" and "previous" in e]
    assert idles and idles[0] >= stops[1], f"idle at {idles[0]:.2f} while the queued turn ran until {stops[1]:.2f}"
    assert len(triggers(sandbox, "auth", "done")) == 1


def test_a_notice_passing_in_claudes_footer_after_a_turn_keeps_it_idle(sandbox: Sandbox) -> None:
    """Claude Code shows, then takes away, a notice in its footer seconds after a turn (`tmux focus-events off
    · …`; its footer hints also go): the idle screen changes, but no turn began."""
    config(sandbox)
    said = sandbox.root.parent / "toast.log"  # the notice lasts 2 s: a loaded machine may not catch it on screen
    command = fake_claude(sandbox, "c", "turns:\n  - [{work: 1s}]\n") + f" --toast-after 1.5s --toast-log {said}"
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    sandbox.wait_state("auth", "idle")
    wait_until(lambda: said.exists() and said.read_text().split() == ["shown", "gone"], message="the notice gone")
    ticks_pass(sandbox, 8)
    seen = states(sandbox, "auth")
    assert seen[seen.index("working"):] == ["working", "idle"], seen
    assert len(triggers(sandbox, "auth", "done")) == 1


def test_restart_resumes_claudes_own_session_by_its_id(sandbox: Sandbox) -> None:
    config(sandbox)
    command = fake_claude(sandbox, "c", "turns:\n  - [{work: 1s}]\n")
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    sandbox.wait_state("auth", "idle")
    started = [e for e in events(sandbox, "auth", "hook") if e["hook_event_name"] == "SessionStart"]
    session = wait_until(lambda: [e["session_id"] for e in events(sandbox, "auth", "session")],
                         message="the session id kept")[-1]
    sandbox.sv("restart", "auth")
    wait_until(lambda: len([e for e in events(sandbox, "auth", "hook") if e["hook_event_name"] == "SessionStart"])
               > len(started), message="the restarted CLI's SessionStart")
    launched = events(sandbox, "auth", "launched")
    assert launched[-1]["command"] == f"{command} --resume={session}"
    assert [e["session_id"] for e in events(sandbox, "auth", "session")] == [session]  # the same conversation


def test_turns_that_claude_ends_without_a_stop_hook_end_idle(sandbox: Sandbox) -> None:
    """Claude Code sends no Stop when a turn ends by an interrupt or by a No typed into its own dialog,
    and StopFailure on an API error (tests/fixtures/claude/README.md). Each turn ends idle, not working
    until it is called stalled."""
    config(sandbox, "stall_after: 8s\n")  # longer than the waits below; a stuck turn still stalls in time
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text() + "approval:\n  timeout: 1s\n")
    sandbox.sv("start", "auth", "--task", "go", "--command", fake_claude(sandbox, "ends", """
        turns:
          - [{work: 60s}]
          - [{ask: "rm -rf build"}, {say: "not reached"}]
          - [{say: "calling the model"}, {api_error: "400 the stand-in refused this request"}]
    """))
    pane = sandbox.wait_state("auth", "working")["pane"]
    wait_until(lambda: "esc to interrupt" in sandbox.screen("auth"), message="the turn under way")
    ticks_pass(sandbox, 2)  # and seen so by the engine
    turns = states(sandbox, "auth").count("idle")
    sandbox.tmux("send-keys", "-t", pane, "C-c")  # a human interrupts the turn
    wait_until(lambda: "(interrupted)" in sandbox.screen("auth"), message="the turn interrupted")
    idle_again(sandbox, "auth", turns)

    turns = states(sandbox, "auth").count("idle")
    sandbox.sv("send", "auth", "clean up")
    wait_until(lambda: "Esc to cancel" in sandbox.screen("auth"), message="its own dialog, once the hold lapsed")
    sandbox.wait_state("auth", "waiting")
    sandbox.tmux("send-keys", "-t", pane, "2")  # a human answers No in the pane
    wait_until(lambda: "denied" in sandbox.screen("auth"), message="the dialog answered")
    idle_again(sandbox, "auth", turns)

    turns = states(sandbox, "auth").count("idle")
    sandbox.sv("send", "auth", "once more")
    idle_again(sandbox, "auth", turns)
    assert "StopFailure" in [e.get("hook_event_name") for e in events(sandbox, "auth", "hook")]
    assert "Stop" not in [e.get("hook_event_name") for e in events(sandbox, "auth", "hook")]
    assert "stalled" not in states(sandbox, "auth")

    # Claude sends permission_prompt seconds after its dialog opened, also when a human answered it since.
    _hook(_pane_env(sandbox, "auth"), {"hook_event_name": "Notification", "notification_type": "permission_prompt",
                                       "message": "Claude needs your permission to use Bash"})
    ticks_pass(sandbox, 2)
    assert sandbox.state("auth") == "idle"  # no dialog on the screen: nothing to wait for


def test_the_same_scenario_from_the_screen_alone(sandbox: Sandbox) -> None:
    config(sandbox)
    command = fake_claude(sandbox, "s", SCRIPT, hooks=False)
    sandbox.sv("start", "auth", "--task", "migrate", "--command", command)
    waiting = sandbox.wait_state("auth", "waiting")
    assert waiting["waiting_reason"] == "Run the migrations?"
    sandbox.tmux("send-keys", "-t", waiting["pane"], "1")
    sandbox.wait_state("auth", "idle")
    assert events(sandbox, "auth", "hook") == []
    seen = states(sandbox, "auth")
    assert seen.index("working") < seen.index("waiting") < len(seen) - 1 - seen[::-1].index("idle")
    rules = {e.get("rule") for e in events(sandbox, "auth") if "rule" in e}
    assert "hook" not in rules


def test_demo_profile_reads_its_screen(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "ui", "--task", "go", "--command", demo(sandbox, "d", """
        turns:
          - [{work: 1s}, {ask: "Delete the build folder?"}]
    """))
    waiting = sandbox.wait_state("ui", "waiting")
    assert waiting["waiting_reason"] == "Delete the build folder?"
    sandbox.tmux("send-keys", "-t", waiting["pane"], "2")
    sandbox.wait_state("ui", "idle")


def test_unknown_notification_types_mean_waiting_and_auth_success_does_not(sandbox: Sandbox) -> None:
    config(sandbox)
    command = fake_claude(sandbox, "n", """
        turns:
          - [{run: "true"}, {quiet: 60s}]
    """)
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    sandbox.wait_state("auth", "working")
    # The agent's own tool hooks must be in before ours, or its PostToolUse (rightly) means working again.
    wait_until(lambda: any(e.get("hook_event_name") == "PostToolUse" for e in events(sandbox, "auth", "hook")),
               message="the agent's PostToolUse hook")
    pane_env = _pane_env(sandbox, "auth")
    _hook(pane_env, {"hook_event_name": "Notification", "notification_type": "auth_success", "message": "ok"})
    _hook(pane_env, {"hook_event_name": "Notification", "notification_type": "agent_needs_input",
                     "message": "Claude needs your input on the schema"})
    agent = sandbox.wait_state("auth", "waiting")
    assert agent["waiting_reason"] == "Claude needs your input on the schema"


def _pane_env(box: Sandbox, name: str) -> dict[str, str]:
    pid = box.ls()[name]["pid"]
    env = psutil.Process(pid).environ()
    return {**box.env, **{k: v for k, v in env.items() if k.startswith("SUPERVISOR_")}}


def _hook(env: dict[str, str], event: dict[str, Any]) -> None:
    import subprocess

    subprocess.run([sys.executable, "-m", "supervisor", "hook"], input=json.dumps(event), text=True, env=env,
                   check=True, timeout=30)


def test_hook_events_while_the_engine_is_down_are_spooled_and_read_back(sandbox: Sandbox) -> None:
    config(sandbox)
    command = fake_claude(sandbox, "p", "turns:\n  - [{quiet: 60s}]\n")
    sandbox.sv("start", "auth", "--command", command)
    sandbox.wait_state("auth", "idle")
    env = _pane_env(sandbox, "auth")
    sandbox.sv("engine", "stop")
    started = time.monotonic()
    _hook(env, {"hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": {"command": "rm -rf x"}})
    assert time.monotonic() - started < 5  # the agent is never held up
    spooled = sandbox.agent_runtime("auth") / "spool"  # the agent's own folder: it says whose the event is
    assert list(spooled.glob("*.json"))
    agent = sandbox.wait_state("auth", "waiting")  # any command brings the engine back, which reads the spool
    assert agent["waiting_reason"] == "approval: Bash(rm -rf x)"
    assert not list(spooled.glob("*.json"))


def test_a_hook_the_engine_answers_too_late_counts_once_and_in_the_order_it_ran(sandbox: Sandbox) -> None:
    """An engine that is alive but does not answer within the hook's few seconds (here its store is locked,
    as by a stalled disk): the hook spools the event and lets the agent go on. The engine takes the late
    request and the spooled copy as one event, and an event that arrives after a newer one does not take
    the state back."""
    config(sandbox)
    sandbox.sv("start", "auth", "--command", fake_claude(sandbox, "late", "turns:\n  - [{quiet: 60s}]\n"))
    sandbox.wait_state("auth", "idle")
    env = _pane_env(sandbox, "auth")
    spooled = sandbox.agent_runtime("auth") / "spool"

    def hook(event: dict[str, Any]) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-m", "supervisor", "hook"], stdin=subprocess.PIPE,
                                   text=True, env=env)
        assert process.stdin is not None
        process.stdin.write(json.dumps(event))
        process.stdin.close()
        # Connected to the engine: it has taken its time and sent the event.
        wait_until(lambda: psutil.Process(process.pid).net_connections("unix"), message="the hook connected")
        return process

    before = len(states(sandbox, "auth"))
    db = sqlite3.connect(sandbox.root / ".git" / "supervisor" / "state.db", timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # the engine's next write waits
    try:
        older = hook({"hook_event_name": "Notification", "notification_type": "agent_needs_input",
                      "message": "pick a schema"})
        newer = hook({"hook_event_name": "UserPromptSubmit", "prompt": "use the first one"})
        assert older.wait(timeout=30) == 0 and newer.wait(timeout=30) == 0  # neither held the agent up
        assert len(list(spooled.glob("*.json"))) == 2
    finally:
        db.execute("ROLLBACK")
        db.close()
    wait_until(lambda: not list(spooled.glob("*.json")), message="the spool read by the running engine")
    # The prompt, which ran last, decides: working, never waiting. (Its screen then shows no turn, as no prompt
    # reached the CLI, and the watcher may soon call it idle: the history says what the events did.)
    wait_until(lambda: "working" in states(sandbox, "auth")[before:], message="working after the prompt")
    since = states(sandbox, "auth")[before:]
    assert "waiting" not in since[since.index("working"):], since
    assert sandbox.agent("auth")["waiting_reason"] is None
    names = [e.get("hook_event_name") for e in events(sandbox, "auth", "hook")]
    assert names.count("Notification") == 1 and names.count("UserPromptSubmit") == 1  # each once

    # An event from before the prompt, spooled only now (its hook process was held up): it is recorded,
    # and the prompt that ran after it still decides.
    spool(spooled, {"hook_event_name": "Notification", "message": "old question",
                    "notification_type": "agent_needs_input"}, at=time.time() - 60, key="held-up")
    wait_until(lambda: "old question" in [e.get("message") for e in events(sandbox, "auth", "hook")],
               message="the late event recorded")
    since = states(sandbox, "auth")[before:]
    assert "waiting" not in since[since.index("working"):], since


def test_a_hook_cannot_speak_for_another_agent(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "auth", "--command", fake_claude(sandbox, "x", "turns: []\n"))
    sandbox.wait_state("auth", "idle")
    env = _pane_env(sandbox, "auth")
    # Outside every agent's tree, naming the agent but through the human's socket: not an agent.
    env["SUPERVISOR_SOCKET"] = str(sandbox.paths.engine_socket)
    _hook(env, {"hook_event_name": "Notification", "notification_type": "permission_prompt", "message": "x"})
    assert sandbox.state("auth") == "idle"


@pytest.mark.both_isolations
def test_stall_fires_after_stall_after_and_not_before(sandbox: Sandbox) -> None:
    config(sandbox, "stall_after: 3s\n")
    sandbox.sv("start", "auth", "--task", "go", "--command", demo(sandbox, "q", """
        turns:
          - [{work: 1s}, {run: "date +%s.%N"}, {quiet: 7s}, {say: "the answer came"}, {quiet: 60s}]
    """))

    def printed_at() -> float | None:  # the agent's own clock: when its last output before the silence was
        found = re.findall(r"^\d{10}\.\d+$", sandbox.screen("auth"), re.MULTILINE)
        return float(found[0]) if found else None

    said = wait_until(printed_at, message="the last output")
    assert sandbox.agent("auth")["isolation"] == sandbox.isolation
    sandbox.wait_state("auth", "stalled", timeout=15)
    stalled = triggers(sandbox, "auth", "stalled")[0]  # stored with the state it fired
    assert stalled["summary"].startswith("no progress for")
    # Not before stall_after of silence, and within a tick to see that last output and a tick after.
    assert said + 3 <= stalled["at"] <= said + 3 + 2
    # Output again clears it, with a resolved trigger.
    wait_until(lambda: [t["active"] for t in triggers(sandbox, "auth", "stalled")][:2] == [True, False],
               message="stall resolved")


def test_silent_cpu_is_working_not_stalled(sandbox: Sandbox) -> None:
    # Tool CPU is measured between two reads of the tree, a tick apart, from the first tick the screen did not
    # change: progress can be known two ticks after the last output, so a stall_after of 2 s raced it.
    config(sandbox, "stall_after: 4s\n")
    busy = "python3 -c 'import time; end=time.time()+6\\nwhile time.time()<end: pass'"
    sandbox.sv("start", "auth", "--task", "go", "--command", demo(sandbox, "t", f"""
        turns:
          - [{{say: "running the test suite"}}, {{run: "{busy}"}}]
    """))
    sandbox.wait_state("auth", "working")
    wait_until(lambda: any("(exit" in line or "✓ done" in line for line in sandbox.screen("auth").splitlines())
               or sandbox.state("auth") == "idle", timeout=20, message="the silent run to end")
    assert triggers(sandbox, "auth", "stalled") == []
    assert "stalled" not in states(sandbox, "auth")


def test_an_idle_agent_whose_tools_wake_silently_is_working(sandbox: Sandbox) -> None:
    """Quiet agents' trees are read every few ticks, not every tick: a silent burst of CPU still counts."""
    config(sandbox)
    go = sandbox.root.parent / "go"
    os.mkfifo(go)
    busy = f"{PYTHON} -c \"import time; end=time.time()+8\nwhile time.time()<end: pass\""
    sandbox.sv("start", "quiet", "--command", f"sh -c 'read line < {go}; {busy}; exec sleep 600'")
    sandbox.wait_state("quiet", "idle")
    with open(go, "w") as fifo:  # blocks no CPU while it waits, unlike a polling loop
        fifo.write("go\n")
    woke = time.time()
    sandbox.wait_state("quiet", "working", timeout=10)
    became = next(e for e in events(sandbox, "quiet") if e.get("state") == "working" and "previous" in e)
    # Within the slow-check period (5 ticks) and a tick to measure over, once Python has started the burst.
    assert became["at"] - woke <= 7
    sandbox.wait_state("quiet", "idle", timeout=20)  # and idle again once the silent run ends
    assert triggers(sandbox, "quiet", "stalled") == []


def test_a_hung_request_with_an_animated_spinner_is_stalled(sandbox: Sandbox) -> None:
    config(sandbox, "stall_after: 3s\n")
    command = fake_claude(sandbox, "h", """
        turns:
          - [{hang: 60s}]
    """, hooks=False)
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    sandbox.wait_state("auth", "working")
    wait_until(lambda: "esc to interrupt" in sandbox.screen("auth"), message="the spinner")
    sandbox.wait_state("auth", "stalled", timeout=15)


def test_timeout_kills_the_whole_tree(sandbox: Sandbox) -> None:
    config(sandbox)
    marker = f"sv-timeout-{os.getpid()}-{time.time()}"
    sandbox.sv("start", "auth", "--task", "go", "--command", demo(sandbox, "to", f"""
        turns:
          - [{{spawn: "{PYTHON} -c 'import time; time.sleep(300)' {marker}"}}, {{quiet: 60s}}]
    """))
    wait_until(lambda: _with_marker(marker), message="the agent's child")
    # Set once the child runs (a machine slow to start the agent cannot beat it to the timeout): the engine
    # reads supervisor.yaml again when it changes, and the new limit applies to the running agent.
    config(sandbox, "session_timeout: 2s\n")
    agent = sandbox.wait_state("auth", "killed", timeout=15)
    assert agent["reason"] == "timed out after 2s"
    assert _with_marker(marker) == []
    assert len(triggers(sandbox, "auth", "timeout")) == 1


def test_an_edit_of_supervisor_yaml_that_does_not_parse_is_not_applied(sandbox: Sandbox) -> None:
    config(sandbox, "session_timeout: ${AUTH_TIMEOUT}\n")
    sandbox.env["AUTH_TIMEOUT"] = "1h"  # the engine's environment: it expands the file
    sandbox.sv("start", "auth", "--command", demo(sandbox, "kept", "turns: []\n"))
    started = time.time()  # the agent started before this
    sandbox.wait_state("auth", "idle")
    del sandbox.env["AUTH_TIMEOUT"]  # a shell without it: the engine's verdict counts, not this shell's
    assert "warning" not in sandbox.sv("ls").stderr
    wait_until(lambda: time.time() > started + 3.5, message="the agent to be older than both limits below")
    path = sandbox.root / "supervisor.yaml"
    good = path.read_text()
    path.write_text(good.replace("session_timeout: ${AUTH_TIMEOUT}", "session_timeout: 2s\nbogus: 1"))

    def refused() -> list[dict[str, Any]]:
        db = sqlite3.connect(sandbox.root / ".git" / "supervisor" / "state.db")
        try:
            rows = db.execute("SELECT data FROM events WHERE kind = 'config_invalid'").fetchall()
        finally:
            db.close()
        return [json.loads(row[0]) for row in rows]

    error = wait_until(refused, message="the config_invalid event")[0]["error"]
    assert f"{path}:" in error and "bogus" in error
    listed = sandbox.sv("ls")  # works, and says the edit is not in force
    assert "auth" in listed.stdout
    assert f"supervisor: warning: {path}:" in listed.stderr
    assert "keeps the configuration it read before" in listed.stderr
    # Had that edit's 2 s applied, the tick that read it would have ended the agent; the next valid edit does.
    path.write_text(good.replace("session_timeout: ${AUTH_TIMEOUT}", "session_timeout: 3s"))
    agent = sandbox.wait_state("auth", "killed", timeout=15)
    assert agent["reason"] == "timed out after 3s"
    assert "warning" not in sandbox.sv("ls").stderr  # in force: nothing to warn of


def _with_marker(marker: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_on_failure_restarts_with_backoff_then_gives_up(sandbox: Sandbox) -> None:
    config(sandbox, "restart: on-failure\nmax_restarts: 2\n")
    sandbox.sv("start", "crashy", "--command", demo(sandbox, "cr", """
        start: [{say: "Error: lost the connection"}, {exit: 4}]
        turns: []
    """))
    agent = sandbox.wait_state("crashy", "failed", timeout=30)
    assert "gave up after 2 quick restarts" in agent["reason"]
    assert len(events(sandbox, "crashy", "restarting")) == 2

    def delays() -> list[float]:
        return [e["restart_in"] for e in events(sandbox, "crashy") if "restart_in" in e]

    assert delays() == [2.0, 4.0]  # growing backoff
    exits = triggers(sandbox, "crashy", "exited")
    assert len(exits) == 1  # alerted once, when it will not be restarted any more

    # A human's restart starts the count afresh: the next quick crash is retried, not given up on at once.
    sandbox.sv("restart", "crashy", check=False)
    wait_until(lambda: delays() == [2.0, 4.0, 2.0, 4.0], timeout=30,
               message="the crashes after the restart retried with the backoff from its start")
    # A stop while it waits out a backoff (4 s here) keeps it down.
    sandbox.sv("stop", "crashy")
    stopped = sandbox.ls()["crashy"]
    assert stopped["state"] == "stopped" and "not restarted" in stopped["reason"]
    restarts = len(events(sandbox, "crashy", "restarting"))
    ticks_pass(sandbox, 6)  # the backoff's 4 s gone by
    assert sandbox.state("crashy") == "stopped"
    assert len(events(sandbox, "crashy", "restarting")) == restarts


def test_a_run_longer_than_start_seconds_is_no_failed_start(sandbox: Sandbox) -> None:
    config(sandbox, "restart: on-failure\nstart_seconds: 1s\n")
    sandbox.sv("start", "slow", "--command", "sh -c 'sleep 2; exit 3'")
    wait_until(lambda: [e["restart_in"] for e in events(sandbox, "slow") if "restart_in" in e], timeout=20,
               message="the first restart planned")
    first = next(e for e in events(sandbox, "slow") if "restart_in" in e)
    assert first["restart_in"] == 1.0  # it had started fine: restarted at once, no backoff, nothing counted
    sandbox.sv("stop", "slow")


def test_exit_0_is_not_restarted_on_failure(sandbox: Sandbox) -> None:
    config(sandbox, "restart: on-failure\n")
    sandbox.sv("start", "fine", "--task", "bye", "--command", demo(sandbox, "ok", "turns:\n  - [{exit: 0}]\n"))
    sandbox.wait_state("fine", "exited")
    assert events(sandbox, "fine", "restarting") == []


def test_repeated_errors_fire_errors_and_a_usage_limit_is_no_error(sandbox: Sandbox) -> None:
    config(sandbox, "error_repeats: 2\nerror_window: 5m\n")
    sandbox.sv("start", "auth", "--task", "go", "--command", demo(sandbox, "er", """
        turns:
          - [{say: "Error: connection reset"}, {say: "Error: connection reset"}]
          - [{say: "Usage limit reached · resets in 1h"}]
    """))
    wait_until(lambda: triggers(sandbox, "auth", "errors"), message="errors trigger")
    summary = triggers(sandbox, "auth", "errors")[0]["summary"]
    assert summary == "the same error 2 times within 5m: Error: connection reset"
    sandbox.wait_state("auth", "idle")
    sandbox.sv("send", "auth", "again")
    sandbox.wait_state("auth", "limited")  # a state of its own (tests/test_limited.py), not an error
    assert len(triggers(sandbox, "auth", "errors")) == 1


def test_an_error_line_that_stays_on_screen_counts_once(sandbox: Sandbox) -> None:
    """The screen is read again at every look while the agent works on; the one error line it printed is
    still one error, however many looks see it."""
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "go", "--command", demo(sandbox, "er1", """
        turns:
          - [{say: "Error: connection reset"}, {work: 4s}]
          - [{say: "Error: connection reset"}]
    """))
    sandbox.wait_state("auth", "idle")
    assert triggers(sandbox, "auth", "errors") == []
    turns = states(sandbox, "auth").count("idle")
    sandbox.sv("send", "auth", "again")  # a second one, on a line of its own: two, not yet three
    wait_until(lambda: sandbox.screen("auth").count("Error: connection reset") == 2, message="the second error")
    idle_again(sandbox, "auth", turns)
    assert triggers(sandbox, "auth", "errors") == []


def test_error_lines_on_screen_are_not_counted_again_when_the_pane_is_resized(sandbox: Sandbox) -> None:
    """A taller pane takes rows back from its history: the two error lines on screen move down, and are still
    two errors (a user attaching from a bigger terminal does this)."""
    config(sandbox)
    sandbox.sv("start", "auth", "--task", "go", "--command", demo(sandbox, "er2", """
        turns:
          - [{run: "seq 1 80"}, {say: "Error: connection reset"}, {say: "Error: connection reset"}]
          - [{say: "first answer"}]
          - [{say: "second answer"}]
    """))
    sandbox.wait_state("auth", "idle")
    pane = sandbox.ls()["auth"]["pane"]
    for height, answer in (("60", "first answer"), ("75", "second answer")):
        sandbox.tmux("resize-window", "-t", pane, "-y", height)
        turns = states(sandbox, "auth").count("idle")
        sandbox.sv("send", "auth", "go on")
        wait_until(lambda answer=answer: answer in sandbox.screen("auth"), message=answer)
        idle_again(sandbox, "auth", turns)
    assert sandbox.screen("auth").count("Error: connection reset") == 2
    assert triggers(sandbox, "auth", "errors") == []


def test_a_process_working_in_another_worktree_is_an_escape(sandbox: Sandbox) -> None:
    config(sandbox)
    root = sandbox.root
    sandbox.sv("start", "auth", "--task", "go", "--command", demo(sandbox, "es", f"""
        turns:
          - [{{spawn: "cd {root} && sleep 60"}}, {{quiet: 60s}}]
    """))
    wait_until(lambda: triggers(sandbox, "auth", "escape"), timeout=20, message="escape trigger")
    escape = triggers(sandbox, "auth", "escape")[0]
    assert "the main checkout" in escape["summary"] and escape["cwd"] == str(root)


def test_agents_waiting_for_each_other_are_a_deadlock(sandbox: Sandbox) -> None:
    config(sandbox)
    supervisor = f"{PYTHON} -m supervisor"
    for me, other in (("alpha", "beta"), ("beta", "alpha")):
        sandbox.sv("start", me, "--task", "go", "--command", demo(sandbox, me, f"""
            turns:
              - [{{run: "{supervisor} report --waiting-for {other}"}}]
        """))
    wait_until(lambda: triggers(sandbox, "alpha", "deadlock") and triggers(sandbox, "beta", "deadlock"),
               timeout=20, message="deadlock on both")
    assert triggers(sandbox, "alpha", "deadlock")[0]["summary"] == "waits in a cycle: alpha → beta → alpha"


@pytest.mark.parametrize("hooks", [True, False])
def test_first_prompt_waits_for_a_slow_starting_cli(sandbox: Sandbox, hooks: bool) -> None:
    config(sandbox)
    record = sandbox.root.parent / "slow.jsonl"
    command = fake_claude(sandbox, "slow", "turns:\n  - [{say: hi}]\n", hooks=hooks)
    sandbox.sv("start", "auth", "--task", "hello there", "--command",
               f"{command} --start-delay 2s --drop-early-input --record {record}")
    wait_until(lambda: record.exists() and "hello there" in record.read_text(), message="delivered once ready")
    assert len(record.read_text().splitlines()) == 1


def test_a_dialog_before_the_first_prompt_waits_for_a_human_then_gets_the_task(sandbox: Sandbox) -> None:
    config(sandbox)
    record = sandbox.root.parent / "trust.jsonl"
    command = fake_claude(sandbox, "tr", """
        start: [{ask: "Do you trust the files in this folder?"}]
        turns:
          - [{say: working on it}]
    """, hooks=False)
    out = sandbox.sv("start", "auth", "--task", "fix the bug", "--command", f"{command} --record {record}")
    assert "it needs you first: Do you trust the files in this folder?" in out.stdout
    agent = sandbox.ls()["auth"]
    assert agent["state"] == "waiting"
    assert not record.exists()  # nothing was typed into the dialog
    sandbox.tmux("send-keys", "-t", agent["pane"], "1")  # the human answers it
    wait_until(lambda: record.exists() and "fix the bug" in record.read_text(), message="task delivered after")
