"""The engine outlives what it watches: it runs apart from the tmux server and from the terminal that started it,
sees the server die within a tick, ends every agent on it as `tmux server ended` (marked restorable, nothing
left asking for a human), says so in one alert, and carries on (real tmux, real engine, the demo agent)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import subprocess
from pathlib import Path
from typing import Any

import psutil

from supervisor.ui.model import Board
from tests.conftest import PYTHON, Sandbox, process_gone, wait_until
from tests.test_pane_identity import engine_request, kill_tmux_server
from tests.test_watching import config, demo, fake_claude, ticks_pass

ENDED = "tmux server ended"
ASKS = """
    turns:
      - [{ask: "rm -rf build/"}, {say: after the question}]
"""


def alerts(box: Sandbox) -> list[dict[str, Any]]:
    return list(json.loads(box.sv("alerts", "ls", "--json", "--limit", "100").stdout))


def tmux_server_pid(box: Sandbox) -> int:
    return int(box.tmux("display-message", "-p", "#{pid}").stdout.strip())


def all_events(box: Sandbox) -> list[dict[str, Any]]:
    """The event log as the dashboard reads it (the engine's `changes`)."""
    return list(engine_request(box, "changes", after=0, timeout=0, limit=10000)["events"])


# The engine's watch ticks that may pass after the server died before its agents are ended: the tick under way
# may have listed the panes just before; the next one finds them gone and ends them before it counts itself.
SEEN_WITHIN = 2


def ticks(box: Sandbox) -> int:
    """How many ticks the engine's watch has ended (asked of its socket: no Python start-up per look)."""
    return int(engine_request(box, "status")["ticks"])


def tmux_running(box: Sandbox) -> bool:
    return box.tmux("list-sessions").returncode == 0


def test_the_engine_outlives_its_tmux_server_and_tells_once_of_every_agent_it_took(sandbox: Sandbox,
                                                                                  tmp_path: Path) -> None:
    told = tmp_path / "told"
    told.mkdir()
    config(sandbox)
    keep = f"printf '%s' \\\"$SUPERVISOR_ALERT_TEXT\\\" > {told}/$SUPERVISOR_ALERT_ID.txt"
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text()  # group_wait 0: one alert, not a group
                         + f"alerts:\n  tmux: false\n  group_wait: 0s\n  command: \"{keep}\"\n")
    names = ("api", "db", "web")
    for name in names:
        sandbox.sv("start", name, "--command", "sleep 600")
    for name in names:
        sandbox.wait_state(name, "working", "idle")
    engine = sandbox.engine_pid()
    server = tmux_server_pid(sandbox)
    # Apart: not the server's descendant, not in its session nor in the session of the command that started it.
    assert server not in [parent.pid for parent in psutil.Process(engine).parents()]
    assert os.getsid(engine) not in (os.getsid(server), os.getsid(0))
    assert psutil.Process(engine).terminal() is None

    os.kill(server, signal.SIGKILL)
    wait_until(lambda: process_gone(server), message="the tmux server dead")
    seen_by = ticks(sandbox) + SEEN_WITHIN

    def all_ended() -> dict[str, dict[str, Any]] | None:
        passed = ticks(sandbox)  # read before the look: the ticks that had ended before it
        agents = sandbox.ls()
        if all(agents[name]["state"] == "exited" for name in names):
            return agents
        assert passed < seen_by, f"not ended {SEEN_WITHIN} ticks after the server died: {agents}"
        return None

    agents = wait_until(all_ended, timeout=60, message="every agent on the server ended")  # (a stuck engine)
    assert sandbox.engine_pid() == engine  # the same engine saw it: it did not go with the server
    for name in names:
        assert agents[name]["reason"] == ENDED
        assert agents[name]["restorable"] is True
        assert agents[name]["waiting_reason"] is None and agents[name]["exit_code"] is None

    # It keeps watching, and nothing it does while no server runs starts one.
    ticks_pass(sandbox, 3)
    assert not tmux_running(sandbox)
    status = json.loads(sandbox.sv("engine", "status", "--json").stdout)
    assert status["pid"] == engine and status["tmux_running"] is False
    assert "tmux: not running" in sandbox.sv("engine", "status").stdout

    # One alert about the server names all three. A later alert is written no earlier than one queued before it.
    sandbox.sv("start", "later", "--command", "sh -c 'exit 5'")  # the next start makes a new server
    wait_until(lambda: any(a["agent"] == "later" for a in alerts(sandbox)), timeout=20, message="the later alert")
    about_them = [a for a in alerts(sandbox) if a["agent"] != "later"]
    assert len(about_them) == 1, [(a["agent"], a["title"]) for a in about_them]
    (alert,) = about_them
    assert alert["subject"] == "tmux:" and sorted(alert["agents"]) == list(names)
    text = wait_until(lambda: (told / f"{alert['id']}.txt").is_file() and (told / f"{alert['id']}.txt").read_text(),
                      message="the alert through the command channel")
    assert "supervisor's tmux server" in text and "agents: api, db, web" in text
    assert not process_gone(engine)


