"""The CLI at many agents: several names, --all and --state on the acting commands; did-you-mean for a mistyped
command or agent; events as sentences; rm's hint; `down` leaving no process behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil

from tests.conftest import PYTHON, Sandbox, process_gone, wait_until
from tests.test_sessions import prompts, script

ASKS = """
    turns:
      - [{ask: "rm -rf build"}, {say: after the question}]
      - [{say: second turn}]
      - [{say: third turn}]
"""
CALM = """
    turns:
      - [{say: on it}]
      - [{say: second turn}]
      - [{say: third turn}]
"""


def test_many_agents_at_once_each_once_with_one_line_each(sandbox: Sandbox) -> None:
    records = {}
    for name, text in (("alpha", ASKS), ("beta", ASKS), ("gamma", CALM)):
        command, records[name] = script(sandbox, name, text)
        sandbox.sv("start", name, "--task", "go", "--command", command, "--no-wait")
    for name in ("alpha", "beta"):
        sandbox.wait_state(name, "waiting", timeout=30)
    sandbox.wait_state("gamma", "idle", timeout=30)

    # --all picks those the verb applies to: the two waiting, not gamma.
    done = sandbox.sv("approve", "--all")
    assert sorted(line.split(" ", 2)[:2] for line in done.stdout.splitlines()) == [["alpha:", "approved"],
                                                                                  ["beta:", "approved"]]
    for name in ("alpha", "beta"):
        sandbox.wait_state(name, "idle", timeout=30)

    # A name that does not exist: did-you-mean, and nothing is done to the others.
    typo = sandbox.sv("send", "alhpa", "gamma", "--", "not sent", check=False)
    assert typo.returncode == 2 and "no agent named 'alhpa'" in typo.stderr
    assert "did you mean 'alpha'?" in typo.stderr and "nothing was done" in typo.stderr
    assert "not sent" not in prompts(records["gamma"])

    # The text last, after `--` (it may start with a dash); a name given twice is acted on once.
    sent = sandbox.sv("send", "alpha", "gamma", "alpha", "--", "-x the second")
    assert sent.stdout.splitlines() == ["alpha: sent", "gamma: sent"]
    for name in ("alpha", "gamma"):
        wait_until(lambda name=name: "-x the second" in prompts(records[name]), message=f"{name} got the text")
        assert prompts(records[name]).count("-x the second") == 1
    assert "-x the second" not in prompts(records["beta"])
    for name in ("alpha", "gamma"):
        sandbox.wait_state(name, "idle", timeout=30)

    # One that refuses does not stop the others; the exit code says not every one succeeded.
    by_state = sandbox.sv("send", "--state", "idle", "--state", "stopped", "--", "third")
    assert len(by_state.stdout.splitlines()) == 3  # all three idle: each sent once
    refused = sandbox.sv("approve", "alpha", "beta", check=False)
    assert refused.returncode == 1
    assert [refused.stderr.count(f"supervisor: error: {name}") for name in ("alpha", "beta")] == [1, 1]

    # `stop --all` (a usage error before): every running agent, a line each.
    stopped = sandbox.sv("stop", "--all")
    assert sorted(stopped.stdout.splitlines()) == ["alpha: stopped", "beta: stopped", "gamma: stopped"]
    assert {agent["state"] for agent in sandbox.ls().values()} == {"stopped"}
    assert sandbox.sv("stop", "--all").stdout.strip() == "nothing to stop: no agent runs"

    removed = sandbox.sv("rm", "--state", "stopped")
    assert len(removed.stdout.splitlines()) == 3 and sandbox.ls() == {}


def test_stop_and_rm_take_a_helper_with_its_parent_once(sandbox: Sandbox) -> None:
    from tests.test_helpers import CONTRACT, contract_file

    command, _ = script(sandbox, "lead", CALM)
    sandbox.sv("start", "lead", "--task", "go", "--command", command, "--contract", str(contract_file(sandbox,
                                                                                                      CONTRACT)))
    sandbox.sv("helper", "tests", "--role", "test-agent", "--parent", "lead", "--task", "go", "--no-wait")
    sandbox.wait_state("lead.tests", "idle", "working", timeout=30)
    done = sandbox.sv("stop", "lead.tests", "lead")
    assert done.stdout.splitlines() == ["lead: stopped", "lead.tests: stopped with lead"]
    stops = [e for e in sandbox.agent("lead.tests")["events"] if e["kind"] == "stopped"]
    assert len(stops) == 1 and "its parent lead was stopped" in stops[0]["reason"]
    gone = sandbox.sv("rm", "lead", "lead.tests")
    assert gone.stdout.splitlines() == ["lead: removed (worktree and branch deleted, with lead.tests)",
                                        "lead.tests: removed with lead"]


def test_a_mistyped_command_or_agent_gets_did_you_mean_and_internal_commands_stay_hidden(sandbox: Sandbox) -> None:
    helped = subprocess.run([PYTHON, "-m", "supervisor", "--help"], capture_output=True, text=True, check=True)
    assert "SUPPRESS" not in helped.stdout
    listed = {line.split()[0] for line in helped.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert {"stop", "diff", "push", "pr", "down"} <= listed and not listed & {"hook", "guard"}

    typo = sandbox.sv("stpo", "x", check=False)
    assert typo.returncode == 2
    assert typo.stderr.splitlines() == ["supervisor: error: unknown command 'stpo'", "hint: did you mean 'stop'?"]
    nothing = sandbox.sv("frobnicate", check=False)
    assert nothing.returncode == 2 and "hook" not in nothing.stderr and "guard" not in nothing.stderr

    command, _ = script(sandbox, "auth", CALM)
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    for args in (["show", "atuh"], ["stop", "atuh"], ["restore", "atuh"]):
        done = sandbox.sv(*args, check=False)
        assert done.returncode == 2, args
        assert "no agent named 'atuh'" in done.stderr and "did you mean 'auth'?" in done.stderr, args
    bad_state = sandbox.sv("stop", "--state", "idel", check=False)
    assert bad_state.returncode == 2 and "did you mean 'idle'?" in bad_state.stderr
    no_log = sandbox.sv("log", "atuh", check=False)
    assert no_log.returncode == 2 and "no transcript for 'atuh'" in no_log.stderr
    assert "did you mean 'auth'?" in no_log.stderr
    for args, meant in ((["alerts", "snoze"], "snooze"), (["task", "lss"], "ls"), (["engine", "strat"], "start"),
                        (["hosts", "chek"], "check"), (["usage", "--by", "agnet"], "agent")):
        done = sandbox.sv(*args, check=False)
        assert done.returncode == 2 and f"hint: did you mean '{meant}'?" in done.stderr, (args, done.stderr)
        assert "invalid choice" not in done.stderr and "hook" not in done.stderr, args

    # An option is taken by its whole name only: `--stat` is not `--state` (that stopped every idle agent).
    sandbox.wait_state("auth", "idle", timeout=30)
    abbreviated = sandbox.sv("stop", "--stat", "idle", check=False)
    assert abbreviated.returncode == 2 and "unknown option '--stat'" in abbreviated.stderr
    assert "did you mean '--state'?" in abbreviated.stderr
    assert sandbox.state("auth") == "idle"


def test_events_read_as_sentences(sandbox: Sandbox) -> None:
    command, _ = script(sandbox, "ui", ASKS)
    sandbox.sv("start", "ui", "--task", "go", "--command", command)
    sandbox.wait_state("ui", "waiting", timeout=30)
    # What the dashboard sends for `y`.
    approve = ("from supervisor.client import call; from supervisor.paths import find_repo; "
              "call(find_repo(), 'approve', {'name': 'ui', 'by': 'dashboard'})")
    subprocess.run([PYTHON, "-c", approve], cwd=sandbox.root, env=sandbox.env, check=True)
    sandbox.wait_state("ui", "idle", timeout=30)
    shown = sandbox.sv("show", "ui").stdout
    events = shown.split("\nevents:\n", 1)[1]
    print(events)
    assert "approved in the dashboard: " in events
    assert "launched" in events and "starting → starting" not in events
    assert "idle (was working)" in events
    for python in ("=", "['", "{'", "True", "None"):
        assert python not in events, (python, events)


def test_rm_with_only_uncommitted_changes_says_commit_or_force(sandbox: Sandbox) -> None:
    command, _ = script(sandbox, "auth", CALM)
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    sandbox.sv("stop", "auth")
    worktree = Path(sandbox.ls()["auth"]["worktree"])
    (worktree / "notes.txt").write_text("draft\n")
    done = sandbox.sv("rm", "auth", check=False)
    assert done.returncode == 1 and "1 uncommitted change(s)" in done.stderr
    assert "`supervisor merge auth` first" not in done.stderr  # there is nothing to merge
    assert "commit them in" in done.stderr and "`supervisor rm --force auth`" in done.stderr


def test_down_leaves_no_process_of_the_repository(sandbox: Sandbox) -> None:
    pids = []
    for name in ("one", "two"):
        command, _ = script(sandbox, name, CALM)
        sandbox.sv("start", name, "--task", "go", "--command", command)
        pids.append(sandbox.ls()[name]["pid"])
    engine = sandbox.engine_pid()
    server = int(sandbox.tmux("display-message", "-p", "#{pid}").stdout.strip())
    done = sandbox.sv("down")
    assert sorted(done.stdout.splitlines()) == ["engine stopped", "one: stopped", "tmux server ended", "two: stopped"]
    for pid in [*pids, engine, server]:
        wait_until(lambda pid=pid: process_gone(pid), message=f"process {pid} gone")
    ours = []
    for proc in psutil.process_iter(["pid", "environ"]):
        try:
            environ = proc.info["environ"] or {}
        except psutil.Error:
            continue
        if environ.get("SUPERVISOR_RUNTIME_DIR") == str(sandbox.runtime) and proc.pid != os.getpid() \
                and not process_gone(proc.pid):
            ours.append(proc.pid)
    assert ours == []
    assert sandbox.sv("down").stdout.strip() == "nothing runs for this repository"


def test_make_demo_installs_only_what_the_demo_needs_and_says_where_supervisor_is(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    venv = tmp_path / "venv"
    dry = subprocess.run(["make", "-n", "-C", str(root), "demo", f"VENV={venv}"], capture_output=True, text=True,
                         check=True, env={**os.environ, "MAKEFLAGS": ""})
    installs = [line for line in dry.stdout.splitlines() if "pip install" in line]
    assert installs and all("[dev]" not in line and "[test]" not in line for line in installs), installs
    assert "==> installing supervisor" in dry.stdout  # progress is said
    assert f"supervisor is installed at {venv}/bin/supervisor" in dry.stdout  # and where the command is after it
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert not any(tool in runtime for tool in ("pytest", "mypy", "ruff", "hypothesis"))
    assert sys.version_info >= (3, 11)


def test_ready_to_merge_only_when_a_merge_now_would_lose_nothing(sandbox: Sandbox) -> None:
    """An idle agent with a commit and uncommitted edits is not READY (a merge takes commits only); once it
    commits them, it is."""
    command, _ = script(sandbox, "maker", """
        turns:
          - [{write: {path: src/a.py, content: "a = 1\\n"}}, {commit: "Add a"},
             {write: {path: src/b.py, content: "b = 1\\n"}}, {write: {path: src/a.py, content: "a = 2\\n"}},
             {say: done with uncommitted edits}]
          - [{commit: "The rest"}, {say: all committed}]
    """)
    sandbox.sv("start", "maker", "--task", "go", "--command", command, "--no-wait")
    sandbox.wait_state("maker", "idle", timeout=30)
    wait_until(lambda: sandbox.ls()["maker"]["ahead"] == 1, timeout=30, message="its commit counted")
    listed = sandbox.ls()["maker"]
    assert not listed["ready_to_merge"], "2 uncommitted changes a merge would leave behind"

    sandbox.sv("send", "maker", "commit the rest")
    wait_until(lambda: "all committed" in sandbox.screen("maker"), timeout=30, message="the second commit")
    row = wait_until(lambda: (found := sandbox.ls()["maker"])["ready_to_merge"] and found, timeout=30,
                     message="ready once nothing is uncommitted")
    assert row["ahead"] == 2
    merged = sandbox.sv("merge", "maker")
    assert "merged 2 commit(s)" in merged.stdout and "uncommitted" not in merged.stderr


def test_show_words_an_alert_as_its_last_event(sandbox: Sandbox) -> None:
    """`last_event` keeps what its sentence is made of: the alert's number and channel, not `alert ? … ?`."""
    sandbox.write_config("alerts:\n  tmux: false\n  group_wait: 0.1s\n  command: 'true'\n")
    sandbox.sv("start", "crash", "--command", "sh -c 'sleep 0.3; exit 3'", check=False)
    wait_until(lambda: (sandbox.ls()["crash"].get("last_event") or {}).get("kind") == "alert_sent", timeout=30,
               message="the alert delivered")
    line = next(line for line in sandbox.sv("show", "crash").stdout.splitlines() if line.startswith("last_event:"))
    assert "?" not in line, line
    assert re.search(r"last_event: +alert \d+ delivered by command", line), line


