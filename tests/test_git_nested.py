"""A nested repository an agent made a gitlink of in its worktree has a configuration of its own (a clean filter,
here): none of the engine's looks at that worktree (its uncommitted changes, its diffstat, the merge of a helper
into it, `supervisor diff`) runs it. Nor does `supervisor diff` run what the worktree's own `config.worktree`
names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.git.changes import agent_diff
from supervisor.git.merge import merge_branch
from supervisor.git.worktrees import GitError, diffstat, uncommitted_changes
from tests.git_env import isolate_git
from tests.test_merge import agent_commit, commit, git


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    isolate_git(monkeypatch, home)


def _planted(tmp_path: Path) -> tuple[Path, Path, str]:
    """The repository, an agent's worktree holding a nested repository whose filter touches a marker (made a
    gitlink in the worktree's index, its file's stat data stale so git would look again), and the marker."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    base = commit(root, "initial", {"a.txt": "a\n"})
    git(root, "branch", "agent/a/work")
    worktree = tmp_path / "wt"
    git(root, "worktree", "add", "-q", str(worktree), "agent/a/work")
    marker = tmp_path / "PWNED"
    sub = worktree / "sub"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    commit(sub, "s", {"f": "hello\n", ".gitattributes": "* filter=evil\n"})
    git(sub, "config", "filter.evil.clean", f"touch {marker}; cat")
    git(sub, "config", "core.fsmonitor", str(_program(tmp_path, marker)))
    os.utime(sub / "f", (978307200, 978307200))
    git(worktree, "update-index", "--add", "--cacheinfo", f"160000,{git(sub, 'rev-parse', 'HEAD')},sub")
    return worktree, marker, base


def _program(tmp_path: Path, marker: Path) -> Path:
    program = tmp_path / "hook.sh"
    program.write_text(f"#!/bin/sh\ntouch {marker}\n")
    program.chmod(0o755)
    return program


def test_the_engines_looks_at_a_worktree_never_open_a_nested_repository(tmp_path: Path) -> None:
    worktree, marker, base = _planted(tmp_path)
    assert "A  sub" in uncommitted_changes(worktree)  # a gitlink it staged is still work of its own
    assert diffstat(worktree, base) == {"files": 1, "added": 1, "removed": 0}
    assert not marker.exists()


def test_a_helper_merged_into_a_worktree_with_a_nested_repository_runs_nothing_of_it(tmp_path: Path) -> None:
    """Merged, and refused (its local changes in the way: the refusal names them from `git status` there)."""
    worktree, marker, _ = _planted(tmp_path)
    root = tmp_path / "repo"
    git(root, "branch", "agent/a.h/work", "agent/a/work")
    agent_commit(root, {"b.txt": "helper\n"}, branch="agent/a.h/work")
    result = merge_branch(root, "agent/a.h/work", "agent/a/work", "merge helper")
    assert result.updated_worktree == worktree and (worktree / "b.txt").read_text() == "helper\n"
    agent_commit(root, {"a.txt": "helper\n"}, branch="agent/a.h/work")
    (worktree / "a.txt").write_text("the agent's own edit\n")
    with pytest.raises(GitError, match=r"local changes .* touch paths the merge changes: a\.txt"):
        merge_branch(root, "agent/a.h/work", "agent/a/work", "merge helper")
    assert not marker.exists()


def test_supervisor_diff_runs_nothing_the_agent_configured(tmp_path: Path) -> None:
    worktree, marker, base = _planted(tmp_path)
    root = tmp_path / "repo"
    git(root, "config", "extensions.worktreeConfig", "true")
    git(worktree, "config", "--worktree", "core.fsmonitor", str(_program(tmp_path, marker)))
    git(worktree, "config", "--worktree", "diff.external", str(_program(tmp_path, marker)))
    (worktree / "a.txt").write_text("a\nchanged\n")
    (worktree / "new.txt").write_text("new\n")
    text = agent_diff(root, {"name": "a", "base": base, "worktree": str(worktree), "branch": "agent/a/work"},
                      stat=True, colour=False)
    assert "a.txt" in text and "new.txt" in text and "sub" in text
    assert not marker.exists()


def test_no_fifo_among_an_agents_git_files_blocks_the_engine(tmp_path: Path) -> None:
    """Its worktree's `.git` file and its own git folder (`HEAD`, `logs/HEAD`, `gitdir`) are the agent's to write:
    the engine's own looks at them (the auditor's each tick, the tamper check, finding the configuration files
    it lists) read no FIFO left there, and go on."""
    from supervisor.engine.branches import _index_of
    from supervisor.git import environment
    from supervisor.git.refs import worktree_git_dir, worktree_head
    from supervisor.git.tips import made_in
    from supervisor.git.worktrees import admin_dir
    from tests.test_state_folder import _within_deadline

    worktree, _, _ = _planted(tmp_path)
    git_dir = worktree_git_dir(worktree)
    assert git_dir is not None and worktree_head(worktree) == "refs/heads/agent/a/work"
    for name in ("HEAD", "logs/HEAD", "gitdir", "commondir"):
        (git_dir / name).unlink()
        os.mkfifo(git_dir / name)
    assert _within_deadline(lambda: worktree_head(worktree)) is None
    assert _within_deadline(lambda: made_in(git_dir)) == set()
    assert _within_deadline(lambda: environment._config_files(worktree)) == ()

    def found_by_its_gitdir() -> str:
        try:
            return str(admin_dir(tmp_path / "repo" / ".git", worktree, None))
        except GitError as exc:
            return exc.message

    assert "git knows no git folder of the worktree" in _within_deadline(found_by_its_gitdir)
    (worktree / ".git").unlink()
    os.mkfifo(worktree / ".git")
    assert _within_deadline(lambda: worktree_git_dir(worktree)) is None
    assert _within_deadline(lambda: _index_of(worktree)) == worktree / ".git" / "index"