def test_an_agent_asking_when_the_server_dies_asks_nothing_afterwards(sandbox: Sandbox) -> None:
    config(sandbox)
    # One asks through its hook (the engine holds the request), one with a dialog on its screen.
    sandbox.sv("start", "auth", "--task", "clean", "--command", fake_claude(sandbox, "a", ASKS))
    sandbox.sv("start", "ui", "--task", "clean", "--command", demo(sandbox, "u", ASKS))
    assert sandbox.wait_state("auth", "waiting")["waiting_reason"] == "approval: Bash(rm -rf build/)"
    assert sandbox.wait_state("ui", "waiting")["waiting_reason"]
    board = Board()  # the dashboard's own model of the same listing and event log
    board.set_agents(json.loads(sandbox.sv("ls", "--json").stdout))
    board.apply_events(all_events(sandbox))
    assert "ASK" in board.badges("auth").plain and "ASK" in board.badges("ui").plain

    kill_tmux_server(sandbox)
    for name in ("auth", "ui"):
        agent = sandbox.wait_state(name, "exited", timeout=10)
        assert (agent["reason"], agent["waiting_reason"], agent["restorable"]) == (ENDED, None, True)
    assert "needs you" not in sandbox.sv("ls").stdout

    board.set_agents(json.loads(sandbox.sv("ls", "--json").stdout))
    board.apply_events(all_events(sandbox))
    for name in ("auth", "ui"):
        assert "ASK" not in board.badges(name).plain
        (item,) = [item for item in board.attention() if item.name == name]
        assert (item.kind, item.reason) == ("exited", ENDED)
    # The request its hook held was let go: nothing reports an answer delivered to a process that is gone.
    done = sandbox.sv("approve", "auth", check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == ("supervisor: error: auth is not waiting for an approval (it is exited); "
                                           f"its request Bash(rm -rf build/) was dropped: {ENDED}")
    (held,) = engine_request(sandbox, "approvals", name="auth")
    assert (held["status"], held["reason"]) == ("dropped", ENDED)


def test_only_agents_the_server_took_are_restorable_and_a_launch_clears_the_mark(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "done", "--command", demo(sandbox, "d", "turns:\n  - [{exit: 0}]\n"))
    sandbox.sv("start", "halted")
    sandbox.sv("start", "closed")
    sandbox.sv("start", "taken")
    for name in ("halted", "closed", "taken"):
        sandbox.wait_state(name, "idle")
    sandbox.sv("send", "done", "go")
    sandbox.wait_state("done", "exited")
    sandbox.sv("stop", "halted")
    sandbox.tmux("kill-window", "-t", "=closed:")
    assert sandbox.wait_state("closed", "exited")["reason"] == "its pane is gone (its window was closed)"

    kill_tmux_server(sandbox)
    assert sandbox.wait_state("taken", "exited", timeout=10)["reason"] == ENDED
    agents = sandbox.ls()
    assert {name: agents[name]["restorable"] for name in agents} == {
        "done": False, "halted": False, "closed": False, "taken": True}
    assert (agents["done"]["state"], agents["halted"]["state"]) == ("exited", "stopped")

    sandbox.sv("restart", "taken")  # on a new server
    assert sandbox.wait_state("taken", "idle")["restorable"] is False
    assert tmux_running(sandbox)


def test_the_starting_terminal_going_away_leaves_the_engine_running(sandbox: Sandbox) -> None:
    """The engine is started from a terminal (a pty, as the controlling terminal of a shell's session); the
    terminal hangs up and its session gets SIGHUP, and the engine itself is sent one too."""
    pid, terminal = pty.fork()
    if pid == 0:  # the shell in the terminal: start the engine, then stay
        # as a terminal's shell has it: a hangup ends it (run under `nohup`, the tests would hand it SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        os.chdir(sandbox.root)
        os.execve("/bin/sh", ["sh", "-c", f"{PYTHON} -m supervisor engine start; exec sleep 600"], sandbox.env)
    try:
        wait_until(lambda: sandbox.sv("engine", "status", check=False).returncode == 0, timeout=30,
                   message="the engine started from the terminal")
        engine = sandbox.engine_pid()
        assert os.getsid(engine) != os.getsid(pid)
        os.close(terminal)  # the terminal goes away: the kernel hangs up its session
        os.killpg(os.getsid(pid), signal.SIGHUP)
        wait_until(lambda: process_gone(pid), message="the terminal's shell ended by the hangup")
        os.kill(engine, signal.SIGHUP)  # as a shell that hangs up its jobs would
        ticks_pass(sandbox, 2)
        assert sandbox.engine_pid() == engine
        sandbox.sv("start", "after")
        sandbox.wait_state("after", "idle")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def test_panes_get_no_variable_of_the_terminal_that_started_the_engine(sandbox: Sandbox) -> None:
    terminal = {"TMUX": "/tmp/elsewhere,1,0", "TMUX_PANE": "%77", "WINDOWID": "4242", "KITTY_WINDOW_ID": "3",
                "TERM_PROGRAM": "someterm", "COLORTERM": "truecolor", "SSH_TTY": "/dev/pts/9"}
    env = {**sandbox.env, **terminal, "USERS_OWN_SETTING": "kept"}
    started = subprocess.run([PYTHON, "-m", "supervisor", "engine", "start"], cwd=sandbox.root, env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert started.returncode == 0, started.stderr
    assert not {"WINDOWID", "TMUX", "KITTY_WINDOW_ID"} & set(psutil.Process(sandbox.engine_pid()).environ())

    def pane_env(name: str) -> dict[str, str]:
        agent = sandbox.ls()[name]
        return dict(psutil.Process(agent["pid"]).environ()) | {"pane": agent["pane"]}

    sandbox.sv("start", "first")  # on the tmux server the engine starts
    sandbox.wait_state("first", "idle")
    seen = [pane_env("first")]
    kill_tmux_server(sandbox)
    sandbox.wait_state("first", "exited", timeout=10)
    sandbox.sv("start", "second")  # on the next one, started by the same engine
    sandbox.wait_state("second", "idle")
    seen.append(pane_env("second"))
    for pane in seen:
        assert pane["USERS_OWN_SETTING"] == "kept"
        assert not {"WINDOWID", "KITTY_WINDOW_ID", "SSH_TTY", "COLORTERM"} & set(pane)
        assert pane["TMUX_PANE"] == pane["pane"] and pane["TERM_PROGRAM"] == "tmux"
        assert pane["TMUX"].startswith(str(sandbox.tmux_socket))
