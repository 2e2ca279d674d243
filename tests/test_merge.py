"""The safe merge against real git repositories: worktrees with uncommitted work are never disturbed."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.git import merge as merge_module
from supervisor.git.merge import MergeResult, merge_branch
from supervisor.git.worktrees import GitError
from tests.git_env import IDENTITY, isolate_git


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    isolate_git(monkeypatch, home)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


def write(where: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (where / path).parent.mkdir(parents=True, exist_ok=True)
        (where / path).write_text(text)


def commit(where: Path, message: str, files: dict[str, str]) -> str:
    write(where, files)
    git(where, "add", "-A")
    git(where, "commit", "-q", "-m", message)
    return git(where, "rev-parse", "HEAD")


def status(where: Path) -> list[str]:
    out = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=all"],
                         cwd=where, capture_output=True, text=True, check=True).stdout
    return sorted(line for line in out.splitlines() if line)


def snapshot(where: Path) -> dict[str, Any]:
    """Everything a merge must leave alone when it refuses: refs, the index file, files, status."""
    git_dir = Path(git(where, "rev-parse", "--absolute-git-dir"))
    files = {str(p.relative_to(where)): p.read_bytes() for p in where.rglob("*")
             if p.is_file() and ".git" not in p.relative_to(where).parts}
    return {
        "index": (git_dir / "index").read_bytes(),
        "refs": git(where, "for-each-ref", "--format=%(objectname) %(refname)"),
        "head": git(where, "symbolic-ref", "HEAD"),
        "files": files,
        "status": status(where),
        "lock": (git_dir / "index.lock").exists(),
        "scratch": sorted(p.name for p in git_dir.iterdir() if "supervisor" in p.name),
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A repository on main with two files; `agent/a/work` forks from it. main is checked out in `root`."""
    where = tmp_path / "repo"
    where.mkdir()
    git(where, "init", "-q", "-b", "main")
    commit(where, "initial", {"shared.txt": "base\n", "user.txt": "user\n", "other.txt": "other\n"})
    git(where, "branch", "agent/a/work")
    return where


def agent_commit(root: Path, files: dict[str, str], message: str = "agent work", branch: str = "agent/a/work") -> str:
    """Commit on `branch` without checking it out (as an agent in its own worktree would)."""
    wt = root.parent / f"wt-{branch.replace('/', '-')}"
    if not wt.exists():
        git(root, "worktree", "add", "-q", str(wt), branch)
    return commit(wt, message, files)


def test_fast_forward_updates_the_checked_out_worktree(root: Path) -> None:
    tip = agent_commit(root, {"shared.txt": "agent\n", "new/file.txt": "n\n"})
    result = merge_branch(root, "agent/a/work", "main", "unused for a fast-forward")
    assert result == MergeResult(tip, fast_forward=True, already_merged=False, updated_worktree=root)
    assert git(root, "rev-parse", "main") == tip
    assert (root / "shared.txt").read_text() == "agent\n"
    assert (root / "new/file.txt").read_text() == "n\n"
    assert status(root) == []
    assert git(root, "reflog", "-1", "--format=%gs", "main").startswith("supervisor merge agent/a/work")


def test_true_merge_makes_a_two_parent_commit(root: Path) -> None:
    agent_tip = agent_commit(root, {"shared.txt": "agent\n", "added.txt": "a\n"})
    main_tip = commit(root, "main moves on", {"other.txt": "main\n"})
    result = merge_branch(root, "agent/a/work", "main", "Merge agent/a/work\n\nall clean")
    assert not result.fast_forward and not result.already_merged and result.updated_worktree == root
    assert git(root, "rev-parse", "main") == result.commit
    assert git(root, "log", "-1", "--format=%P", result.commit) == f"{main_tip} {agent_tip}"
    assert git(root, "log", "-1", "--format=%B", result.commit) == "Merge agent/a/work\n\nall clean"
    assert (root / "shared.txt").read_text() == "agent\n"
    assert (root / "added.txt").read_text() == "a\n"
    assert (root / "other.txt").read_text() == "main\n"
    assert status(root) == []


def test_conflict_names_the_paths_and_changes_nothing(root: Path) -> None:
    agent_commit(root, {"shared.txt": "agent\n", 'we"ird name.txt': "a\n"})
    commit(root, "main edits the same lines", {"shared.txt": "main\n", 'we"ird name.txt': "m\n"})
    write(root, {"user.txt": "typing...\n"})
    before = snapshot(root)
    with pytest.raises(GitError, match=r"refs/heads/main") as caught:
        merge_branch(root, "agent/a/work", "main", "merge")
    assert "shared.txt" in str(caught.value) and 'we"ird name.txt' in str(caught.value)
    assert snapshot(root) == before


