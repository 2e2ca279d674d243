"""Codex agents under the real engine, with a stand-in of the Codex CLI (tests/fixtures/codex/fake_codex.py)
that keeps one tool daemon per CODEX_HOME as the real one does: each agent's daemon is its own, and `stop` and
`rm` end it, never another agent's."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import PYTHON, Sandbox, host_pid, process_gone, wait_until
from tests.test_watching import events

FAKE_CODEX = Path(__file__).parent / "fixtures" / "codex" / "fake_codex.py"
COMMAND = f"{shlex.quote(PYTHON)} {shlex.quote(str(FAKE_CODEX))}"


def start(box: Sandbox, name: str) -> None:
    box.sv("start", name, "--agent", "codex", "--command", COMMAND, "--task", f"hello from {name}")
    box.wait_state(name, "idle", timeout=30)


def daemon_of(box: Sandbox, name: str) -> tuple[int, int]:
    """The pids of the app-server daemon the agent's Codex uses (by the CODEX_HOME it runs with), and of the
    tool that daemon runs."""
    agent_pid = box.agent(name)["pid"]
    environ = psutil.Process(agent_pid).environ()
    codex_home = Path(environ.get("CODEX_HOME") or box.home / ".codex")
    wait_until(lambda: (codex_home / "tool.pid").exists(), message=f"{name}'s daemon")
    # The files hold the pids the agent's sandbox gives them.
    daemon, tool = (host_pid(agent_pid, int((codex_home / f).read_text())) for f in ("app-server.pid", "tool.pid"))
    assert psutil.Process(daemon).environ().get("CODEX_HOME") == environ.get("CODEX_HOME")
    return daemon, tool


def alive(pid: int) -> bool:
    return not process_gone(pid)


def test_stopping_one_codex_agent_leaves_the_others_daemon_and_tool_running(sandbox: Sandbox) -> None:
    start(sandbox, "x1")
    start(sandbox, "x4")
    (d1, t1), (d4, t4) = daemon_of(sandbox, "x1"), daemon_of(sandbox, "x4")
    sandbox.sv("stop", "x1")
    wait_until(lambda: process_gone(d1) and process_gone(t1), message="x1's daemon and tool ended")
    assert alive(d4) and alive(t4)
    assert sandbox.state("x4") == "idle"


@pytest.mark.parametrize("command", [["stop", "x1"], ["rm", "--force", "x1"]])
def test_stop_and_rm_end_the_daemon_that_outlived_the_agents_exit(sandbox: Sandbox, command: list[str]) -> None:
    # Without a sandbox: in one, the daemon ends with the agent (its PID namespace goes), as the next test shows;
    # what holds here is stop and rm finding it by the CODEX_HOME it carries.
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text() + "isolation: none\n")
    start(sandbox, "x1")
    daemon, tool = daemon_of(sandbox, "x1")
    sandbox.sv("send", "x1", "/exit")
    sandbox.wait_state("x1", "exited", timeout=20)
    assert alive(daemon) and alive(tool)  # Codex leaves it running when it quits
    sandbox.sv(*command)
    wait_until(lambda: process_gone(daemon) and process_gone(tool), message=f"the daemon ended with {command[0]}")


def test_in_a_sandbox_the_daemon_ends_with_the_agents_exit(sandbox: Sandbox) -> None:
    start(sandbox, "x1")
    daemon, tool = daemon_of(sandbox, "x1")
    sandbox.sv("send", "x1", "/exit")
    sandbox.wait_state("x1", "exited", timeout=20)
    wait_until(lambda: process_gone(daemon) and process_gone(tool), message="the daemon ended with the agent")


def test_a_first_prompt_codex_echoes_late_is_typed_once(sandbox: Sandbox) -> None:
    """Codex may show its composer and then read nothing for seconds: the paste lands late, and a second paste
    (after 3 s without an echo) doubled the task."""
    command = f"env FAKE_CODEX_DEAF=4.5 {COMMAND}"
    sandbox.sv("start", "x1", "--agent", "codex", "--command", command, "--task", "write the parser")
    sandbox.wait_state("x1", "idle", timeout=40)
    prompts = (sandbox.root / ".git" / "supervisor" / "agents" / "x1" / "prompts.log").read_text()
    assert prompts == "write the parser\n"


def test_a_resumed_conversations_old_limit_is_not_new(sandbox: Sandbox) -> None:
    """`codex resume` prints the old conversation again: its rate limit was over when it was restarted."""
    sandbox.sv("start", "x1", "--agent", "codex", "--command", COMMAND, "--task", "fail")
    limited = sandbox.wait_state("x1", "limited", timeout=30)
    assert limited["waiting_reason"] == "rate limit: no reset time given"
    sandbox.sv("restart", "x1")
    wait_until(lambda: "429 Too Many Requests" in sandbox.screen("x1") and sandbox.state("x1") == "idle",
               timeout=30, message="the resumed conversation")
    sandbox.sv("send", "x1", "hello")  # a turn later, the watcher has looked at the replay many times
    wait_until(lambda: "• Done." in sandbox.screen("x1") and sandbox.state("x1") == "idle", timeout=30,
               message="the next turn")
    assert [e["active"] for e in limit_triggers(sandbox, "x1")] == [True, False]
    assert [e for e in events(sandbox, "x1", "trigger") if e["trigger"] == "errors"] == []


def limit_triggers(box: Sandbox, name: str) -> list[dict[str, Any]]:
    return [e for e in events(box, name, "trigger") if e["trigger"] == "limited"]
