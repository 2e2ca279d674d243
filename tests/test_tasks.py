"""The task board end to end: the real CLI, a real engine, demo agents claiming from inside their panes.

Agents claim the way a real CLI's shell tool would: `!supervisor task claim` makes the demo agent run it in
its pane, so the request comes from inside that agent's process tree and acts as that agent."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import textwrap
from typing import Any

import psutil

from tests.conftest import DEMO_AGENT, PYTHON, Sandbox, wait_until
from tests.test_helpers import SV, in_pane, transcript


def tasks(sandbox: Sandbox) -> dict[int, dict[str, Any]]:
    return {t["id"]: t for t in json.loads(sandbox.sv("task", "ls", "--json").stdout)}


def task_events(sandbox: Sandbox, task: int) -> list[dict[str, Any]]:
    db = sqlite3.connect(sandbox.root / ".git" / "supervisor" / "state.db")
    try:
        rows = db.execute("SELECT agent, kind, data FROM events WHERE kind IN ('task_added', 'task_claimed', "
                          "'task_done', 'task_released') ORDER BY id").fetchall()
    finally:
        db.close()
    found = [{"agent": agent, "kind": kind, **json.loads(data)} for agent, kind, data in rows]
    return [e for e in found if e["task"] == task]


def config(sandbox: Sandbox, limits: str = "") -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                         f"limits:\n  idle_after: 1s\n{textwrap.indent(textwrap.dedent(limits), '  ')}")


def script(sandbox: Sandbox, name: str, text: str) -> str:
    path = sandbox.root.parent / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return f"{DEMO_AGENT} --script {path}"


def test_add_ls_claim_done_release_and_their_errors(sandbox: Sandbox) -> None:
    assert sandbox.sv("task", "add", "Port src/app.py to the new API").stdout == "added task 1\n"
    many = sandbox.sv("task", "add", "--lines", "-", input="Fix the login bug\n\n  Write the docs  \n")
    assert many.stdout == "added 2 tasks: 2–3\n"
    long_text = sandbox.root.parent / "task.md"
    long_text.write_text("Refactor the billing module\n\nKeep the public API; add tests.\n")
    sandbox.sv("task", "add", "--file", str(long_text))
    board = tasks(sandbox)
    assert [(t["id"], t["state"], t["by"]) for t in board.values()] == [(i, "open", None) for i in (1, 2, 3, 4)]
    assert board[3]["text"] == "Write the docs"
    assert board[4]["text"] == "Refactor the billing module\n\nKeep the public API; add tests."

    # The oldest open task first; the human's claim has no agent.
    claimed = sandbox.sv("task", "claim")
    assert claimed.stdout == "1\tPort src/app.py to the new API\n"
    second = json.loads(sandbox.sv("task", "claim", "--json").stdout)
    assert (second["id"], second["state"], second["by"], second["claims"]) == (2, "claimed", None, 1)
    listing = sandbox.sv("task", "ls").stdout.splitlines()
    assert listing[0].split() == ["ID", "STATE", "BY", "AGE", "TEXT"]
    assert listing[1].split()[:3] == ["1", "claimed", "human"] and listing[3].split()[:3] == ["3", "open", "-"]
    assert listing[4].endswith("Refactor the billing module")  # the first line of a long text

    assert sandbox.sv("task", "release", "1").stdout == "task 1: back on the board\n"
    assert sandbox.sv("task", "done", "2").stdout == "task 2: done\n"
    assert [t["id"] for t in json.loads(sandbox.sv("task", "ls", "--state", "open", "--json").stdout)] == [1, 3, 4]
    again = json.loads(sandbox.sv("task", "claim", "--json").stdout)  # a released task is the oldest again
    assert (again["id"], again["claims"]) == (1, 2)

    # Errors: exit 2 for bad input, 1 for what the board refuses.
    for args, code, message in [
        (("task", "done", "99"), 2, "no task 99"),
        (("task", "release", "99"), 2, "no task 99"),
        (("task", "done", "abc"), 2, "invalid int value"),
        (("task", "add", "   "), 2, "the task is empty"),
        (("task", "add"), 2, "what is the task?"),
        (("task", "ls", "--state", "lost"), 2, "'lost' is not one of open, claimed, done"),
        (("task", "done", "2"), 1, "task 2 is already done"),
        (("task", "release", "2"), 1, "task 2 is not claimed (it is done)"),
        (("task", "release", "3"), 1, "task 3 is not claimed (it is open)"),
    ]:
        done = sandbox.sv(*args, check=False)
        assert (done.returncode, done.stdout) == (code, ""), (args, done)
        assert message in done.stderr, (args, done.stderr)

    for _ in range(2):
        sandbox.sv("task", "claim")
    empty = sandbox.sv("task", "claim", check=False)
    assert (empty.returncode, empty.stdout, empty.stderr) == (1, "", "")
    assert [e["kind"] for e in task_events(sandbox, 1)] == ["task_added", "task_claimed", "task_released",
                                                           "task_claimed"]
    assert task_events(sandbox, 1)[2]["reason"] == "released by the human"


CLAIMER = """
import json, subprocess, sys
taken = []
while True:
    done = subprocess.run([sys.executable, "-m", "supervisor", "task", "claim", "--json"], capture_output=True,
                          text=True)
    if done.returncode == 1 and not done.stdout and not done.stderr:
        break
    if done.returncode != 0:
        sys.exit(f"claim exited {done.returncode}: {done.stderr}")
    taken.append(json.loads(done.stdout)["id"])
