"""Plans end to end (real engine, tmux, git): dependency order, automatic merges behind a check, the failures
that stop a merge, and best-of-N with `compare`. Each session is the demo agent running a script that
writes and commits files, so what lands on main, and when, is the evidence."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import DEMO_AGENT, Sandbox, wait_until


def script(box: Sandbox, name: str, turns: list[list[dict[str, Any]]]) -> str:
    path = box.root.parent / f"{name}.json"
    path.write_text(json.dumps({"turns": turns}))  # JSON is YAML
    return f"{DEMO_AGENT} --script {path}"


def writes(box: Sandbox, name: str, *files: str) -> str:
    """A session that, given its task, writes `files` (each containing its own name) and commits them."""
    steps: list[dict[str, Any]] = [{"write": {"path": f, "content": f"{f} by {name}\n"}} for f in files]
    return script(box, name, [[*steps, {"commit": f"{name}: {', '.join(files)}"}]])


def plan(box: Sandbox, text: str, name: str = "PLAN.yaml") -> Path:
    path = box.root.parent / name
    path.write_text(textwrap.dedent(text))
    return path


def events(box: Sandbox, kind: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(box.root / ".git" / "supervisor" / "state.db")
    try:
        rows = db.execute("SELECT id, agent, data FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    finally:
        db.close()
    return [{"id": row[0], "agent": row[1], **json.loads(row[2])} for row in rows]


def on_main(box: Sandbox) -> set[str]:
    return set(box.git("ls-tree", "-r", "--name-only", "main").splitlines())


def test_a_diamond_runs_in_dependency_order_and_merges_itself_behind_the_check(sandbox: Sandbox) -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                         "limits:\n  idle_after: 1s\n")
    path = plan(sandbox, f"""
        merge: {{mode: auto, check: "test -f README.md && ! grep -rq BROKEN ."}}
        sessions:
          - name: core
            task: lay the groundwork
            command: {writes(sandbox, "core", "core.txt")}
          - name: left
            task: build on core
            after: [core]
            command: {writes(sandbox, "left", "left.txt")}
          - name: right
            task: build on core too
            after: core
            command: {writes(sandbox, "right", "right.txt")}
          - name: top
            task: join both
            after: [left, right]
            command: {writes(sandbox, "top", "top.txt")}
          - name: side
            task: unrelated
            command: {writes(sandbox, "side", "side.txt")}
    """)
    done = sandbox.sv("run", str(path))
    assert "queued 5 session(s) on main" in done.stdout
    listed = sandbox.ls()
    assert listed["top"]["state"] == "queued" and listed["top"]["after"] == ["left", "right"]
    wait_until(lambda: all(a["merged"] for a in sandbox.ls().values()), 90, message="every session merged")
    assert {"core.txt", "left.txt", "right.txt", "top.txt", "side.txt"} <= on_main(sandbox)
    merged = [e["agent"] for e in events(sandbox, "merged")]
    started = [e["agent"] for e in events(sandbox, "dequeued")]
    assert sorted(merged) == ["core", "left", "right", "side", "top"]
    # Nobody starts before what it comes after is merged, and each began with that work in its worktree.
    merge_id = {e["agent"]: e["id"] for e in events(sandbox, "merged")}
    start_id = {e["agent"]: e["id"] for e in events(sandbox, "dequeued")}
    assert merge_id["core"] < start_id["left"] and merge_id["core"] < start_id["right"]
    assert max(merge_id["left"], merge_id["right"]) < start_id["top"]
    assert set(started) == {"core", "left", "right", "top", "side"}
    top_tree = sandbox.git("ls-tree", "-r", "--name-only", sandbox.ls()["top"]["base"]).splitlines()
    assert {"core.txt", "left.txt", "right.txt"} <= set(top_tree)
    # The check ran on every merge, in a scratch worktree that is gone again.
    checks = events(sandbox, "checked")
    assert sorted(c["agent"] for c in checks) == sorted(merged) and all(c["passed"] for c in checks)
    assert "check-" not in sandbox.git("worktree", "list")


def test_a_failing_check_stops_the_merge_alerts_and_tells_the_session(sandbox: Sandbox) -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                         "limits:\n  idle_after: 1s\nmerge:\n  check: \"! grep -rq BROKEN .\"\n")
    command = script(sandbox, "fixer", [
        [{"write": {"path": "feature.txt", "content": "BROKEN\n"}}, {"commit": "feature, broken"}],
        # The second prompt is the supervisor's message about the failed check: the session fixes it.
        [{"write": {"path": "feature.txt", "content": "fixed\n"}}, {"commit": "feature, fixed"}],
    ])
    path = plan(sandbox, f"""
        merge: auto
        sessions:
          - name: feature
            task: add the feature
            command: {command}
          - name: after-feature
            after: [feature]
            command: {writes(sandbox, "next", "next.txt")}
            task: go on
    """)
    before = sandbox.git("rev-parse", "main")
    sandbox.sv("run", str(path))
    failed = wait_until(lambda: events(sandbox, "merge_failed"), 60, message="the merge to be stopped")
    assert "merge.check" in failed[0]["reason"] and "exited 1" in failed[0]["reason"]
    trigger = wait_until(lambda: [e for e in events(sandbox, "trigger") if e["trigger"] == "merge"],
                         message="the merge alert")
    assert trigger[0]["active"] and trigger[0]["agent"] == "feature"
    assert sandbox.ls()["after-feature"]["state"] == "queued"
    # The session is told, fixes it, and the next attempt merges; the alert resolves, the next one starts.
    wait_until(lambda: sandbox.ls()["after-feature"]["merged"], 90, message="the fixed branch and its follower merged")
    assert (sandbox.root / "feature.txt").read_text() == "fixed\n"
    assert before != sandbox.git("rev-parse", "main")
    assert [e["active"] for e in events(sandbox, "trigger") if e["trigger"] == "merge"] == [True, False]
    told = sandbox.sv("log", "feature").stdout
    assert "supervisor: your branch was not merged into main: merge.check" in told


def test_a_conflict_stops_the_merge_and_leaves_main_as_it_was(sandbox: Sandbox) -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                         "limits:\n  idle_after: 1s\n")
    first = script(sandbox, "one", [[{"write": {"path": "src/app.py", "content": "print('one')\n"}},
                                     {"commit": "one"}]])
    second = script(sandbox, "two", [[{"write": {"path": "src/app.py", "content": "print('two')\n"}},
                                      {"quiet": "3s"}, {"commit": "two"}]])
    path = plan(sandbox, f"""
        merge: auto
        sessions:
          - {{name: one, task: go, command: "{first}", modify: [src/**]}}
          - {{name: two, task: go, command: "{second}", modify: [src/app.py]}}
    """)
    done = sandbox.sv("run", str(path))
    assert "one and two can run at the same time and may both change src/**" in done.stderr
    failed = wait_until(lambda: events(sandbox, "merge_failed"), 60, message="the second merge to stop")
    assert failed[0]["agent"] == "two" and "conflicts in: src/app.py" in failed[0]["reason"]
    assert sandbox.git("show", "main:src/app.py") == "print('one')"
    assert sandbox.git("status", "--porcelain", "--untracked-files=no") == ""
    assert sandbox.ls()["two"]["merge_note"].startswith("not merged")
    # On the radar, the merged branch is part of main now: two conflicts with main, and one leaves the radar.
    wait_until(lambda: [(c["with"], c["files"]) for c in sandbox.ls()["two"]["conflicts"]] == [
        ("main", ["src/app.py"])], message="two's conflict with main alone")
    assert sandbox.ls()["one"]["conflicts"] == []


def test_a_plan_with_a_cycle_is_refused_with_its_line_and_nothing_starts(sandbox: Sandbox) -> None:
    path = plan(sandbox, """
        sessions:
          - name: a
            after: [c]
          - name: b
            after: [a]
          - name: c
            after: [b]
    """)
    done = sandbox.sv("run", str(path), check=False)
    assert done.returncode == 2
    assert f"{path}:6: the sessions wait for each other in a cycle: a → c → b → a" in done.stderr
    assert sandbox.ls() == {}


def test_a_name_in_use_refuses_the_whole_plan(sandbox: Sandbox) -> None:
    sandbox.sv("start", "b", "--command", script(sandbox, "idle", []))
    path = plan(sandbox, """
        sessions:
          - name: a
          - name: b
    """)
    done = sandbox.sv("run", str(path), check=False)
    assert done.returncode == 2 and "agents named b already exist" in done.stderr
    assert set(sandbox.ls()) == {"b"}


def test_stopping_a_queued_session_keeps_it_from_starting(sandbox: Sandbox) -> None:
    path = plan(sandbox, f"""
        sessions:
          - {{name: first, task: go, command: "{writes(sandbox, 'first', 'f.txt')}"}}
          - {{name: second, task: go, after: [first], command: "{writes(sandbox, 'second', 's.txt')}"}}
          - {{name: third, task: go, after: [first], command: "{writes(sandbox, 'third', 't.txt')}"}}
    """)
    sandbox.sv("run", str(path))
    sandbox.sv("stop", "second")
    assert sandbox.state("second") == "stopped"
    sandbox.wait_state("first", "idle", timeout=30)
    assert sandbox.state("third") == "queued"  # merge: manual, so nothing moves until the human merges
    sandbox.sv("merge", "first")
    sandbox.wait_state("third", "starting", "working", "idle")  # the pass that started third passed second by
    assert sandbox.state("second") == "stopped"


def test_best_of_n_compare_and_merging_one_removes_the_others(sandbox: Sandbox) -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                         "limits:\n  idle_after: 1s\nmerge:\n  check: \"! grep -rq BROKEN src\"\n")
    command = script(sandbox, "cand", [[{"run": "sh -c 'echo $SUPERVISOR_AGENT > src/by.txt; "
                                                "[ $SUPERVISOR_AGENT = fix-2 ] && echo BROKEN >> src/by.txt; true'"},
                                        {"commit": "a candidate"}]])
    done = sandbox.sv("start", "fix", "--best-of", "3", "--task", "fix it", "--command", command)
    assert "compare them with `supervisor compare fix`" in done.stdout
    for name in ("fix-1", "fix-2", "fix-3"):
        wait_until(lambda n=name: sandbox.ls()[n]["state"] == "idle" and  # type: ignore[misc]
                   sandbox.git("rev-list", "--count", f"main..agent/{n}/work") == "1", 30, message=f"{name} committed")
    result = json.loads(sandbox.sv("compare", "fix", "--json").stdout)
    rows = {row["name"]: row for row in result["candidates"]}
    assert list(rows) == ["fix-1", "fix-2", "fix-3"]
    assert rows["fix-1"]["files"] == {"src/by.txt": [1, 0]} and rows["fix-2"]["files"] == {"src/by.txt": [2, 0]}
    assert [rows[n]["check"]["passed"] for n in rows] == [True, False, True]
    table = sandbox.sv("compare", "fix").stdout
    assert "src/by.txt" in table and "FAILED (exit 1)" in table
    assert json.loads(sandbox.sv("compare", "fix", "--json").stdout)["candidates"][0]["check"]["cached"]
    merged = json.loads(sandbox.sv("merge", "fix-3", "--json").stdout)
    assert sorted(merged["removed"]) == ["fix-1", "fix-2"]
    assert set(sandbox.ls()) == {"fix-3"}
    assert sandbox.git("branch", "--list", "agent/fix-1/work", "agent/fix-2/work") == ""
    assert sandbox.git("show", "main:src/by.txt") == "fix-3"


def test_uncommitted_work_holds_an_automatic_merge_back_and_says_why(sandbox: Sandbox) -> None:
    command = script(sandbox, "half", [[{"write": {"path": "a.txt", "content": "a\n"}}, {"commit": "a"},
                                        {"write": {"path": "b.txt", "content": "b\n"}}]])
    path = plan(sandbox, f"""
        merge: auto
        sessions:
          - {{name: half, task: go, command: "{command}"}}
    """)
    sandbox.sv("run", str(path))
    note = wait_until(lambda: sandbox.ls()["half"]["merge_note"], 30, message="the reason it is not merged")
    assert note == "1 uncommitted change(s): commit them to be merged"
    assert "a.txt" not in on_main(sandbox) and not sandbox.ls()["half"]["merged"]
