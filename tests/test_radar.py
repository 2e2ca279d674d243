"""The conflict radar: trial merges of real branches in a real repository, then the engine keeping every live
agent's `conflicts` current as its branch moves."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.client import request_at
from supervisor.git import refs
from supervisor.git.radar import Conflict, Radar
from supervisor.git.refs import AGENT_REFS, refs_stamp
from tests.conftest import Sandbox, wait_until
from tests.git_env import isolate_git

# ---------------------------------------------------------------------------------------------------------
# The radar on its own: branches made with plumbing, no worktree needed


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository on main with a few files, one with a space and one with non-ASCII letters in its path."""
    home = tmp_path / "home"
    home.mkdir()
    isolate_git(monkeypatch, home)
    where = tmp_path / "repo"
    where.mkdir()
    git(where, "init", "-q", "-b", "main")
    commit(where, "main", {"shared.txt": "base\n", "odd dir/ça va.txt": "base\n", "a.txt": "a\n", "b.txt": "b\n"})
    return where


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


def commit(root: Path, branch: str, files: dict[str, str], start: str | None = None) -> str:
    """Commit `files` on `branch` (created from `start`, or main) without any worktree; the new tip."""
    index = {"GIT_INDEX_FILE": str(root / ".git" / "test-index")}
    parent = git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}") if branch_exists(root, branch) \
        else (git(root, "rev-parse", start or "main") if start or branch_exists(root, "main") else None)
    if parent:
        git(root, "read-tree", parent, env=index)
    else:
        git(root, "read-tree", "--empty", env=index)
    for path, text in files.items():
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=root, input=text.encode(),
                              capture_output=True, check=True).stdout.decode().strip()
        git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
    tree = git(root, "write-tree", env=index)
    tip = git(root, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", f"edit {', '.join(files)}")
    git(root, "update-ref", f"refs/heads/{branch}", tip)
    return tip


def branch_exists(root: Path, branch: str) -> bool:
    return subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=root,
                          capture_output=True, check=False).returncode == 0


def tips(root: Path) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(objectname) %(refname:short)", "refs/heads/")
    return {ref: oid for oid, ref in (line.split(" ", 1) for line in out.splitlines())}


