"""Diff stats and readiness to merge as `diffstat` and `ls --json` give them: right, and cached until something
that changes them moved (real git, a real repository with a linked worktree)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from supervisor.core.model import Agent, State
from supervisor.engine.branches import BranchFacts, Readiness
from tests.git_env import isolate_git


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path, str]]:
    """A repository on main, and a worktree `wt` on branch agent/api/work forked from it."""
    isolate_git(monkeypatch, tmp_path)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("a\nb\nc\n")
    (root / ".gitignore").write_text("*.log\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    base = git(root, "rev-parse", "HEAD")
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("/SESSION.md\n")
    worktree = tmp_path / "wt"
    git(root, "worktree", "add", "-q", "-b", "agent/api/work", str(worktree), base)
    yield root, worktree, base


def agent(worktree: Path, base: str, name: str = "api", **fields: object) -> Agent:
    record = Agent(name=name, profile="generic", command="sh", worktree=str(worktree), branch=f"agent/{name}/work",
                   base=base, target="main", state=State.WORKING, state_since=1.0)
    return replace(record, **fields)  # type: ignore[arg-type]


def commit(worktree: Path, path: str, text: str) -> str:
    (worktree / path).write_text(text)
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", f"edit {path}")
    return git(worktree, "rev-parse", "HEAD")


def test_diff_stats_count_commits_edits_and_new_files_and_run_git_only_when_something_moved(
        repo: tuple[Path, Path, str]) -> None:
    root, worktree, base = repo
    facts = BranchFacts(root, root / ".git")
    commit(worktree, "app.py", "a\nB\nc\nd\n")  # +2 -1
    (worktree / "notes.md").write_text("one\ntwo\nthree")  # untracked: 3 lines
    (worktree / "debug.log").write_text("ignored\n")  # ignored
    (worktree / "SESSION.md").write_text("excluded\n")  # excluded, like supervisor's own files
    api = agent(worktree, base)
    assert facts.diffstats([api], {}) == {"api": {"files": 2, "added": 5, "removed": 1}}
    runs = facts.git_runs
    for _ in range(3):  # a dashboard asking again and again
        assert facts.diffstats([api], {}) == {"api": {"files": 2, "added": 5, "removed": 1}}
    assert facts.git_runs == runs, "nothing moved: no git"

    (worktree / "app.py").write_text("a\nB\nc\nd\ne\n")  # an edit while it works: not looked at yet...
    assert facts.diffstats([api], {"api": time.time()})["api"]["added"] == 5
    assert facts.git_runs == runs  # (its pane printed, but its last stat is fresh: ACTIVE_EVERY)
    idle = replace(api, state=State.IDLE, state_since=2.0)  # ...its turn ended: looked at once
    assert facts.diffstats([idle], {})["api"] == {"files": 2, "added": 6, "removed": 1}
    runs = facts.git_runs
    git(worktree, "add", "notes.md")  # the index moved
    assert facts.diffstats([idle], {})["api"] == {"files": 2, "added": 6, "removed": 1}
    assert facts.git_runs > runs
    runs = facts.git_runs
    git(worktree, "commit", "-q", "-am", "more")  # the branch moved
    assert facts.diffstats([idle], {})["api"] == {"files": 2, "added": 6, "removed": 1}
    assert facts.git_runs > runs


def test_ready_to_merge_needs_a_finished_turn_commits_a_clean_audit_and_no_busy_helper(
        repo: tuple[Path, Path, str]) -> None:
    root, worktree, base = repo
    facts = BranchFacts(root, root / ".git")
    working = agent(worktree, base)
    assert facts.readiness([working])["api"].ahead is None  # at work: not even counted
    idle = replace(working, state=State.IDLE)
    nothing = facts.readiness([idle])["api"]
    assert (nothing.ahead, nothing.ready) == (0, False)  # nothing to merge

    tip = commit(worktree, "app.py", "changed\n")
    unaudited = facts.readiness([idle])["api"]
    assert (unaudited.ahead, unaudited.ready) == (1, False)  # the audit has not seen this tip yet
    audited = replace(idle, extra={"audited": tip})
    assert facts.readiness([audited])["api"].ready
    assert not facts.readiness([replace(idle, extra={"audited": tip, "violations": [{"commit": tip}]})])["api"].ready
    assert not facts.readiness([replace(idle, extra={"audited": tip, "merged_tip": tip})])["api"].ready
    helper = agent(worktree, base, name="api.tests")
    assert not facts.readiness([audited, helper])["api"].ready  # its helper still works
    assert facts.readiness([audited, replace(helper, state=State.STOPPED)])["api"].ready
    exited = replace(audited, state=State.EXITED, exit_code=0)
    assert facts.readiness([exited])["api"].ready
    assert not facts.readiness([replace(exited, exit_code=2)])["api"].ready  # it crashed: look first

    facts.readiness([audited])
    runs = facts.git_runs
    facts.readiness([audited])
    assert facts.git_runs == runs, "the count (and its worktree's state) is kept while nothing moves"
    tip = commit(worktree, "other.py", "x\n")
    again = facts.readiness([replace(audited, extra={"audited": tip})])["api"]
    assert (again.ahead, again.ready) == (2, True)


def test_ready_to_merge_means_nothing_uncommitted_would_be_lost_and_no_conflict_with_its_target(
        repo: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A merge takes commits only: an agent with uncommitted changes is not READY (a merge would leave them
    behind), nor one the conflict radar found conflicting with its target; one conflicting with another agent
    is (a merge into its target goes through)."""
    root, worktree, base = repo
    facts = BranchFacts(root, root / ".git")
    tip = commit(worktree, "app.py", "changed\n")
    ready = agent(worktree, base, state=State.IDLE, extra={"audited": tip})
    assert facts.readiness([ready])["api"] == Readiness(1, True, 0)

    (worktree / "app.py").write_text("edited after the commit\n")
    (worktree / "new.py").write_text("x\n")
    assert facts.readiness([ready])["api"] == Readiness(1, True, 0), "kept: its tip, index and state stayed"
    later = replace(ready, state_since=2.0)  # a turn ended (an edit by hand: at most DIRTY_AGAIN later)
    assert facts.readiness([later])["api"] == Readiness(1, False, 2)
    runs = facts.git_runs
    assert not facts.readiness([later])["api"].ready
    assert facts.git_runs == runs, "read once while nothing moved"
    monkeypatch.setattr("supervisor.engine.branches.DIRTY_AGAIN", 0.0)
    (worktree / "new.py").unlink()
    git(worktree, "checkout", "app.py")
    assert facts.readiness([later])["api"] == Readiness(1, True, 0)

    with_target = replace(later, extra={"audited": tip, "conflicts": [
        {"with": "main", "branch": "main", "files": ["app.py"]}]})
    assert not facts.readiness([with_target])["api"].ready
    with_peer = replace(later, extra={"audited": tip, "conflicts": [
        {"with": "web", "branch": "agent/web/work", "files": ["app.py"]}]})
    assert facts.readiness([with_peer])["api"].ready
    helper = agent(worktree, base, name="api.t", branch="agent/api/work", target="main", state=State.IDLE)
    assert facts.readiness([with_peer, helper])["api"].ready  # (a helper idle: not busy)


def test_reading_what_is_uncommitted_never_rewrites_the_agents_index(repo: tuple[Path, Path, str]) -> None:
    """The read runs while the agent may be using git itself: it takes no lock and writes no index (a rewrite
    in the same second as an edit could hide that edit from the agent's next `git add`)."""
    from supervisor.engine.branches import _index_of
    from supervisor.git.worktrees import uncommitted_changes

    _, worktree, _ = repo
    (worktree / "app.py").write_text("a\nb\nc\n")  # the same content, a new stat: a refresh would rewrite the index
    index = _index_of(worktree)
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    assert uncommitted_changes(worktree) == []
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
