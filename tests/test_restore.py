"""Restart and restore resume each agent's own conversation by its id (SPEC §13), with real tmux, git and engines.

The fake `claude` is the demo agent with `--claude --look claude` (tests/test_watching.py): it reports its session
id through Claude Code's hooks, keeps its prompts in its conversation's file, and `--resume ID` shows
`resumed conversation ID` and that conversation's prompts, then goes on at its next turn."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from tests.conftest import DEMO_AGENT, Sandbox, process_gone, wait_until
from tests.test_pane_identity import kill_tmux_server
from tests.test_watching import config, events, fake_claude

TWO_TURNS = """
turns:
  - [{say: "first turn ran"}]
  - [{say: "second turn ran"}]
"""


def session_of(box: Sandbox, name: str) -> str:
    """The conversation id the engine recorded for the agent (from its hooks)."""
    return str(wait_until(lambda: box.agent(name).get("session_id"), message=f"{name}'s session id"))


def launched(box: Sandbox, name: str) -> list[str]:
    return [e["command"] for e in events(box, name, "launched")]


def prompts(record: Path) -> list[str]:
    if not record.exists():
        return []
    return [json.loads(line)["text"] for line in record.read_text().splitlines() if line.strip()]


def demo_recording(box: Sandbox, name: str, script: str) -> tuple[str, Path]:
    """The demo agent (profile demo: it keeps no conversation to resume) recording the prompts it is given."""
    path = box.root.parent / f"{name}.yaml"
    path.write_text(script)
    record = box.root.parent / f"{name}.prompts.jsonl"
    return f"{DEMO_AGENT} --script {path} --record {record}", record


def in_pane(box: Sandbox, agent: dict[str, Any], field: str) -> str:
    return box.tmux("display-message", "-p", "-t", agent["pane"], f"#{{{field}}}").stdout.strip()


def test_restart_resumes_the_conversation_by_its_id_and_the_cli_shows_which(sandbox: Sandbox) -> None:
    config(sandbox)
    command = fake_claude(sandbox, "c", TWO_TURNS)
    sandbox.sv("start", "auth", "--task", "remember the word pineapple", "--command", command)
    sandbox.wait_state("auth", "idle")
    session = session_of(sandbox, "auth")

    sandbox.sv("restart", "auth")
    sandbox.wait_state("auth", "idle")
    wait_until(lambda: f"resumed conversation {session}" in sandbox.screen("auth"),
               message="the resumed conversation's id on the fake claude's screen")
    assert "remember the word pineapple" in sandbox.screen("auth")  # its conversation again, not given anew
    assert [e for e in events(sandbox, "auth") if e["kind"] == "task_delivered"][1:] == []
    assert launched(sandbox, "auth")[-1] == f"{command} --resume={session}"
    sandbox.sv("send", "auth", "go on")
    wait_until(lambda: "second turn ran" in sandbox.screen("auth"), message="the conversation going on at turn 2")
    assert sandbox.agent("auth")["session_id"] == session


def test_restart_without_a_known_id_starts_afresh_with_the_task(sandbox: Sandbox) -> None:
    """No `--continue` (the newest conversation in the folder may be another's): a new one, given its task."""
    config(sandbox)
    command, record = demo_recording(sandbox, "d", TWO_TURNS)
    sandbox.sv("start", "docs", "--task", "write the docs", "--command", command)
    sandbox.wait_state("docs", "idle")
    sandbox.sv("restart", "docs")
    wait_until(lambda: prompts(record) == ["write the docs", "write the docs"], message="the task given again")
    assert launched(sandbox, "docs") == [command, command]


def test_restore_all_brings_back_what_the_tmux_server_took_each_in_its_own_conversation(sandbox: Sandbox) -> None:
    config(sandbox)
    claude = fake_claude(sandbox, "c", TWO_TURNS)
    demo, record = demo_recording(sandbox, "d", TWO_TURNS)
    ender, _ = demo_recording(sandbox, "e", 'turns:\n  - [{say: "all done"}, {exit: 0}]\n')
    sandbox.sv("start", "auth", "--task", "remember the word pineapple", "--command", claude)
    sandbox.sv("helper", "tests", "--role", "test-agent", "--parent", "auth", "--task", "remember the word mango")
    sandbox.sv("start", "docs", "--task", "write the docs", "--command", demo)
    sandbox.sv("start", "gone", "--task", "finish", "--command", ender)
    for name in ("auth", "auth.tests", "docs"):
        sandbox.wait_state(name, "idle")
    sandbox.wait_state("gone", "exited")  # ended by itself before the server died
    sessions = {name: session_of(sandbox, name) for name in ("auth", "auth.tests")}
    assert sessions["auth"] != sessions["auth.tests"]
    before = {name: sandbox.agent(name) for name in ("auth", "auth.tests", "docs", "gone")}

    kill_tmux_server(sandbox)
    for name in ("auth", "auth.tests", "docs"):
        assert sandbox.wait_state(name, "exited")["restorable"] is True
    assert sandbox.ls()["gone"]["restorable"] is False
    listed = {line.split()[0]: line.split()[2:4] for line in sandbox.sv("ls").stdout.splitlines()[1:]}
    assert listed["auth"] == ["exited", "(restorable)"] and listed["gone"][1] != "(restorable)"

    done = sandbox.sv("restore", "--all")
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["auth", "auth.tests", "docs"]
    assert f"resumed conversation {sessions['auth']}" in done.stdout
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines()}
    assert lines["docs"].endswith("(started afresh, its task given again)")
    # Answered once each had left `starting`: the resumed CLI did not end as it started.
    assert all(lines[name].split()[1] in ("idle", "working") for name in ("auth", "auth.tests")), lines
    for name in ("auth", "auth.tests", "docs"):
        sandbox.wait_state(name, "idle")
    after = sandbox.ls()
    for name in ("auth", "auth.tests"):
        assert launched(sandbox, name)[-1] == f"{claude} --resume={sessions[name]}"
        wait_until(lambda n=name: f"resumed conversation {sessions[n]}" in sandbox.screen(n),
                   message=f"{name} in its own conversation")
    assert "remember the word pineapple" in sandbox.screen("auth")
    assert "remember the word mango" in sandbox.screen("auth.tests")
    # The same worktree, branch, contract and port block; the helper back under its parent, beside its pane.
    for name in ("auth", "auth.tests", "docs"):
        again = sandbox.agent(name)
        for field in ("worktree", "branch", "port", "parent", "contract"):
            assert again[field] == before[name][field], (name, field)
        assert not after[name]["restorable"]
    assert in_pane(sandbox, after["auth.tests"], "session_name") == in_pane(sandbox, after["auth"], "session_name")
    assert in_pane(sandbox, after["auth"], "pane_current_path") == before["auth"]["worktree"]
    # The demo agent keeps no conversation: it was started afresh and given its task again.
    wait_until(lambda: prompts(record) == ["write the docs", "write the docs"], message="docs' task given again")
    # The one that had ended by itself stayed down; named, it comes back.
    assert sandbox.ls()["gone"]["state"] == "exited"
    assert len(launched(sandbox, "gone")) == 1
    refused = sandbox.sv("restore", "auth", check=False)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[0] == "supervisor: error: auth's pane is alive: there is nothing to restore"
    sandbox.sv("restore", "gone", check=False)  # it ends again at once, which restore may report as a failed start
    assert len(launched(sandbox, "gone")) == 2
    assert sandbox.sv("restore", "--all").stdout.startswith("nothing to restore")