@pytest.fixture
def merges(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every `git merge-tree` process started from now on (a spy on the real subprocess.run)."""
    calls: list[list[str]] = []
    real = subprocess.run

    def spy(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        if args[:2] == ["git", "merge-tree"]:
            calls.append(list(args))
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    yield calls


def test_two_branches_editing_the_same_file_conflict_in_it(root: Path) -> None:
    commit(root, "agent/one", {"shared.txt": "one\n", "odd dir/ça va.txt": "one\n", "a.txt": "one\n"})
    commit(root, "agent/two", {"shared.txt": "two\n", "odd dir/ça va.txt": "two\n", "b.txt": "two\n"})
    scan = Radar(root).scan({"agent/one": "main", "agent/two": "main"}, tips(root))
    files = ("odd dir/ça va.txt", "shared.txt")
    assert scan.conflicts == {"agent/one": [Conflict("agent/two", files)], "agent/two": [Conflict("agent/one", files)]}
    assert scan.failures == [] and scan.merges == 3  # the pair, and each against main


def test_branches_editing_different_files_do_not_conflict(root: Path) -> None:
    commit(root, "agent/one", {"a.txt": "one\n"})
    commit(root, "agent/two", {"b.txt": "two\n"})
    commit(root, "main", {"shared.txt": "main moved on\n"})
    scan = Radar(root).scan({"agent/one": "main", "agent/two": "main"}, tips(root))
    assert scan.conflicts == {"agent/one": [], "agent/two": []}


def test_a_branch_conflicts_with_its_target_when_the_target_moved(root: Path) -> None:
    commit(root, "agent/one", {"shared.txt": "one\n"})
    commit(root, "agent/fresh", {})  # no change of its own
    commit(root, "main", {"shared.txt": "main\n"})
    scan = Radar(root).scan({"agent/one": "main", "agent/fresh": "main"}, tips(root))
    assert scan.conflicts == {"agent/one": [Conflict("main", ("shared.txt",))], "agent/fresh": []}
    # A target given as a commit (an agent started from a detached HEAD) works the same.
    main = tips(root)["main"]
    detached = Radar(root).scan({"agent/one": main}, tips(root))
    assert detached.conflicts == {"agent/one": [Conflict(main, ("shared.txt",))]}


def test_a_helper_meets_its_parent_as_a_pair_not_twice(root: Path) -> None:
    commit(root, "agent/auth", {"shared.txt": "auth\n"})
    commit(root, "agent/auth.t", {"a.txt": "t\n"}, start="main")  # forked before its parent's commit
    commit(root, "agent/auth.t", {"shared.txt": "helper\n"})
    scan = Radar(root).scan({"agent/auth": "main", "agent/auth.t": "agent/auth"}, tips(root))
    assert scan.conflicts == {"agent/auth": [Conflict("agent/auth.t", ("shared.txt",))],
                              "agent/auth.t": [Conflict("agent/auth", ("shared.txt",))]}
    assert scan.merges == 2  # the pair (which is also the helper against its target), and auth against main


def test_only_the_pairs_of_a_moved_branch_run_git_again(root: Path, merges: list[list[str]]) -> None:
    for name in ("one", "two", "three"):
        commit(root, f"agent/{name}", {"shared.txt": f"{name}\n"})
    branches: dict[str, str | None] = {f"agent/{name}": "main" for name in ("one", "two", "three")}
    radar = Radar(root, workers=2)
    first = radar.scan(branches, tips(root))
    assert first.merges == len(merges) == 6 and first.cached == 0  # 3 pairs, 3 against main
    assert all(len(found) == 2 for found in first.conflicts.values())

    merges.clear()
    again = radar.scan(branches, tips(root))
    assert merges == [] and again.merges == 0 and again.cached == 6
    assert again.conflicts == first.conflicts

    commit(root, "agent/two", {"shared.txt": "two\n", "b.txt": "more\n"})
    moved = radar.scan(branches, tips(root))
    assert moved.merges == len(merges) == 3  # two with one, with three, and against main
    assert moved.conflicts == first.conflicts  # still the same file
    assert radar.cache_size == 6  # the pairs of two's old tip were dropped


def test_a_branch_deleted_between_scans_leaves_the_radar(root: Path) -> None:
    commit(root, "agent/one", {"shared.txt": "one\n"})
    commit(root, "agent/two", {"shared.txt": "two\n"})
    branches: dict[str, str | None] = {"agent/one": "main", "agent/two": "main"}
    radar = Radar(root)
    assert radar.scan(branches, tips(root)).conflicts["agent/one"] == [Conflict("agent/two", ("shared.txt",))]
    git(root, "branch", "-D", "agent/two")
    scan = radar.scan(branches, tips(root))  # still asked for: the caller's list may lag behind git
    assert scan.conflicts == {"agent/one": []} and scan.failures == []
    assert radar.cache_size == 1  # one against main


def test_unrelated_histories_are_reported_and_the_rest_still_scanned(root: Path) -> None:
    commit(root, "agent/one", {"shared.txt": "one\n"})
    commit(root, "agent/two", {"shared.txt": "two\n"})
    git(root, "read-tree", "--empty", env={"GIT_INDEX_FILE": str(root / ".git" / "orphan-index")})
    empty = git(root, "write-tree", env={"GIT_INDEX_FILE": str(root / ".git" / "orphan-index")})
    git(root, "update-ref", "refs/heads/agent/lone", git(root, "commit-tree", empty, "-m", "unrelated"))
    scan = Radar(root).scan({"agent/one": "main", "agent/two": "main", "agent/lone": "main"}, tips(root))
    assert scan.conflicts["agent/one"] == [Conflict("agent/two", ("shared.txt",))]
    assert scan.conflicts["agent/lone"] == []
    assert {(f.branch, f.other) for f in scan.failures} == {
        ("agent/lone", "agent/one"), ("agent/lone", "agent/two"), ("agent/lone", "main")}
    assert all("unrelated histories" in f.error for f in scan.failures)


def test_trial_merges_leave_no_objects_and_touch_no_worktree(root: Path) -> None:
    commit(root, "agent/one", {"shared.txt": "one\n"})
    commit(root, "agent/two", {"shared.txt": "two\n"})
    git(root, "checkout", "-q", "main")
    def state() -> tuple[str, str, bytes]:
        return (git(root, "count-objects", "-v"), git(root, "--no-optional-locks", "status", "--porcelain"),
                (root / ".git" / "index").read_bytes())

    before = state()
    assert Radar(root).scan({"agent/one": "main", "agent/two": "main"}, tips(root)).conflicts["agent/one"]
    assert state() == before


def test_the_refs_stamp_changes_when_a_branch_moves_and_only_then(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refs, "RACY_SECONDS", 0.2)  # a shorter racy window: the test waits it out four times
    commit(root, "agent/one", {"a.txt": "one\n"})
    folders = [AGENT_REFS, "refs/heads"]

    def stamp() -> tuple[int, ...]:
        return refs_stamp(root / ".git", folders)

    def settled() -> tuple[int, ...]:
        """The stamp once equal to itself: the racy window after the last change has passed."""
        return tuple(wait_until(lambda: (first := stamp()) == stamp() and first, 5, message="a settled stamp"))

    quiet = settled()
    assert stamp() == quiet  # nothing moved: equal, so the engine runs no git
    commit(root, "agent/one", {"a.txt": "again\n"})
    assert stamp() != stamp()  # changed a moment ago: racy, equal to no other stamp
    moved = settled()
    assert moved != quiet
    commit(root, "main", {"b.txt": "main\n"})  # the target's folder counts too
    assert settled() not in (quiet, moved)
    git(root, "pack-refs", "--all")
    assert settled() not in (quiet, moved)


# ---------------------------------------------------------------------------------------------------------
# The engine: the radar follows live agents' branches


def ls_now(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """`ls` through the client API in this process (a CLI subprocess would add its own start-up time)."""
    socket = sandbox.runtime / sandbox.paths.runtime_dir.name / "engine.sock"
    return {agent["name"]: agent for agent in request_at(socket, "ls", {}, 10)}


def commit_in(sandbox: Sandbox, worktree: str, files: dict[str, str], *, amend: bool = False) -> None:
    for path, text in files.items():
        (Path(worktree) / path).write_text(text)
    sandbox.git("add", "--", *files, cwd=Path(worktree))
    sandbox.git("commit", "-q", "--no-verify", *(["--amend"] if amend else []), "-m", "edit", cwd=Path(worktree))


def conflicts(sandbox: Sandbox, name: str) -> list[dict[str, Any]]:
    return list(ls_now(sandbox)[name]["conflicts"])


def test_two_sessions_editing_one_file_show_on_the_radar_within_a_tick(sandbox: Sandbox) -> None:
    sandbox.sv("start", "one")
    sandbox.sv("start", "two")
    one, two = sandbox.wait_state("one", "idle"), sandbox.wait_state("two", "idle")
    assert one["conflicts"] == [] and two["conflicts"] == []
    commit_in(sandbox, one["worktree"], {"src/app.py": "print('one')\n"})
    commit_in(sandbox, two["worktree"], {"src/app.py": "print('two')\n"})
    committed = time.monotonic()
    wait_until(lambda: conflicts(sandbox, "one") and conflicts(sandbox, "two"), 10, interval=0.02,
               message="the conflict on both agents")
    seen = time.monotonic() - committed
    assert seen <= 2.0, f"the radar took {seen:.2f}s"
    assert conflicts(sandbox, "one") == [{"with": "two", "branch": "agent/two", "files": ["src/app.py"]}]
    assert conflicts(sandbox, "two") == [{"with": "one", "branch": "agent/one", "files": ["src/app.py"]}]
    shown = sandbox.sv("show", "two").stdout
    assert "conflict:         with one (agent/one)\n                    src/app.py" in shown
    assert json.loads(sandbox.sv("show", "two", "--json").stdout)["conflicts"] == conflicts(sandbox, "two")
    events = [e for e in json.loads(sandbox.sv("show", "one", "--json").stdout)["events"] if e["kind"] == "conflicts"]
    assert [e["summary"] for e in events] == ["conflicts with two (src/app.py)"]

    # two rewrites its commit to leave the file alone: gone from both.
    commit_in(sandbox, two["worktree"], {"src/app.py": "print('hello')\n", "README.md": "two\n"}, amend=True)
    wait_until(lambda: not conflicts(sandbox, "one") and not conflicts(sandbox, "two"), 10,
               message="the conflict cleared after the rewrite")

    # Again, then one stops: two's entry goes, and one (off the radar) keeps none.
    commit_in(sandbox, two["worktree"], {"src/app.py": "print('two again')\n"})
    wait_until(lambda: conflicts(sandbox, "two"), 10, message="the conflict again")
    sandbox.sv("stop", "one")
    wait_until(lambda: not conflicts(sandbox, "two") and not conflicts(sandbox, "one"), 10,
               message="the conflict cleared after the stop")


def test_against_the_base_branch_and_a_helper_against_its_parent(sandbox: Sandbox) -> None:
    sandbox.sv("start", "auth")
    auth = sandbox.wait_state("auth", "idle")
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth")
    helper = sandbox.wait_state("auth.t", "idle")
    commit_in(sandbox, auth["worktree"], {"README.md": "auth's readme\n", "src/app.py": "print('auth')\n"})
    # The user commits to main, which the session merges into.
    commit_in(sandbox, str(sandbox.root), {"README.md": "the user's readme\n"})
    # The helper (forked from auth before its commit) edits the same file as its parent.
    commit_in(sandbox, helper["worktree"], {"src/app.py": "print('helper')\n"})
    wait_until(lambda: len(conflicts(sandbox, "auth")) == 2, 10, message="auth's two conflicts")
    assert conflicts(sandbox, "auth") == [
        {"with": "auth.t", "branch": "agent/auth.t", "files": ["src/app.py"]},
        {"with": "main", "branch": "main", "files": ["README.md"]},
    ]
    # The helper merges into its parent: that is its target, met once, by name (main is its parent's business).
    assert conflicts(sandbox, "auth.t") == [{"with": "auth", "branch": "agent/auth", "files": ["src/app.py"]}]
