"""The conflict radar: trial merges of real branches in a real repository, then the engine keeping every live
agent's `conflicts` current as its branch moves."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Iterator, Mapping
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from supervisor.client import request_at
from supervisor.git import radar as radar_module
from supervisor.git import refs
from supervisor.git.radar import Conflict, Radar, Scan
from supervisor.git.refs import agent_refs_stamp
from supervisor.git.worktrees import GitError
from tests.conftest import Sandbox, wait_until
from tests.git_env import isolate_git
from tests.test_audit import engine_git

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


def git(root: Path, *args: str, env: dict[str, str] | None = None, codes: tuple[int, ...] = (0,),
        input: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False, input=input,
                          env={**os.environ, **(env or {})})
    if done.returncode not in codes:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


def commit(root: Path, branch: str, files: Mapping[str, str | None], start: str | None = None, *,
           merge: str | None = None) -> str:
    """Commit `files` (path → text, None: delete it) on `branch` (created from `start`, or main) without any
    worktree; the new tip. `merge`: a second parent, merged in first as `git merge-tree` does (a conflict's
    markers and all), so the commit is a merge whose own edits are `files`."""
    index = {"GIT_INDEX_FILE": str(root / ".git" / "test-index")}
    parent = git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", codes=(0, 1)) \
        or git(root, "rev-parse", "--verify", "-q", start or "main", codes=(0, 1))
    parents = [parent] if parent else []
    tree = parent
    if merge:
        assert parent
        parents.append(git(root, "rev-parse", merge))
        tree = git(root, "merge-tree", "--write-tree", "--no-messages", "--allow-unrelated-histories", parent, merge,
                   codes=(0, 1)).split()[0]
    git(root, "read-tree", *([tree] if tree else ["--empty"]), env=index)
    texts = {path: text for path, text in files.items() if text is not None}
    scratch = root / ".git" / "test-blobs"
    scratch.mkdir(exist_ok=True)
    for number, text in enumerate(texts.values()):
        (scratch / str(number)).write_text(text)
    blobs = git(root, "hash-object", "-w", "--stdin-paths", input="".join(
        f"{scratch / str(number)}\n" for number in range(len(texts)))).split() if texts else []
    entries = [f"100644 {blob}\t{path}\0" for path, blob in zip(texts, blobs, strict=True)]
    entries += [f"0 {'0' * 40}\t{path}\0" for path, text in files.items() if text is None]
    subprocess.run(["git", "update-index", "-z", "--replace", "--index-info"], cwd=root, check=True,
                   input="".join(entries).encode(), env={**os.environ, **index})
    tree = git(root, "write-tree", env=index)
    tip = git(root, "commit-tree", tree, *(f"-p{p}" for p in parents), "-m", f"edit {', '.join(files)}")
    git(root, "update-ref", f"refs/heads/{branch}", tip)
    return tip


def tips(root: Path) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(objectname) %(refname:short)", "refs/heads/")
    return {ref: oid for oid, ref in (line.split(" ", 1) for line in out.splitlines())}


@pytest.fixture
def merges(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every `git merge-tree` process started from now on (a spy on the real subprocess.run)."""
    calls: list[list[str]] = []
    real = subprocess.run

    def spy(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        command = engine_git(args)
        if command is not None and command[:2] == ["git", "merge-tree"]:
            calls.append(command)
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    yield calls


def test_two_branches_editing_the_same_file_conflict_in_it(root: Path) -> None:
    commit(root, "agent/one/work", {"shared.txt": "one\n", "odd dir/ça va.txt": "one\n", "a.txt": "one\n"})
    commit(root, "agent/two/work", {"shared.txt": "two\n", "odd dir/ça va.txt": "two\n", "b.txt": "two\n"})
    scan = Radar(root).scan({"agent/one/work": "main", "agent/two/work": "main"}, tips(root))
    files = ("odd dir/ça va.txt", "shared.txt")
    assert scan.conflicts == {"agent/one/work": [Conflict("agent/two/work", files)],
                              "agent/two/work": [Conflict("agent/one/work", files)]}
    assert scan.failures == [] and scan.merges == 1  # the pair; main has not moved: each is proven clean with it
    assert scan.skipped == 2


def test_branches_editing_different_files_do_not_conflict(root: Path) -> None:
    commit(root, "agent/one/work", {"a.txt": "one\n"})
    commit(root, "agent/two/work", {"b.txt": "two\n"})
    commit(root, "main", {"shared.txt": "main moved on\n"})
    scan = Radar(root).scan({"agent/one/work": "main", "agent/two/work": "main"}, tips(root))
    assert scan.conflicts == {"agent/one/work": [], "agent/two/work": []}


def test_a_branch_conflicts_with_its_target_when_the_target_moved(root: Path) -> None:
    commit(root, "agent/one/work", {"shared.txt": "one\n"})
    commit(root, "agent/fresh/work", {})  # no change of its own
    commit(root, "main", {"shared.txt": "main\n"})
    scan = Radar(root).scan({"agent/one/work": "main", "agent/fresh/work": "main"}, tips(root))
    assert scan.conflicts == {"agent/one/work": [Conflict("main", ("shared.txt",))], "agent/fresh/work": []}
    # A target given as a commit (an agent started from a detached HEAD) works the same.
    main = tips(root)["main"]
    detached = Radar(root).scan({"agent/one/work": main}, tips(root))
    assert detached.conflicts == {"agent/one/work": [Conflict(main, ("shared.txt",))]}


def test_a_helper_meets_its_parent_as_a_pair_not_twice(root: Path) -> None:
    commit(root, "agent/auth/work", {"shared.txt": "auth\n"})
    commit(root, "agent/auth.t/work", {"a.txt": "t\n"}, start="main")  # forked before its parent's commit
    commit(root, "agent/auth.t/work", {"shared.txt": "helper\n"})
    scan = Radar(root).scan({"agent/auth/work": "main", "agent/auth.t/work": "agent/auth/work"}, tips(root))
    assert scan.conflicts == {"agent/auth/work": [Conflict("agent/auth.t/work", ("shared.txt",))],
                              "agent/auth.t/work": [Conflict("agent/auth/work", ("shared.txt",))]}
    assert scan.merges == 1  # the pair (which is also the helper against its target)
    assert scan.skipped == 1  # auth against main, which has not moved


def test_only_the_pairs_of_a_moved_branch_run_git_again(root: Path, merges: list[list[str]]) -> None:
    for name in ("one", "two", "three"):
        commit(root, f"agent/{name}/work", {"shared.txt": f"{name}\n"})
    branches: dict[str, str | None] = {f"agent/{name}/work": "main" for name in ("one", "two", "three")}
    radar = Radar(root, workers=2)
    first = radar.scan(branches, tips(root))
    assert first.merges == len(merges) == 3 and first.cached == 0  # the 3 pairs
    assert first.skipped == 3  # each against main, which has not moved
    assert all(len(found) == 2 for found in first.conflicts.values())

    merges.clear()
    again = radar.scan(branches, tips(root))
    assert merges == [] and again.merges == again.skipped == 0 and again.cached == 6
    assert again.conflicts == first.conflicts

    commit(root, "agent/two/work", {"shared.txt": "two\n", "b.txt": "more\n"})
    moved = radar.scan(branches, tips(root))
    assert moved.merges == len(merges) == 2 and moved.skipped == 1  # two with one and with three; against main
    assert moved.conflicts == first.conflicts  # still the same file
    assert radar.cache_size == 6  # the pairs of two's old tip were dropped


def test_a_parent_that_moves_away_from_the_commit_its_helper_and_target_share(root: Path) -> None:
    """A fresh session and its fresh helper both sit on main's tip: two pairs answered for the same two commits.
    When the parent commits, both drop that answer, once."""
    main = git(root, "rev-parse", "main")
    for branch in ("agent/auth/work", "agent/auth.t/work"):
        git(root, "branch", branch, main)
    branches: dict[str, str | None] = {"agent/auth/work": "main", "agent/auth.t/work": "agent/auth/work"}
    radar = Radar(root)
    assert radar.scan(branches, tips(root)).conflicts == {"agent/auth/work": [], "agent/auth.t/work": []}
    commit(root, "agent/auth/work", {"a.txt": "auth\n"})
    scan = radar.scan(branches, tips(root))
    assert scan.conflicts == {"agent/auth/work": [], "agent/auth.t/work": []} and scan.failures == []


def test_a_branch_deleted_between_scans_leaves_the_radar(root: Path) -> None:
    commit(root, "agent/one/work", {"shared.txt": "one\n"})
    commit(root, "agent/two/work", {"shared.txt": "two\n"})
    branches: dict[str, str | None] = {"agent/one/work": "main", "agent/two/work": "main"}
    radar = Radar(root)
    assert radar.scan(branches, tips(root)).conflicts["agent/one/work"] == [Conflict("agent/two/work", ("shared.txt",))]
    git(root, "branch", "-D", "agent/two/work")
    scan = radar.scan(branches, tips(root))  # still asked for: the caller's list may lag behind git
    assert scan.conflicts == {"agent/one/work": []} and scan.failures == []
    assert radar.cache_size == 1  # one against main


def test_unrelated_histories_are_reported_and_the_rest_still_scanned(root: Path) -> None:
    commit(root, "agent/one/work", {"shared.txt": "one\n"})
    commit(root, "agent/two/work", {"shared.txt": "two\n"})
    git(root, "read-tree", "--empty", env={"GIT_INDEX_FILE": str(root / ".git" / "orphan-index")})
    empty = git(root, "write-tree", env={"GIT_INDEX_FILE": str(root / ".git" / "orphan-index")})
    git(root, "update-ref", "refs/heads/agent/lone/work", git(root, "commit-tree", empty, "-m", "unrelated"))
    scan = Radar(root).scan({"agent/one/work": "main", "agent/two/work": "main", "agent/lone/work": "main"}, tips(root))
    assert scan.conflicts["agent/one/work"] == [Conflict("agent/two/work", ("shared.txt",))]
    assert scan.conflicts["agent/lone/work"] == []
    assert {(f.branch, f.other) for f in scan.failures} == {
        ("agent/lone/work", "agent/one/work"), ("agent/lone/work", "agent/two/work"), ("agent/lone/work", "main")}
    assert all("unrelated histories" in f.error for f in scan.failures)


def test_trial_merges_leave_no_objects_and_touch_no_worktree(root: Path) -> None:
    commit(root, "agent/one/work", {"shared.txt": "one\n"})
    commit(root, "agent/two/work", {"shared.txt": "two\n"})
    git(root, "checkout", "-q", "main")
    def state() -> tuple[str, str, bytes]:
        return (git(root, "count-objects", "-v"), git(root, "--no-optional-locks", "status", "--porcelain"),
                (root / ".git" / "index").read_bytes())

    before = state()
    scan = Radar(root).scan({"agent/one/work": "main", "agent/two/work": "main"}, tips(root))
    assert scan.conflicts["agent/one/work"]
    assert state() == before


# ---------------------------------------------------------------------------------------------------------
# The prefilter: exactly what one plain `git merge-tree` per pair reports, with fewer merges


def truth(root: Path, branches: Mapping[str, str | None], at: Mapping[str, str],
          ) -> tuple[dict[str, list[Conflict]], set[tuple[str, str]]]:
    """The conflicts and the pairs git cannot merge, from one plain `git merge-tree` per pair: every two
    branches, and each branch against a target that is not one of them (the radar's pairs)."""
    present = sorted(branch for branch in branches if branch in at)
    pairs = [*combinations(present, 2),
             *((b, t) for b in present if (t := branches[b]) and t not in present and (t in at or len(t) == 40))]
    conflicts: dict[str, list[Conflict]] = {branch: [] for branch in present}
    failures: set[tuple[str, str]] = set()
    for one, two in pairs:
        done = subprocess.run(["git", "merge-tree", "--write-tree", "-z", "--name-only", "--no-messages",
                               at[one], at.get(two, two)], cwd=root, capture_output=True, check=False)
        fields = [field for field in done.stdout.split(b"\0") if field]
        if done.returncode == 1 and len(fields) > 1:
            files = tuple(dict.fromkeys(field.decode("utf-8", "surrogateescape") for field in fields[1:]))
            conflicts[one].append(Conflict(two, files))
            if two in conflicts:
                conflicts[two].append(Conflict(one, files))
        elif done.returncode != 0:
            failures.add((one, two))
    for found in conflicts.values():
        found.sort()
    return conflicts, failures


def exact(root: Path, branches: Mapping[str, str | None], radar: Radar | None = None) -> Scan:
    """A scan, checked against the truth: the same conflicts and the same pairs git cannot merge."""
    at = tips(root)
    scan = (radar or Radar(root)).scan(branches, at)
    conflicts, failures = truth(root, branches, at)
    assert scan.conflicts == conflicts
    assert {(failure.branch, failure.other) for failure in scan.failures} == failures
    return scan


def on_main(*names: str) -> dict[str, str | None]:
    return {f"agent/{name}/work": "main" for name in names}


def test_the_prefilter_merges_only_pairs_that_touch_the_same_paths(root: Path, merges: list[list[str]]) -> None:
    commit(root, "agent/one/work", {"a.txt": "one\n"})
    commit(root, "agent/two/work", {"b.txt": "two\n"})
    commit(root, "agent/three/work", {"shared.txt": "three\n"})
    commit(root, "agent/four/work", {"shared.txt": "four\n", "new/file.txt": "four\n"})
    scan = Radar(root).scan(on_main("one", "two", "three", "four"), tips(root))
    assert scan.conflicts["agent/four/work"] == [Conflict("agent/three/work", ("shared.txt",))]
    assert scan.merges == len(merges) == 1 and scan.skipped == 5 + 4  # three with four; the others, and main
    assert Radar(root, prefilter=False).scan(on_main("one", "two", "three", "four"), tips(root)).merges == 10
    assert exact(root, on_main("one", "two", "three", "four")).conflicts == scan.conflicts


def test_a_file_against_a_directory_of_the_same_name_is_merged(root: Path) -> None:
    commit(root, "agent/file/work", {"new": "a file\n", "deep/x": "a file\n"})
    commit(root, "agent/dir/work", {"new/inside.txt": "in a directory\n"})
    commit(root, "agent/deeper/work", {"deep/x/y/z.txt": "far below\n"})
    commit(root, "agent/replaced/work", {"a.txt": None, "a.txt/now.txt": "a.txt is a directory now\n"})
    commit(root, "agent/edits/work", {"a.txt": "edited\n"})
    scan = exact(root, on_main("file", "dir", "deeper", "replaced", "edits"))
    assert {c.other for c in scan.conflicts["agent/file/work"]} == {"agent/dir/work", "agent/deeper/work"}
    assert [c.other for c in scan.conflicts["agent/replaced/work"]] == ["agent/edits/work"]


def test_a_change_of_the_target_between_two_forks_counts_for_the_younger_branch(root: Path) -> None:
    commit(root, "agent/old/work", {"shared.txt": "old\n"})  # forks from main before main's change…
    commit(root, "main", {"shared.txt": "main\n", "b.txt": "main\n"})
    commit(root, "agent/young/work", {"a.txt": "young\n"})  # …this one after: it carries main's shared.txt
    commit(root, "agent/later/work", {"a.txt": "later\n"}, start="main")  # forks at the same commit as young
    scan = exact(root, on_main("old", "young", "later"))
    assert scan.conflicts["agent/old/work"] == [Conflict("agent/later/work", ("shared.txt",)),
                                           Conflict("agent/young/work", ("shared.txt",)),
                                           Conflict("main", ("shared.txt",))]
    assert scan.skipped == 2  # young and later (same fork, but both edit a.txt: merged), each against main
    # A change the target makes after both forks is the target's business, not the pair's.
    commit(root, "main", {"a.txt": "main again\n"})
    scan = exact(root, on_main("young", "later"))
    assert scan.conflicts["agent/young/work"] == [Conflict("agent/later/work", ("a.txt",)),
                                                  Conflict("main", ("a.txt",))]


def test_a_directory_renamed_by_one_side_meets_a_file_added_in_it_by_the_other(root: Path) -> None:
    commit(root, "agent/renames/work", {"odd dir/ça va.txt": None, "new dir/ça va.txt": "base\n"})
    commit(root, "agent/adds/work", {"odd dir/extra.txt": "extra\n"})
    commit(root, "agent/elsewhere/work", {"b.txt": "elsewhere\n", "lib/extra.txt": "extra\n"})
    scan = exact(root, on_main("renames", "adds", "elsewhere"))
    assert scan.conflicts["agent/adds/work"] == [Conflict("agent/renames/work", ("new dir/extra.txt",))]
    assert scan.merges == 1  # the others touch nothing of one another
    # The same rename made on the target between two forks.
    commit(root, "agent/before/work", {"odd dir/more.txt": "more\n"})
    commit(root, "main", {"odd dir/ça va.txt": None, "new dir/ça va.txt": "base\n"})
    commit(root, "agent/after/work", {"b.txt": "after\n"})
    scan = exact(root, on_main("before", "after"))
    assert [c.other for c in scan.conflicts["agent/before/work"]] == ["agent/after/work", "main"]


def test_renames_are_a_deletion_and_an_addition(root: Path) -> None:
    commit(root, "agent/renames/work", {"a.txt": None, "c.txt": "a\n"})
    commit(root, "agent/edits/work", {"a.txt": "a\nedited\n"})  # follows the rename cleanly, but only a merge knows
    commit(root, "agent/adds/work", {"c.txt": "another c\n"})
    commit(root, "agent/deletes/work", {"a.txt": None})
    scan = exact(root, on_main("renames", "edits", "adds", "deletes"))
    assert [c.other for c in scan.conflicts["agent/renames/work"]] == ["agent/adds/work", "agent/deletes/work"]
    assert scan.merges == 4  # every pair that shares a.txt or c.txt


def test_a_branch_that_merged_its_target_is_seen_from_its_new_fork(root: Path) -> None:
    commit(root, "agent/merger/work", {"a.txt": "merger\n"})
    commit(root, "main", {"shared.txt": "main\n"})
    commit(root, "agent/merger/work", {}, merge="main")  # brings main's shared.txt in: its fork moves up
    commit(root, "agent/young/work", {"shared.txt": "young\n"})
    commit(root, "agent/stale/work", {"shared.txt": "stale\n"}, start=f"{tips(root)['main']}~1")
    scan = exact(root, on_main("merger", "young", "stale"))
    assert [c.other for c in scan.conflicts["agent/stale/work"]] == ["agent/merger/work", "agent/young/work", "main"]
    assert scan.conflicts["agent/merger/work"] == [Conflict("agent/stale/work", ("shared.txt",))]
    # Then it edits what it merged: now it meets the young branch too.
    commit(root, "agent/merger/work", {"shared.txt": "merger\n"})
    exact(root, on_main("merger", "young", "stale"))


def test_a_branch_that_merged_another_agents_branch_carries_its_changes(root: Path) -> None:
    commit(root, "agent/one/work", {"shared.txt": "one\n"})
    commit(root, "agent/two/work", {"b.txt": "two\n"})
    commit(root, "agent/two/work", {}, merge="agent/one/work")
    commit(root, "agent/three/work", {"shared.txt": "three\n"})
    commit(root, "agent/four/work", {"a.txt": "four\n"})
    scan = exact(root, on_main("one", "two", "three", "four"))
    assert [c.other for c in scan.conflicts["agent/three/work"]] == ["agent/one/work", "agent/two/work"]
    assert scan.conflicts["agent/two/work"] == [Conflict("agent/three/work", ("shared.txt",))]


def test_a_merge_then_a_revert_is_seen_from_the_true_merge_base(root: Path) -> None:
    # merger merges main, then undoes main's change: against a branch forked after that change, the base is
    # that change (merger's fork moved), from which merger's shared.txt differs.
    commit(root, "agent/merger/work", {"a.txt": "merger\n"})
    commit(root, "main", {"shared.txt": "main\n"})
    commit(root, "agent/merger/work", {}, merge="main")
    commit(root, "agent/merger/work", {"shared.txt": "base\n"})
    commit(root, "agent/young/work", {"shared.txt": "young\n"})
    # two merges one and undoes its change; one edits it again: their base is one's first commit.
    commit(root, "agent/one/work", {"b.txt": "one\n"}, start=f"{tips(root)['main']}~1")
    commit(root, "agent/two/work", {}, start=f"{tips(root)['main']}~1", merge="agent/one/work")
    commit(root, "agent/two/work", {"b.txt": "b\n"})
    commit(root, "agent/one/work", {"b.txt": "one again\n"})
    scan = exact(root, on_main("merger", "young", "one", "two"))
    assert Conflict("agent/young/work", ("shared.txt",)) in scan.conflicts["agent/merger/work"]
    assert Conflict("agent/two/work", ("b.txt",)) in scan.conflicts["agent/one/work"]

def test_criss_cross_merges_and_forks_that_are_not_ancestors_of_one_another(root: Path) -> None:
    commit(root, "agent/one/work", {"a.txt": "one\n"})
    commit(root, "agent/two/work", {"b.txt": "two\n"})
    first_one, first_two = tips(root)["agent/one/work"], tips(root)["agent/two/work"]
    commit(root, "agent/one/work", {"shared.txt": "one\n"}, merge=first_two)
    commit(root, "agent/two/work", {"shared.txt": "two\n"}, merge=first_one)  # two merge bases now
    # main merges a side line: forks on either side of that merge are not ancestors of one another.
    commit(root, "side", {"odd dir/ça va.txt": "side\n"})
    commit(root, "main", {"a.txt": "main\n"})
    commit(root, "main", {}, merge="side")
    commit(root, "agent/on-side/work", {"b.txt": "on side\n"}, start="side")
    commit(root, "agent/on-main/work", {"odd dir/ça va.txt": "on main\n"}, start=f"{tips(root)['main']}~1")
    scan = exact(root, on_main("one", "two", "on-side", "on-main"))
    assert Conflict("agent/two/work", ("shared.txt",)) in scan.conflicts["agent/one/work"]
    assert Conflict("agent/on-side/work", ("odd dir/ça va.txt",)) in scan.conflicts["agent/on-main/work"]


def test_what_is_cached_still_holds_when_the_chain_of_forks_changes_below(root: Path) -> None:
    commit(root, "agent/oldest/work", {"b.txt": "oldest\n"})
    commit(root, "main", {"shared.txt": "main\n"})
    commit(root, "agent/middle/work", {"a.txt": "middle\n"})
    commit(root, "main", {"a.txt": "main\n"})  # between middle's fork and young's: meets middle's change
    commit(root, "agent/young/work", {"odd dir/ça va.txt": "young\n"})
    radar = Radar(root)
    scan = exact(root, on_main("oldest", "middle", "young"), radar)
    assert [c.other for c in scan.conflicts["agent/middle/work"]] == ["agent/young/work", "main"]
    commit(root, "agent/young/work", {"b.txt": "young\n"})
    exact(root, on_main("middle", "young"), radar)  # oldest stopped: middle's fork is the oldest now
    commit(root, "agent/oldest/work", {"odd dir/ça va.txt": "oldest\n"})
    exact(root, on_main("oldest", "middle", "young"), radar)  # and back

def test_a_commit_on_top_costs_one_diff_tree_and_a_rewrite_a_rev_list_more(root: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = subprocess.run

    def spy(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        command = engine_git(args)
        if command is not None:
            calls.append(command[1])
        return real(args, *rest, **kwargs)

    commit(root, "agent/one/work", {"a.txt": "one\n"})
    commit(root, "agent/two/work", {"b.txt": "two\n"})
    branches = on_main("one", "two")
    radar = Radar(root)
    exact(root, branches, radar)
    monkeypatch.setattr(subprocess, "run", spy)
    commit(root, "agent/one/work", {"a.txt": "one more\n"})
    at = tips(root)
    calls.clear()
    assert radar.scan(branches, at).skipped == 2
    assert calls == ["diff-tree"]  # its line is the previous commit's plus itself: checked there
    rewritten = commit(root, "agent/rewritten/work", {"b.txt": "one\n"})  # from main: not on top of one
    git(root, "update-ref", "refs/heads/agent/one/work", rewritten)
    at = tips(root)
    calls.clear()
    scan = radar.scan(branches, at)
    assert calls[:2] == ["diff-tree", "rev-list"] and scan.merges == 1  # the guess failed: looked up
    assert scan.conflicts["agent/one/work"] == [Conflict("agent/two/work", ("b.txt",))]
    commit(root, "agent/one/work", {}, merge="agent/two/work")  # a merge: not a commit on top either
    calls.clear()
    exact(root, branches, radar)
    assert "rev-list" in calls

def test_a_guess_that_could_not_be_checked_is_not_kept(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit(root, "agent/one/work", {"b.txt": "one\n"})
    commit(root, "agent/two/work", {"a.txt": "two\n"})
    branches = on_main("one", "two")
    radar = Radar(root)
    exact(root, branches, radar)
    commit(root, "agent/one/work", {}, merge="agent/two/work")  # not on top: its guessed line is wrong…
    real = radar_module._git

    def failing(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
        if args[0] == "diff-tree":
            raise GitError("git diff-tree failed: for the test")
        return real(root, *args, stdin=stdin)

    monkeypatch.setattr(radar_module, "_git", failing)
    exact(root, branches, radar)  # …and the diff-tree that would have told fails: every pair is merged
    monkeypatch.setattr(radar_module, "_git", real)
    commit(root, "agent/one/work", {"a.txt": "a\n"})  # on top of the merge, undoing two's change
    commit(root, "agent/two/work", {"a.txt": "two again\n"})
    scan = exact(root, branches, radar)  # their merge base is two's first commit: they conflict
    assert scan.conflicts["agent/one/work"] == [Conflict("agent/two/work", ("a.txt",))]

def test_helpers_meet_their_parent_and_other_sessions(root: Path) -> None:
    commit(root, "agent/auth/work", {"a.txt": "auth\n"})
    commit(root, "agent/auth.t/work", {"b.txt": "test\n"}, start="agent/auth/work")
    commit(root, "agent/auth/work", {"a.txt": "auth again\n", "shared.txt": "auth\n"})
    commit(root, "agent/auth.t/work", {"a.txt": "test\n"})
    commit(root, "agent/auth.t.t/work", {"shared.txt": "deeper\n"}, start="agent/auth.t/work")
    commit(root, "agent/ui/work", {"b.txt": "ui\n"})
    commit(root, "agent/docs/work", {"odd dir/ça va.txt": "docs\n"})
    branches: dict[str, str | None] = {"agent/auth/work": "main", "agent/auth.t/work": "agent/auth/work",
                                       "agent/auth.t.t/work": "agent/auth.t/work", "agent/ui/work": "main",
                                       "agent/docs/work": "main"}
    scan = exact(root, branches)
    assert [c.other for c in scan.conflicts["agent/auth.t/work"]] == ["agent/auth/work", "agent/ui/work"]
    assert scan.skipped >= 5


def test_a_target_given_as_a_commit_and_a_merged_branch_that_goes_on(root: Path) -> None:
    commit(root, "agent/one/work", {"a.txt": "one\n"})
    commit(root, "agent/two/work", {"b.txt": "two\n"})
    commit(root, "main", {}, merge="agent/one/work")  # one is merged, and goes on from there
    commit(root, "agent/one/work", {"shared.txt": "one\n"})
    commit(root, "agent/three/work", {"shared.txt": "three\n"})
    main = tips(root)["main"]
    exact(root, {"agent/one/work": main, "agent/two/work": main, "agent/three/work": main})
    exact(root, on_main("one", "two", "three"))


def test_unrelated_histories_fail_as_with_a_merge_per_pair(root: Path) -> None:
    git(root, "read-tree", "--empty", env={"GIT_INDEX_FILE": str(root / ".git" / "orphan-index")})
    empty = git(root, "write-tree", env={"GIT_INDEX_FILE": str(root / ".git" / "orphan-index")})
    git(root, "update-ref", "refs/heads/lone", git(root, "commit-tree", empty, "-m", "unrelated"))
    commit(root, "agent/lone/work", {"a.txt": "lone\n"}, start="lone")
    commit(root, "agent/one/work", {"b.txt": "one\n"})
    commit(root, "agent/joined/work", {"b.txt": "joined\n"})
    commit(root, "agent/joined/work", {}, merge="lone")  # a root of its own, and main's history too
    scan = exact(root, on_main("lone", "one", "joined"))
    assert len(scan.failures) == 2  # lone with one and with main; joined has lone's history


# Random histories: files shared by all (edited line by line, so that some edits of one file merge cleanly),
# a folder of each branch's own, renames of files and folders, files where another branch has a folder,
# branches forked at different commits of main, helpers of branches, merges of main, of other branches, and
# into main.
SHARED = ["shared.txt", "a.txt", "lib/x.py", "lib/y.py", "lib/sub/z.py", "docs/guide.md"]
ADDED = ["lib/new.py", "lib/sub/new.py", "docs", "lib/x.py/inner.py", "new/file.txt", "new", "c.txt"]
FOLDERS = {"lib": "src", "lib/sub": "lib/inner", "docs": "manual"}


class History:
    def __init__(self, root: Path, seed: int) -> None:
        self.root, self.rng = root, random.Random(seed)
        self.branches: dict[str, str | None] = {}
        commit(root, "main", {path: self.text() for path in SHARED})

    def text(self) -> str:
        return "".join(f"line {n} {self.rng.randrange(1000)}\n" for n in range(6))

    def files(self, branch: str) -> list[str]:
        return git(self.root, "ls-tree", "-r", "--name-only", "-z", branch).split("\0")

    def edits(self, branch: str) -> dict[str, str | None]:
        rng, files, edits = self.rng, [f for f in self.files(branch) if f], {}
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.45 and branch != "main":
                edits[f"own/{branch.replace('/', '-')}/f{rng.randrange(3)}.txt"] = self.text()
            elif roll < 0.7 and files:
                path = rng.choice(files)
                lines = git(self.root, "show", f"{branch}:{path}").splitlines(keepends=True) or ["\n"]
                lines[rng.randrange(len(lines))] = f"edited {rng.randrange(1000)}\n"
                edits[path] = "".join(lines)
            elif roll < 0.8:
                edits[rng.choice(ADDED)] = self.text()
            elif roll < 0.86 and files:
                edits[rng.choice(files)] = None
            elif roll < 0.94 and files:
                path = rng.choice(files)
                edits[path], edits[rng.choice([*ADDED, f"moved/{path}"])] = None, self.text()
            else:
                old, new = rng.choice(sorted(FOLDERS.items()))
                for path in files:
                    if path.startswith(f"{old}/"):
                        edits[path], edits[new + path[len(old):]] = None, git(self.root, "show", f"{branch}:{path}")
        return edits

    def grow(self, count: int) -> None:
        rng = self.rng
        for number in range(count):
            if rng.random() < 0.5:
                commit(self.root, "main", self.edits("main"))
            if self.branches and rng.random() < 0.25:
                parent = rng.choice(sorted(self.branches))
                name, start, target = f"{parent}.h{number}", parent, parent
            else:
                name, start, target = f"agent/s{number}/work", "main", "main"
            commit(self.root, name, self.edits(start), start=start)
            self.branches[name] = target
        for _ in range(count):
            self.step()

    def step(self) -> None:
        rng, names = self.rng, sorted(self.branches)
        branch, roll = rng.choice(names), rng.random()
        if roll < 0.15:
            commit(self.root, branch, {}, merge=self.branches[branch] or "main")
        elif roll < 0.25:
            commit(self.root, branch, self.edits(branch), merge=rng.choice(names))
        elif roll < 0.35:
            commit(self.root, "main", {}, merge=branch)
        elif roll < 0.5:
            commit(self.root, "main", self.edits("main"))
        else:
            commit(self.root, branch, self.edits(branch))


@pytest.mark.parametrize("seed", range(8))
def test_the_prefilter_agrees_with_a_merge_per_pair_on_random_histories(root: Path, seed: int) -> None:
    history = History(root, seed)
    history.grow(8)
    radar = Radar(root)
    cold = exact(root, history.branches, radar)
    assert cold.skipped > 0
    for _ in range(3):  # some branches move, and main: the cached facts must still hold
        history.step()
        history.step()
        exact(root, history.branches, radar)



def test_the_refs_stamp_changes_when_a_branch_moves_and_only_then(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refs, "RACY_SECONDS", 0.2)  # a shorter racy window: the test waits it out four times
    commit(root, "agent/one/work", {"a.txt": "one\n"})

    def stamp() -> tuple[int, ...]:
        return agent_refs_stamp(root / ".git", ["agent/one/work"], ["main"])

    def settled() -> tuple[int, ...]:
        """The stamp once equal to itself: the racy window after the last change has passed."""
        return tuple(wait_until(lambda: (first := stamp()) == stamp() and first, 5, message="a settled stamp"))

    quiet = settled()
    assert stamp() == quiet  # nothing moved: equal, so the engine runs no git
    commit(root, "agent/one/work", {"a.txt": "again\n"})
    assert stamp() != stamp()  # changed a moment ago: racy, equal to no other stamp
    moved = settled()
    assert moved != quiet
    commit(root, "main", {"b.txt": "main\n"})  # the target's folder counts too
    targeted = settled()
    assert targeted not in (quiet, moved)
    git(root, "branch", "agent/new/work", "main")  # a new agent's folder appears beside the others
    created = settled()
    assert created not in (quiet, moved, targeted)
    git(root, "pack-refs", "--all")
    assert settled() not in (quiet, moved, targeted, created)


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
    assert seen <= 3.0, f"the radar took {seen:.2f}s"  # looks every 0.5 s; git runs slow on a loaded machine
    assert conflicts(sandbox, "one") == [{"with": "two", "branch": "agent/two/work", "files": ["src/app.py"]}]
    assert conflicts(sandbox, "two") == [{"with": "one", "branch": "agent/one/work", "files": ["src/app.py"]}]
    shown = sandbox.sv("show", "two").stdout
    assert "conflict:         with one (agent/one/work)\n                    src/app.py" in shown
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
        {"with": "auth.t", "branch": "agent/auth.t/work", "files": ["src/app.py"]},
        {"with": "main", "branch": "main", "files": ["README.md"]},
    ]
    # The helper merges into its parent: that is its target, met once, by name (main is its parent's business).
    assert conflicts(sandbox, "auth.t") == [{"with": "auth", "branch": "agent/auth/work", "files": ["src/app.py"]}]


def test_a_branch_moved_onto_another_branchs_tip_is_scanned(root: Path) -> None:
    """As `git update-ref` of one agent's branch to another's tip does: pairs answered before become the same pair
    of commits, whose old outcome is dropped once."""
    base = tips(root)["main"]
    branches: dict[str, str | None] = {"agent/victim/work": "main", "agent/evil/work": "main"}
    for name in branches:
        git(root, "update-ref", f"refs/heads/{name}", base)
    radar = Radar(root)
    radar.scan(branches, tips(root))
    commit(root, "agent/victim/work", {"mine.txt": "mine\n"})
    radar.scan(branches, tips(root))
    sneaky = commit(root, "agent/evil/work", {"sneaky.txt": "sneaky\n"})
    radar.scan(branches, tips(root))
    git(root, "update-ref", "refs/heads/agent/victim/work", sneaky)
    scan = radar.scan(branches, tips(root))
    assert scan.conflicts == {branch: [] for branch in branches} and scan.failures == []
    git(root, "update-ref", "refs/heads/main", sneaky)  # merged: a fast-forward
    scan = radar.scan(branches, tips(root))
    assert scan.conflicts == {branch: [] for branch in branches} and scan.failures == []