def test_limits_restore_auto_restores_them_when_the_engine_starts(sandbox: Sandbox) -> None:
    config(sandbox, "restore: auto\n")
    claude = fake_claude(sandbox, "c", TWO_TURNS)
    sandbox.sv("start", "auth", "--task", "remember the word pineapple", "--command", claude)
    sandbox.wait_state("auth", "idle")
    session = session_of(sandbox, "auth")
    engine = sandbox.engine_pid()  # a reboot: the engine and the tmux server both gone at once
    os.kill(engine, signal.SIGKILL)
    wait_until(lambda: process_gone(engine), message="the engine gone")
    kill_tmux_server(sandbox)

    sandbox.sv("engine", "start")  # nothing asked of it but to run
    wait_until(lambda: [e for e in events(sandbox, "auth", "restored")], timeout=30, message="auth restored")
    sandbox.wait_state("auth", "idle")
    assert launched(sandbox, "auth")[-1] == f"{claude} --resume={session}"
    wait_until(lambda: f"resumed conversation {session}" in sandbox.screen("auth"), message="its own conversation")
    assert sandbox.ls()["auth"]["restorable"] is False


def test_restore_takes_several_names_a_state_and_names_with_all_as_the_other_bulk_verbs_do(
        sandbox: Sandbox) -> None:
    config(sandbox)
    commands = {name: demo_recording(sandbox, name, TWO_TURNS)[0] for name in ("a", "b", "c", "d")}
    ender, _ = demo_recording(sandbox, "e", 'turns:\n  - [{say: "all done"}, {exit: 0}]\n')
    for name, command in commands.items():
        sandbox.sv("start", name, "--task", f"work {name}", "--command", command, "--no-wait")
    sandbox.sv("start", "gone", "--task", "finish", "--command", ender)
    for name in commands:
        sandbox.wait_state(name, "idle")
    sandbox.wait_state("gone", "exited")
    sandbox.sv("stop", "d")
    kill_tmux_server(sandbox)
    for name in ("a", "b", "c"):
        assert sandbox.wait_state(name, "exited")["restorable"] is True

    several = sandbox.sv("restore", "b", "a", "b")  # several names, each once, parents before helpers
    assert [line.split(":")[0] for line in several.stdout.splitlines()] == ["a", "b"]
    assert sandbox.state("c") == "exited" and len(launched(sandbox, "c")) == 1

    # A name and --all combine: the named one (it ended by itself) and every restorable one (c).
    combined = sandbox.sv("restore", "gone", "--all", check=False)  # gone ends again at once: maybe a failure
    assert {line.split(":")[0] for line in combined.stdout.splitlines()} <= {"c", "gone"}
    assert len(launched(sandbox, "c")) == 2 and len(launched(sandbox, "gone")) == 2
    assert len(launched(sandbox, "a")) == 2, "a, back already, was not started again"

    by_state = sandbox.sv("restore", "--state", "stopped")  # the stopped one, not those running again
    assert [line.split(":")[0] for line in by_state.stdout.splitlines()] == ["d"]
    for name in commands:
        sandbox.wait_state(name, "idle", "working")
    assert [len(launched(sandbox, name)) for name in commands] == [2, 2, 2, 2]
    again = sandbox.sv("restore", "--state", "stopped").stdout
    assert again.startswith("nothing to restore: no ended agent is stopped")


def test_restore_refuses_bad_requests_in_one_line(sandbox: Sandbox) -> None:
    config(sandbox)
    neither = sandbox.sv("restore", check=False)
    assert neither.returncode == 2
    assert neither.stderr.splitlines()[0].startswith("supervisor: error: name the agents to restore, or --all")
    both = sandbox.sv("restore", "x", "--all", check=False)  # they combine; the name must still exist
    assert (both.returncode, both.stderr.splitlines()[0]) == (2, "supervisor: error: no agent named 'x'")
    nowhere = sandbox.sv("restore", "x", "--host", "far", check=False)
    assert (nowhere.returncode, nowhere.stderr.splitlines()[0]) == (
        2, "supervisor: error: no agent is on host 'far'")
    unknown = sandbox.sv("restore", "nobody", check=False)
    assert (unknown.returncode, unknown.stderr.splitlines()[0]) == (2, "supervisor: error: no agent named 'nobody'")
