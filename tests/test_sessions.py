"""Sessions end to end: real tmux panes, real git worktrees, the real engine and store."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import DEMO_AGENT, PYTHON, Sandbox, process_gone, wait_until


def script(box: Sandbox, name: str, text: str) -> tuple[str, Path]:
    """A demo-agent command running `text` as its script, and the file it records prompts in."""
    path = box.root.parent / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    record = box.root.parent / f"{name}.prompts.jsonl"
    return f"{DEMO_AGENT} --script {path} --record {record}", record


def prompts(record: Path) -> list[str]:
    if not record.exists():
        return []
    return [json.loads(line)["text"] for line in record.read_text().splitlines() if line.strip()]


def test_start_creates_worktree_branch_and_pane_and_delivers_the_task(sandbox: Sandbox) -> None:
    command, record = script(sandbox, "a", """
        turns:
          - [{say: on it}, {work: 0.5s}]
    """)
    out = sandbox.sv("start", "auth", "--task", "Harden the auth package", "--command", command)
    assert "task delivered" in out.stdout
    worktree = sandbox.root.parent / "repo-worktrees" / "auth"
    assert worktree.is_dir()
    assert sandbox.git("rev-parse", "--abbrev-ref", "HEAD", cwd=worktree) == "agent/auth/work"
    # The agent records a prompt just after it takes it off its input line, which is what `start` waits for.
    wait_until(lambda: prompts(record), message="the task recorded")
    assert prompts(record) == ["Harden the auth package"]  # delivered exactly once

    agent = sandbox.ls()["auth"]
    assert agent["state"] in ("working", "idle")
    assert agent["worktree"] == str(worktree)
    assert agent["branch"] == "agent/auth/work"
    assert agent["host"] == "local"  # the machine it runs on
    assert agent["parent"] is None and agent["level"] == 1
    assert agent["pane"].startswith("%")
    assert psutil.pid_exists(agent["pid"])
    for key in ("name", "parent", "level", "role", "state", "state_since", "task", "worktree", "branch", "pane",
                "pid", "started_at", "last_activity_at", "cpu_percent", "rss_bytes", "waiting_reason",
                "exit_code"):
        assert key in agent
    # The task runs, then the agent goes quiet: working, then idle.
    sandbox.wait_state("auth", "idle")
    assert agent["rss_bytes"] is None or agent["rss_bytes"] >= 0
    idle = sandbox.ls()["auth"]
    assert idle["rss_bytes"] > 1_000_000  # measured from the real process tree
    shown = json.loads(sandbox.sv("show", "auth", "--json").stdout)
    newest = shown["events"][-1]  # nothing happens to an idle agent in between
    assert shown["host"] == "local"
    assert shown["last_event"]["kind"] == newest["kind"] and shown["last_event"]["at"] == newest["ts"]
    assert "last_event:" in sandbox.sv("show", "auth").stdout
    assert re.search(r"watching: \d+ ticks, the last took \d+ ms", sandbox.sv("engine", "status").stdout)


def test_multiline_task_and_literal_send(sandbox: Sandbox) -> None:
    command, record = script(sandbox, "m", """
        turns:
          - [{say: first}]
          - [{say: second}]
    """)
    sandbox.sv("start", "auth", "--task", "line one\nline two", "--command", command)
    sandbox.wait_state("auth", "idle")
    tricky = "$(touch /tmp/pwned) `id` 'quoted' \"double\" -n ; && \x1b[201~ end"
    sandbox.sv("send", "auth", tricky)
    wait_until(lambda: len(prompts(record)) == 2, message="second prompt recorded")
    assert prompts(record)[0] == "line one\nline two"
    # Literal: shell syntax arrives as typed; the escape sequence that would end a bracketed paste is removed.
    assert prompts(record)[1] == "$(touch /tmp/pwned) `id` 'quoted' \"double\" -n ; && [201~ end"


def test_send_reads_stdin_and_refuses_an_ended_agent(sandbox: Sandbox) -> None:
    command, record = script(sandbox, "s", """
        turns:
          - [{say: a}]
          - [{exit: 0}]
    """)
    sandbox.sv("start", "auth", "--command", command)
    sandbox.wait_state("auth", "idle")
    sandbox.sv("send", "auth", "-", input="from stdin\n")
    wait_until(lambda: prompts(record) == ["from stdin"], message="stdin prompt")
    sandbox.sv("send", "auth", "bye")
    sandbox.wait_state("auth", "exited")
    done = sandbox.sv("send", "auth", "hello?", check=False)
    assert done.returncode == 1
    assert "supervisor: error: auth is exited" in done.stderr
    assert "Traceback" not in done.stderr


def test_exit_code_is_recorded_and_transcript_kept(sandbox: Sandbox) -> None:
    command, _ = script(sandbox, "x", """
        turns:
          - [{say: about to fail}, {exit: 3}]
    """)
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    agent = sandbox.wait_state("auth", "exited")
    assert agent["exit_code"] == 3
    assert agent["pid"] is None
    log = sandbox.sv("log", "auth").stdout
    assert "about to fail" in log
    assert "\x1b" not in log  # readable text unless --raw
    shown = sandbox.agent("auth")
    assert any(e["kind"] == "exited" and e["exit_code"] == 3 for e in shown["events"])


def test_the_users_tmux_conf_keeps_its_keys_but_cannot_end_the_agents(sandbox: Sandbox) -> None:
    """The supervisor's tmux server reads the user's ~/.tmux.conf (their keys work when they attach); the
    options the agents' panes depend on are set after it."""
    (sandbox.home / ".tmux.conf").write_text(
        "set -g destroy-unattached on\n"  # every session of ours is detached: all would go at once
        "set -g remain-on-exit off\n"  # an ended agent's pane, and its exit status, would vanish
        "set -g exit-empty on\n"
        "set -g history-limit 10\n"  # its transcript would lose lines
        "set -g base-index 1\nset -g pane-base-index 1\n"
        "bind-key F9 display-message mine\n")
    command, _ = script(sandbox, "u", """
        turns:
          - [{say: one}, {exit: 3}]
    """)
    sandbox.sv("start", "other")
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    assert sandbox.wait_state("auth", "exited")["exit_code"] == 3
    assert sandbox.wait_state("other", "idle")["state"] == "idle"
    assert "display-message mine" in sandbox.tmux("list-keys", "-T", "prefix", "F9").stdout
    assert sandbox.tmux("show-options", "-gv", "history-limit").stdout.strip() == "50000"


