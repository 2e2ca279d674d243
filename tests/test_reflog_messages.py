"""Which commits a worktree's HEAD reflog says it made, read from what real git writes (the one reader of reflogs,
here and on hosts: supervisor/hostside/worktree_facts.py): every way git moves HEAD onto commits it did not make
(a pull --rebase or rebase onto another's commits, its abort, a fast-forward, a checkout, a reset) is never a commit
made, or the tamper check would believe an agent made another agent's commits (engine/branch_moves.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from supervisor.hostside.worktree_facts import reflog_tips
from tests.git_env import isolate_git


@pytest.fixture(autouse=True)
def _git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_git(monkeypatch, tmp_path)
    monkeypatch.setenv("GIT_EDITOR", "true")


def git(where: Path, *words: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(where), *words], capture_output=True, text=True, check=check)
    return done.stdout.strip()


def commit(where: Path, name: str) -> str:
    (where / name).write_text(name)
    git(where, "add", name)
    git(where, "commit", "-q", "-m", name)
    return git(where, "rev-parse", "HEAD")


def test_moving_onto_commits_made_elsewhere_is_never_a_commit_made(tmp_path: Path) -> None:
    upstream, mine = tmp_path / "upstream", tmp_path / "mine"
    git(tmp_path, "init", "-q", "-b", "main", str(upstream))
    first = commit(upstream, "first")
    git(tmp_path, "clone", "-q", str(upstream), str(mine))
    theirs = [commit(upstream, "theirs-1")]
    made = [commit(mine, "mine-1")]
    git(mine, "pull", "-q", "--rebase")  # "pull -q --rebase (start): checkout <theirs>", its own one picked
    made.append(git(mine, "rev-parse", "HEAD"))
    theirs.append(commit(upstream, "theirs-2"))
    git(mine, "pull", "-q", "--rebase", "origin", "main")  # the pull's arguments in the action too
    made.append(git(mine, "rev-parse", "HEAD"))
    theirs.append(commit(upstream, "theirs-3"))
    git(mine, "fetch", "-q")
    git(mine, "rebase", "-q", "origin/main")  # "rebase (start)", "rebase (pick)", "rebase (finish)"
    made.append(git(mine, "rev-parse", "HEAD"))
    git(mine, "reset", "-q", "--hard", "origin/main")
    git(mine, "reset", "-q", "--hard", "HEAD~1")
    git(mine, "merge", "-q", "--ff-only", "origin/main")  # "merge origin/main: Fast-forward"
    git(mine, "reset", "-q", "--hard", first)
    git(mine, "pull", "-q", "--rebase")  # nothing of its own: onto theirs only
    git(mine, "checkout", "-q", "--detach", first)
    git(mine, "cherry-pick", "--ff", theirs[0])  # "cherry-pick: fast-forward"
    git(mine, "switch", "-q", "-")

    (upstream / "clash").write_text("theirs")
    git(upstream, "add", "clash")
    git(upstream, "commit", "-q", "-m", "clash")
    theirs.append(git(upstream, "rev-parse", "HEAD"))
    git(mine, "fetch", "-q")
    made.append(commit(mine, "clash"))
    git(mine, "rebase", "-q", "origin/main", check=False)  # stops on the conflict
    assert (mine / ".git" / "rebase-merge").is_dir()
    git(mine, "rebase", "--abort")  # "rebase (abort): returning to refs/heads/main"

    log = mine / ".git" / "logs" / "HEAD"
    moved = reflog_tips(str(log))
    said_made = reflog_tips(str(log), made=True)
    assert set(theirs) <= moved  # its HEAD did move onto each of theirs
    assert set(theirs) & said_made == set(), git(mine, "reflog", "--format=%H %gs")
    assert set(made) <= said_made