print(json.dumps(taken))
"""


def test_twenty_concurrent_claimers_take_a_hundred_tasks_each_exactly_once(sandbox: Sandbox) -> None:
    sandbox.sv("task", "add", "--lines", "-", input="".join(f"task number {i}\n" for i in range(100)))
    claimers = [subprocess.Popen([PYTHON, "-c", CLAIMER], cwd=sandbox.root, env=sandbox.env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(20)]
    taken: list[int] = []
    for claimer in claimers:
        out, err = claimer.communicate(timeout=90)
        assert claimer.returncode == 0, err
        taken += json.loads(out)
    assert sorted(taken) == list(range(1, 101))  # none taken twice, none lost
    board = tasks(sandbox)
    assert all(t["state"] == "claimed" and t["claims"] == 1 for t in board.values())


def test_a_dead_claimers_task_returns_to_the_board(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("task", "add", "--lines", "-", input="first job\nsecond job\n")
    sandbox.sv("start", "auth")
    agent = sandbox.wait_state("auth", "idle")
    in_pane(sandbox, "auth", f"{SV} task claim")
    assert re.search(r"\b1\s+first job", transcript(sandbox, "auth"))  # the tab, as the pane shows it
    held = tasks(sandbox)[1]
    assert (held["state"], held["by"], held["incarnation"]) == ("claimed", "auth", agent["started_at"])

    pane = psutil.Process(agent["pid"])  # the pane's shell, which runs the agent CLI
    cli = next(p for p in [pane, *pane.children(recursive=True)] if "supervisor.demo.agent" in " ".join(p.cmdline()))
    cli.send_signal(signal.SIGKILL)  # the CLI crashes
    back = wait_until(lambda: tasks(sandbox)[1]["state"] == "open" and tasks(sandbox)[1], timeout=10,
                      message="the dead agent's task back on the board")
    assert back["released"] == "auth exited" and back["by"] is None
    assert sandbox.ls()["auth"]["state"] == "exited"
    released = task_events(sandbox, 1)[-1]
    assert (released["kind"], released["agent"], released["holder"]) == ("task_released", "auth", "auth")
    assert tasks(sandbox)[2]["state"] == "open"  # the other task was never touched


def test_a_stalled_claimants_task_is_released(sandbox: Sandbox) -> None:
    config(sandbox, "stall_after: 2s\n")
    sandbox.sv("task", "add", "a job that hangs")
    sandbox.sv("start", "auth", "--task", "claim and work", "--command", script(sandbox, "st", f"""
        turns:
          - [{{run: "{SV} task claim"}}, {{quiet: 60s}}]
    """))
    wait_until(lambda: tasks(sandbox)[1]["by"] == "auth", message="auth's claim")
    back = wait_until(lambda: tasks(sandbox)[1]["state"] == "open" and tasks(sandbox)[1], timeout=15,
                      message="the stalled agent's task back on the board")
    assert back["released"] == "auth stalled"
    assert sandbox.ls()["auth"]["state"] == "stalled"


def test_an_agent_finishes_and_releases_only_its_own_claims(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("task", "add", "--lines", "-", input="alpha's job\nhuman's job\nbeta's job\n")
    for name in ("alpha", "beta"):
        sandbox.sv("start", name)
    sandbox.wait_state("alpha", "idle")
    sandbox.wait_state("beta", "idle")
    in_pane(sandbox, "alpha", f"{SV} task claim")
    sandbox.sv("task", "claim")  # the human takes task 2
    in_pane(sandbox, "beta", f"{SV} task claim")
    assert {i: t["by"] for i, t in tasks(sandbox).items()} == {1: "alpha", 2: None, 3: "beta"}

    in_pane(sandbox, "beta", f"{SV} task release 1; {SV} task done 1; {SV} task release 2")
    seen = transcript(sandbox, "beta")
    assert "task 1 is claimed by alpha, not by beta" in seen
    assert "task 2 is claimed by the human, not by beta" in seen
    assert "an agent releases only its own claims" in seen and "an agent finishes only the tasks it claimed" in seen
    assert [tasks(sandbox)[i]["state"] for i in (1, 2, 3)] == ["claimed", "claimed", "claimed"]

    in_pane(sandbox, "alpha", f"{SV} task done 1")
    in_pane(sandbox, "beta", f"{SV} task release 3")
    board = tasks(sandbox)
    assert (board[1]["state"], board[1]["by"]) == ("done", "alpha")
    assert (board[3]["state"], board[3]["released"]) == ("open", "released by beta")
    sandbox.sv("task", "release", "2")  # the human releases any claim
    assert tasks(sandbox)[2]["state"] == "open"
    done_event = task_events(sandbox, 1)[-1]
    assert (done_event["kind"], done_event["agent"], done_event["by"]) == ("task_done", "alpha", "alpha")


def test_restart_always_gives_the_fresh_incarnation_its_task_and_the_unfinished_job_again(sandbox: Sandbox) -> None:
    """The swarm pattern: the first run claims and dies mid-job; its claim returns to the board, and the fresh
    run (its task prompt delivered again) claims that job and finishes it."""
    config(sandbox, "restart: always\n")
    died_once = sandbox.root.parent / "died-once"
    job = (f"id=$({SV} task claim | cut -f1); echo claimed $id; "
           f"if [ -e {died_once} ]; then {SV} task done $id; else touch {died_once}; kill -9 $PPID; fi")
    sandbox.sv("task", "add", "--lines", "-", input="the job\nthe next job\n")
    sandbox.sv("start", "swarm", "--task", "claim a task, do it, mark it done", "--command",
               script(sandbox, "sw", f"turns:\n  - [{{run: {json.dumps(job)}}}, {{exit: 0}}]\n"))
    wait_until(lambda: tasks(sandbox)[1]["state"] == "done", timeout=30, message="the job done by the second run")
    kinds = [(e["kind"], e.get("reason")) for e in task_events(sandbox, 1)]
    assert kinds[:3] == [("task_added", None), ("task_claimed", None), ("task_released", "swarm exited")] or \
        kinds[:3] == [("task_added", None), ("task_claimed", None), ("task_released", "swarm was started again")]
    assert [k for k, _ in kinds[3:]] == ["task_claimed", "task_done"]
    assert tasks(sandbox)[1]["by"] == "swarm" and tasks(sandbox)[1]["claims"] == 2