def test_deny_in_bulk_send_all_mid_turn_and_restart_by_names(sandbox: Sandbox) -> None:
    """`deny --all` answers every waiting agent with the reason; `send --all` reaches every running one, and
    one mid-turn takes the text as its next turn (once); `restart a b` restarts those two only."""
    records = {}
    for name in ("alpha", "beta"):
        command, records[name] = script(sandbox, name, ASKS)
        sandbox.sv("start", name, "--task", "go", "--command", command, "--no-wait")
    for name in ("alpha", "beta"):
        sandbox.wait_state(name, "waiting", timeout=30)

    denied = sandbox.sv("deny", "--all", "--reason", "not now")
    assert sorted(line.split(" ", 2)[:2] for line in denied.stdout.splitlines()) == [["alpha:", "denied"],
                                                                                    ["beta:", "denied"]]
    for name in ("alpha", "beta"):
        sandbox.wait_state(name, "idle", timeout=30)
        assert any(e.get("kind") == "denied" and e.get("reason") == "not now"
                   for e in sandbox.agent(name)["events"]), name

    busy = """
        turns:
          - [{say: on it}, {work: 8s}, {say: first turn done}]
          - [{say: second turn}]
    """
    for name in ("gamma", "delta"):
        command, records[name] = script(sandbox, name, busy)
        sandbox.sv("start", name, "--task", "go", "--command", command, "--no-wait")
    for name in ("gamma", "delta"):
        sandbox.wait_state(name, "working", timeout=30)
    sent = sandbox.sv("send", "--all", "--", "the next step")
    assert sorted(sent.stdout.splitlines()) == ["alpha: sent", "beta: sent", "delta: sent", "gamma: sent"]
    assert {sandbox.state(name) for name in ("gamma", "delta")} == {"working"}, "sent mid-turn"
    for name in ("gamma", "delta"):
        wait_until(lambda name=name: "second turn" in sandbox.screen(name), timeout=40,
                   message=f"{name} took the text as its next turn")
        assert prompts(records[name]) == ["go", "the next step"], name
    for name in ("alpha", "beta"):
        wait_until(lambda name=name: prompts(records[name]) == ["go", "not now", "the next step"], timeout=30,
                   message=f"{name} told why it was denied, then given the text, each once")

    restarted = sandbox.sv("restart", "gamma", "alpha")
    assert [line.split(":")[0] for line in restarted.stdout.splitlines()] == ["alpha", "gamma"]
    assert {name: sandbox.agent(name)["restarts"] for name in ("alpha", "beta", "gamma", "delta")} == {
        "alpha": 1, "beta": 0, "gamma": 1, "delta": 0}