def test_unrelated_staged_and_unstaged_changes_survive(root: Path) -> None:
    agent_tip = agent_commit(root, {"shared.txt": "agent\n", "added.txt": "a\n"})
    main_tip = commit(root, "main moves on", {"other.txt": "main\n"})
    write(root, {"user.txt": "staged by the user\n"})
    git(root, "add", "user.txt")
    write(root, {"user.txt": "staged by the user\nand then edited further\n", "other.txt": "unstaged edit\n"})
    write(root, {"scratch.txt": "untracked\n"})
    staged_before = git(root, "diff", "--cached")
    unstaged_before = git(root, "diff")
    result = merge_branch(root, "agent/a/work", "main", "merge")
    assert git(root, "rev-parse", "HEAD") == result.commit
    assert git(root, "log", "-1", "--format=%P") == f"{main_tip} {agent_tip}"
    # The merged paths are updated, on disk and in the index (status does not list them).
    assert (root / "shared.txt").read_text() == "agent\n" and (root / "added.txt").read_text() == "a\n"
    assert status(root) == [" M other.txt", "?? scratch.txt", "MM user.txt"]
    # The user's own changes are intact, content and staged state.
    assert (root / "user.txt").read_text() == "staged by the user\nand then edited further\n"
    assert (root / "other.txt").read_text() == "unstaged edit\n"
    assert (root / "scratch.txt").read_text() == "untracked\n"
    assert git(root, "show", ":user.txt") == "staged by the user"
    assert git(root, "diff", "--cached") == staged_before
    assert git(root, "diff") == unstaged_before


@pytest.mark.parametrize("kind", ["unstaged", "staged", "untracked"])
def test_local_change_on_a_merged_path_refuses(root: Path, kind: str) -> None:
    agent_commit(root, {"shared.txt": "agent\n", "added.txt": "a\n"})
    commit(root, "main moves on", {"other.txt": "main\n"})
    if kind == "untracked":
        write(root, {"added.txt": "the user's own file\n"})
    else:
        write(root, {"shared.txt": "the user's edit\n"})
        if kind == "staged":
            git(root, "add", "shared.txt")
    path = "added.txt" if kind == "untracked" else "shared.txt"
    before = snapshot(root)
    with pytest.raises(GitError, match=re.escape(str(root))) as caught:
        merge_branch(root, "agent/a/work", "main", "merge")
    assert path in str(caught.value)
    assert snapshot(root) == before


def test_fast_forward_onto_a_local_change_refuses(root: Path) -> None:
    agent_commit(root, {"shared.txt": "agent\n"})
    write(root, {"shared.txt": "the user's edit\n"})
    before = snapshot(root)
    with pytest.raises(GitError, match=r"shared\.txt"):
        merge_branch(root, "agent/a/work", "main", "merge")
    assert snapshot(root) == before


def test_target_not_checked_out_just_moves_the_ref(root: Path) -> None:
    git(root, "branch", "release")
    agent_tip = agent_commit(root, {"shared.txt": "agent\n"})
    before = snapshot(root)
    result = merge_branch(root, "agent/a/work", "release", "merge")
    assert result == MergeResult(agent_tip, fast_forward=True, already_merged=False, updated_worktree=None)
    assert git(root, "rev-parse", "release") == agent_tip
    after = snapshot(root)
    assert after["files"] == before["files"] and after["index"] == before["index"]
    # And a true merge into a branch nobody has checked out:
    git(root, "branch", "-f", "release", "main")
    release_tip = agent_commit(root, {"other.txt": "release\n"}, branch="release")
    git(root, "worktree", "remove", str(root.parent / "wt-release"))
    merged = merge_branch(root, "agent/a/work", "refs/heads/release", "merge")
    assert merged.updated_worktree is None and not merged.fast_forward
    assert git(root, "log", "-1", "--format=%P", "release") == f"{release_tip} {agent_tip}"
    assert snapshot(root)["files"] == before["files"]