def test_stop_ends_the_whole_tree_including_escaped_and_stubborn_processes(sandbox: Sandbox) -> None:
    marker = f"sv-test-sleeper-{os.getpid()}"
    sleeper = f"{sys.executable} -c 'import time; time.sleep(300)'"
    command, _ = script(sandbox, "t", f"""
        start:
          - {{spawn: "{sleeper} {marker}-child"}}
          - {{spawn_detached: "{sleeper} {marker}-daemon"}}
        turns: []
    """)
    sandbox.sv("start", "auth", "--command", command + " --ignore-term")
    agent = sandbox.wait_state("auth", "working", "idle")

    def family() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline", "pid"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if marker in cmdline or proc.pid == agent["pid"]:
                found.append(proc)
        return found

    def names() -> str:
        return " ".join(" ".join(p.info["cmdline"] or []) for p in family())

    wait_until(lambda: f"{marker}-child" in names() and f"{marker}-daemon" in names(),
               message="the agent's child and its detached daemon running")
    started = time.monotonic()
    out = sandbox.sv("stop", "auth")
    assert "auth: stopped" in out.stdout
    assert time.monotonic() - started < 15
    alive = [p for p in family() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    stopped = sandbox.ls()["auth"]
    assert stopped["state"] == "stopped"
    assert stopped["pid"] is None


def test_a_stop_does_not_wait_for_a_start_still_waiting_for_the_prompt(sandbox: Sandbox) -> None:
    """A CLI that keeps redrawing never looks ready: its start waits up to a minute to type the task. A stop
    meanwhile ends it at once, and the start says why it gave up."""
    spinner = "sh -c 'while :; do date +%N; sleep 0.1; done'"
    starting = subprocess.Popen([PYTHON, "-m", "supervisor", "start", "auth", "--task", "go", "--command", spinner],
                                cwd=sandbox.root, env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        wait_until(lambda: (sandbox.ls().get("auth") or {}).get("pane"), message="auth's launch")
        sandbox.sv("stop", "auth", timeout=30)  # well before the start's own 60 s
    finally:
        _, err = starting.communicate(timeout=30)
    assert starting.returncode == 1 and "auth was stopped before its input prompt showed" in err
    agent = sandbox.ls()["auth"]
    assert agent["state"] == "stopped" and agent["reason"] == "stopped on request"


def test_stop_kill_is_immediate_and_marks_killed(sandbox: Sandbox) -> None:
    command, _ = script(sandbox, "k", "turns: []\n")
    sandbox.sv("start", "auth", "--command", command + " --ignore-term")
    agent = sandbox.wait_state("auth", "working", "idle")
    sandbox.sv("stop", "auth", "--kill")
    assert process_gone(agent["pid"])
    assert sandbox.ls()["auth"]["state"] == "killed"


def test_same_name_refused(sandbox: Sandbox) -> None:
    sandbox.sv("start", "auth")
    done = sandbox.sv("start", "auth", check=False)
    assert done.returncode == 2
    assert "an agent named 'auth' already exists" in done.stderr
    assert len(sandbox.ls()) == 1


@pytest.mark.parametrize("name", ["Auth", "-x", "a_b", "a" * 33, "a.b"])
def test_invalid_names_refused(sandbox: Sandbox, name: str) -> None:
    done = sandbox.sv("start", name, check=False)
    assert done.returncode == 2
    assert "error:" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_command_fails_with_reason_not_a_hang(sandbox: Sandbox) -> None:
    started = time.monotonic()
    done = sandbox.sv("start", "ghost", "--task", "anything", "--command", "no-such-agent-cli --flag", check=False)
    assert done.returncode == 1
    assert "command not found: no-such-agent-cli" in done.stderr
    assert time.monotonic() - started < 10
    agent = sandbox.ls()["ghost"]
    assert agent["state"] == "failed"
    assert "no-such-agent-cli" in agent["reason"]


def test_command_that_dies_while_starting_is_failed_with_its_last_words(sandbox: Sandbox) -> None:
    done = sandbox.sv("start", "flaky", "--task", "hello", "--command",
                      "echo 'Unable to connect to Anthropic services' && exit 1", check=False)
    assert done.returncode == 1
    agent = sandbox.ls()["flaky"]
    assert agent["state"] == "failed"
    assert agent["exit_code"] == 1
    assert "Unable to connect to Anthropic services" in agent["reason"]


def test_setup_commands_run_with_port_and_compose_name(sandbox: Sandbox) -> None:
    sandbox.write_config(
        f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n"
        "worktrees:\n  setup:\n    - echo \"$SUPERVISOR_PORT $COMPOSE_PROJECT_NAME\" > setup.txt\n"
    )
    sandbox.sv("start", "one")
    sandbox.sv("start", "two")
    ports = []
    for name in ("one", "two"):
        port, compose = (Path(sandbox.ls()[name]["worktree"]) / "setup.txt").read_text().split()
        assert compose == f"repo-{name}"
        ports.append(int(port))
    assert len(set(ports)) == 2


def test_failing_setup_fails_the_agent_with_the_output(sandbox: Sandbox) -> None:
    sandbox.write_config(
        f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n"
        "worktrees:\n  setup:\n    - \"echo 'uv: lockfile out of date' >&2; exit 4\"\n"
    )
    done = sandbox.sv("start", "auth", check=False)
    assert done.returncode == 1
    assert "lockfile out of date" in done.stderr
    assert sandbox.ls()["auth"]["state"] == "failed"


def test_malformed_config_refused_with_line_before_anything_starts(sandbox: Sandbox) -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  stal_after: 10m\n")
    done = sandbox.sv("start", "auth", check=False)
    assert done.returncode == 2
    assert "supervisor.yaml:5: unknown key 'limits.stal_after'" in done.stderr
    assert "did you mean 'limits.stall_after'" in done.stderr
    assert "stal_after" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (sandbox.root.parent / "repo-worktrees" / "auth").exists()
    assert sandbox.sv("engine", "status", check=False).returncode == 1  # nothing was started


def test_engine_killed_with_sigkill_readopts_without_disturbing_agents(sandbox: Sandbox) -> None:
    command, record = script(sandbox, "r", """
        turns:
          - [{say: one}]
          - [{say: two}]
    """)
    sandbox.sv("start", "auth", "--task", "first", "--command", command)
    sandbox.sv("start", "idler", "--command", command)
    sandbox.wait_state("auth", "idle")
    sandbox.wait_state("idler", "idle")
    before = sandbox.ls()
    events_before = _events(sandbox)
    old_pid = sandbox.engine_pid()
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: process_gone(old_pid), message="engine dead")

    after = sandbox.ls()  # any command brings the engine back
    assert sandbox.engine_pid() != old_pid
    for name in ("auth", "idler"):
        assert after[name]["pane"] == before[name]["pane"]
        assert after[name]["pid"] == before[name]["pid"]
        assert after[name]["state"] == "idle"
        assert psutil.pid_exists(after[name]["pid"])
    events_after = _events(sandbox)
    assert events_after[: len(events_before)] == events_before  # nothing lost
    assert {e[2] for e in events_after[len(events_before):]} >= {"engine_started", "adopted"}
    # The adopted agent still takes prompts.
    sandbox.sv("send", "auth", "again")
    wait_until(lambda: prompts(record) == ["first", "again"], message="prompt after re-adoption")


def _events(box: Sandbox) -> list[tuple[int, str | None, str]]:
    db = sqlite3.connect(box.root / ".git" / "supervisor" / "state.db")
    try:
        return [(r[0], r[1], r[2]) for r in db.execute("SELECT id, agent, kind FROM events ORDER BY id")]
    finally:
        db.close()


def test_agent_exit_while_engine_is_dead_is_recorded_on_return(sandbox: Sandbox) -> None:
    command, _ = script(sandbox, "d", """
        turns:
          - [{exit: 5}]
    """)
    sandbox.sv("start", "auth", "--command", command)
    sandbox.wait_state("auth", "idle")
    sandbox.sv("engine", "stop")
    sandbox.tmux("send-keys", "-t", "=auth:", "go", "Enter")
    wait_until(lambda: sandbox.tmux("display-message", "-p", "-t", "=auth:", "#{pane_dead}").stdout.strip() == "1",
               message="pane dead")
    agent = sandbox.wait_state("auth", "exited")
    assert agent["exit_code"] == 5


def test_restart_runs_again_in_the_same_worktree(sandbox: Sandbox) -> None:
    command, _ = script(sandbox, "rs", """
        turns:
          - [{write: {path: notes.txt, content: kept}}, {exit: 0}]
    """)
    sandbox.sv("start", "auth", "--command", command)  # no task: a restart has none to give it again
    sandbox.sv("send", "auth", "write notes")
    sandbox.wait_state("auth", "exited")
    worktree = Path(sandbox.ls()["auth"]["worktree"])
    assert (worktree / "notes.txt").read_text() == "kept"
    sandbox.sv("restart", "auth")
    agent = sandbox.wait_state("auth", "working", "idle")
    assert agent["worktree"] == str(worktree)
    assert psutil.Process(agent["pid"]).cwd() == str(worktree)
    assert (worktree / "notes.txt").exists()
    shown = sandbox.agent("auth")
    assert shown["restarts"] == 1


def test_rm_refuses_unmerged_work_and_force_removes(sandbox: Sandbox) -> None:
    command, _ = script(sandbox, "c", """
        turns:
          - [{write: {path: src/new.py, content: x}}, {commit: add new}]
    """)
    sandbox.sv("start", "auth", "--task", "commit something", "--command", command)
    worktree = Path(sandbox.ls()["auth"]["worktree"])
    wait_until(lambda: sandbox.git("rev-list", "--count", "main..agent/auth/work") == "1", message="the commit")
    running = sandbox.sv("rm", "auth", check=False)
    assert running.returncode == 1 and "still running" in running.stderr
    sandbox.sv("stop", "auth")
    refused = sandbox.sv("rm", "auth", check=False)
    assert refused.returncode == 1
    assert "unmerged work: 1 commit(s) not in main" in refused.stderr
    assert worktree.exists()
    sandbox.sv("rm", "auth", "--force")
    assert not worktree.exists()
    assert "agent/auth/work" not in sandbox.git("branch", "--list")
    assert "auth" not in sandbox.ls()
    # The transcript outlives the agent.
    assert (sandbox.root / ".git" / "supervisor" / "logs" / "auth.log").exists()


def test_rm_of_a_clean_stopped_agent(sandbox: Sandbox) -> None:
    sandbox.sv("start", "auth")
    sandbox.sv("stop", "auth")
    sandbox.sv("rm", "auth")
    assert sandbox.ls() == {}
    # The name can be used again.
    sandbox.sv("start", "auth")
    assert sandbox.ls()["auth"]["state"] in ("starting", "working", "idle")


def test_supervisor_files_never_show_as_changes(sandbox: Sandbox) -> None:
    sandbox.sv("start", "auth")
    worktree = Path(sandbox.ls()["auth"]["worktree"])
    (worktree / "SESSION.md").write_text("contract")
    (worktree / ".sub-agents").mkdir(exist_ok=True)
    (worktree / ".sub-agents" / "status.yaml").write_text("x: 1")
    assert sandbox.git("status", "--porcelain", cwd=worktree) == ""


def test_commands_work_from_inside_a_worktree(sandbox: Sandbox) -> None:
    sandbox.sv("start", "auth")
    worktree = Path(sandbox.ls()["auth"]["worktree"])
    listing = sandbox.sv("ls", cwd=worktree / "src").stdout
    assert "auth" in listing


def test_an_agent_cannot_stop_another_agent(sandbox: Sandbox) -> None:
    sandbox.sv("start", "victim")
    command, _ = script(sandbox, "rogue", """
        turns:
          - [{run: "supervisor stop victim; echo rc=$?"}]
    """)
    env_path = f"{Path(sys.executable).parent}:{sandbox.env['PATH']}"
    sandbox.sv("start", "rogue", "--command", f"env PATH={env_path} {command}")
    sandbox.wait_state("rogue", "idle", "working")
    sandbox.sv("send", "rogue", "do it")
    wait_until(lambda: "rc=1" in sandbox.screen("rogue"), message="the refused stop")
    assert "may not call stop" in sandbox.sv("log", "rogue").stdout
    assert sandbox.ls()["victim"]["state"] in ("starting", "working", "idle")


def test_control_socket_and_state_are_private(sandbox: Sandbox) -> None:
    sandbox.sv("engine", "start")
    paths = sandbox.paths
    runtime = sandbox.runtime / paths.runtime_dir.name
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert stat.S_IMODE((runtime / "engine.sock").stat().st_mode) == 0o600
    assert stat.S_IMODE((sandbox.root / ".git" / "supervisor").stat().st_mode) == 0o700
    assert stat.S_IMODE((sandbox.root / ".git" / "supervisor" / "state.db").stat().st_mode) == 0o600


def test_engine_start_stop_status(sandbox: Sandbox) -> None:
    assert sandbox.sv("engine", "status", check=False).returncode == 1
    sandbox.sv("engine", "start")
    status = json.loads(sandbox.sv("engine", "status", "--json").stdout)
    assert status["running"] is True
    sandbox.sv("start", "auth")
    agent_pid = sandbox.ls()["auth"]["pid"]
    sandbox.sv("engine", "stop")
    assert sandbox.sv("engine", "status", check=False).returncode == 1
    assert psutil.pid_exists(agent_pid)  # agents outlive the engine


def test_transcript_rotates_at_its_cap(sandbox: Sandbox) -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlogs:\n  max_bytes: 2000\n")
    command, _ = script(sandbox, "big", """
        turns:
          - [{run: "seq 1 3000"}]
    """)
    sandbox.sv("start", "auth", "--task", "print a lot", "--command", command)
    log = sandbox.root / ".git" / "supervisor" / "logs" / "auth.log"
    wait_until(lambda: log.with_name("auth.log.1").exists(), message="rotation")
    wait_until(lambda: log.stat().st_size <= 2000 + 20000, message="capped")
    assert "3000" in sandbox.sv("log", "auth").stdout or "3000" in log.with_name("auth.log.1").read_text()


def test_transcript_holds_every_line_once_across_an_engine_crash_and_a_restart(sandbox: Sandbox) -> None:
    """The transcript comes from tmux's history: lines printed while no engine runs are not lost, none is
    written twice, and a restarted run follows the first one's last screen."""
    command, _ = script(sandbox, "count", """
        turns:
          - [{run: "for i in $(seq 1 200); do echo line $i; sleep 0.04; done"}, {say: counted}]
    """)

    def counted_to() -> int:  # the highest line on screen (a slow poll may miss any one line)
        return max((int(n) for n in re.findall(r"^line (\d+)$", sandbox.screen("auth"), re.MULTILINE)), default=0)

    sandbox.sv("start", "auth", "--command", command)  # no task: the restart below has none to give it again
    sandbox.sv("send", "auth", "count")
    wait_until(lambda: counted_to() >= 40, message="counting")
    old_pid = sandbox.engine_pid()
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: process_gone(old_pid), message="engine dead")
    at_kill = counted_to()
    wait_until(lambda: counted_to() >= min(200, at_kill + 30), message="counting on with no engine")
    sandbox.ls()  # a new engine adopts the agent and its transcript
    sandbox.wait_state("auth", "idle")
    log = sandbox.sv("log", "auth").stdout
    lines = [line for line in log.splitlines() if line.startswith("line ")]
    assert lines == [f"line {i}" for i in range(1, 201)]
    assert log.count("counted") == 1
    sandbox.sv("stop", "auth")
    written = sandbox.paths.transcript("auth").read_text()  # the last screen is in the file itself now
    assert written.count("counted") == 1 and "line 200" in written
    sandbox.sv("restart", "auth")
    sandbox.wait_state("auth", "idle")
    sandbox.sv("stop", "auth")
    first, second = sandbox.paths.transcript("auth").read_text().split("counted")
    assert "auth started again at" in second and "demo-agent" in second.split("auth started again at")[1]
    assert "Pane is dead" not in first + second