def test_target_checked_out_in_a_linked_worktree(root: Path) -> None:
    """The usual case for a helper: its parent's branch is checked out in the parent's worktree."""
    git(root, "branch", "agent/parent/work")
    parent_wt = root.parent / "parent"
    git(root, "worktree", "add", "-q", str(parent_wt), "agent/parent/work")
    git(root, "branch", "agent/parent.helper/work", "agent/parent/work")
    helper_tip = agent_commit(root, {"shared.txt": "helper\n"}, branch="agent/parent.helper/work")
    commit(parent_wt, "parent works", {"other.txt": "parent\n"})
    write(parent_wt, {"user.txt": "parent is typing\n"})
    result = merge_branch(root, "agent/parent.helper/work", "agent/parent/work", "merge helper")
    assert result.updated_worktree == parent_wt
    assert git(parent_wt, "rev-parse", "HEAD^2") == helper_tip
    assert (parent_wt / "shared.txt").read_text() == "helper\n"
    assert status(parent_wt) == [" M user.txt"]
    assert (root / "shared.txt").read_text() == "base\n"  # the main worktree is not involved


def test_already_merged(root: Path) -> None:
    commit(root, "main moves on", {"other.txt": "main\n"})
    before = snapshot(root)
    result = merge_branch(root, "agent/a/work", "main", "merge")
    main_tip = git(root, "rev-parse", "main")
    assert result == MergeResult(main_tip, fast_forward=False, already_merged=True, updated_worktree=None)
    assert snapshot(root) == before


def test_missing_identity_is_a_clear_error(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent_commit(root, {"shared.txt": "agent\n"})
    commit(root, "main moves on", {"other.txt": "main\n"})
    for key in IDENTITY:
        monkeypatch.delenv(key)
    monkeypatch.delenv("EMAIL", raising=False)
    git(root, "config", "user.useConfigOnly", "true")  # no guessing from the host name
    before = snapshot(root)
    with pytest.raises(GitError, match="identity") as caught:
        merge_branch(root, "agent/a/work", "main", "merge")
    assert caught.value.hint and "user.email" in caught.value.hint
    assert snapshot(root) == before


def test_locked_index_refuses_and_keeps_the_lock(root: Path) -> None:
    agent_commit(root, {"shared.txt": "agent\n"})
    lock = root / ".git" / "index.lock"
    lock.write_text("")
    with pytest.raises(GitError, match=r"index\.lock"):
        merge_branch(root, "agent/a/work", "main", "merge")
    assert lock.exists()
    lock.unlink()
    assert status(root) == []


def test_target_moving_meanwhile_rolls_the_worktree_back(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent_commit(root, {"shared.txt": "agent\n", "added.txt": "a\n"})
    commit(root, "main moves on", {"other.txt": "main\n"})
    write(root, {"user.txt": "typing\n"})
    elsewhere = git(root, "commit-tree", "main^{tree}", "-p", "main", "-m", "pushed from elsewhere")
    before = snapshot(root)
    real = merge_module._run

    def racing(cwd: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        if args[0] == "update-ref":  # someone moves main just before our compare-and-swap
            git(root, "update-ref", "refs/heads/main", elsewhere)
        return real(cwd, *args, **kwargs)

    monkeypatch.setattr(merge_module, "_run", racing)
    with pytest.raises(GitError, match="moved while merging"):
        merge_branch(root, "agent/a/work", "main", "merge")
    after = snapshot(root)
    assert git(root, "rev-parse", "main") == elsewhere
    assert after["files"] == before["files"] and after["index"] == before["index"]
    assert not after["lock"] and after["scratch"] == []


def test_branch_moved_since_the_audit(root: Path) -> None:
    audited = agent_commit(root, {"shared.txt": "agent\n"})
    agent_commit(root, {"other.txt": "slipped in after the audit\n"})
    before = snapshot(root)
    with pytest.raises(GitError, match="moved since it was audited"):
        merge_branch(root, "agent/a/work", "main", "merge", expected_tip=audited)
    assert snapshot(root) == before
    tip = git(root, "rev-parse", "agent/a/work")
    assert merge_branch(root, "agent/a/work", "main", "merge", expected_tip=tip).commit == tip


def test_unknown_branches(root: Path) -> None:
    with pytest.raises(GitError, match="no branch agent/nope/work"):
        merge_branch(root, "agent/nope/work", "main", "merge")
    with pytest.raises(GitError, match="no branch nope"):
        merge_branch(root, "agent/a/work", "nope", "merge")


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    """No test leaves supervisor's lock or scratch index behind in any worktree."""
    yield
    for git_dir in tmp_path.rglob("index*"):
        assert git_dir.name in ("index",), f"left behind: {git_dir}"