def test_transcript_holds_every_line_once_across_resizes(sandbox: Sandbox) -> None:
    """Attaching from another terminal resizes the window: a taller one pulls history back onto the screen,
    a narrower one wraps long lines into more rows, a wider one joins them. Neither repeats nor loses a line
    of the transcript."""
    cues = sandbox.root.parent / "cue"
    phase = ("for i in $(seq {first} {last}); do echo line $i;"
             " if [ $((i % 10)) = 0 ]; then printf 'long %s %0140d\\n' $i 0; fi; done;"
             " while [ ! -e {cue} ]; do sleep 0.05; done")
    sizes = [["-y", "70"], ["-x", "60"], ["-x", "200", "-y", "30"], ["-x", "100", "-y", "48"]]
    steps = "; ".join(phase.format(first=50 * k + 1, last=50 * k + 50, cue=f"{cues}{k}") for k in range(len(sizes) + 1))
    command, _ = script(sandbox, "count", f"""
        turns:
          - [{{run: "{steps}"}}, {{say: counted}}]
    """)
    sandbox.sv("start", "auth", "--task", "count", "--command", command)
    pane = sandbox.ls()["auth"]["pane"]
    for k, size in enumerate(sizes):
        last = f"line {50 * k + 50}"
        wait_until(lambda last=last: last in sandbox.sv("log", "auth").stdout, message=last)
        sandbox.tmux("resize-window", "-t", pane, *size)
        Path(f"{cues}{k}").touch()  # the next lines come after the resize, as they would once a user attached
    Path(f"{cues}{len(sizes)}").touch()
    sandbox.wait_state("auth", "idle")
    sandbox.tmux("resize-window", "-t", pane, "-y", "70")  # the run ends with written rows back on its screen
    sandbox.sv("stop", "auth")
    text = sandbox.sv("log", "auth").stdout
    last = 50 * len(sizes) + 50
    assert [line for line in text.splitlines() if line.startswith("line ")] == [f"line {i}" for i in range(1, last + 1)]
    assert re.findall(r"^long (\d+) ", text, re.MULTILINE) == [str(i) for i in range(10, last + 1, 10)]
    assert text.count("counted") == 1


def test_killed_tmux_server_is_reported(sandbox: Sandbox) -> None:
    sandbox.sv("start", "auth")
    sandbox.wait_state("auth", "working", "idle")
    sandbox.tmux("kill-server")
    agent = sandbox.wait_state("auth", "exited")
    assert "tmux server" in agent["reason"]
