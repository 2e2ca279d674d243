"""`git_heads` on the host (supervisor/hostside/gitops.py), asked every 2 s per host by the engine's commits-home:
git lists the clone's refs only when what holds them changed on disk (or a minute went by), and every way a ref
moves is seen at the next ask all the same."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from supervisor.hostside import gitops
from supervisor.hostside.calls import Call


class _Outlet:
    def send(self, message: dict[str, Any]) -> None:
        raise AssertionError("git_heads sends nothing ahead of its answer")

    def take_stream(self, name: str) -> str:
        raise AssertionError("git_heads takes no upload")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, Path]:
    """A bare clone with a linked worktree on branch agent/one/work, as a host's are."""
    bare, work = tmp_path / "clone", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", "-b", "main", str(seed))
    git(seed, "commit", "-q", "--allow-empty", "-m", "base")
    git(seed, "push", "-q", str(bare), "main")
    git(bare, "worktree", "add", "-q", "-b", "agent/one/work", str(work), "main")
    return bare, work


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The repositories git listed the refs of, in order."""
    calls: list[str] = []
    real = gitops._refs

    def counted(repo: str) -> dict[str, str]:
        calls.append(repo)
        return real(repo)

    monkeypatch.setattr(gitops, "_refs", counted)
    monkeypatch.setattr(gitops, "_listed", {})
    return calls


def heads(bare: Path) -> dict[str, str]:
    answer = gitops.heads(Call(_Outlet(), 1, {"repo": str(bare)}))
    assert answer["exists"] is True
    return dict(answer["refs"])


def truth(bare: Path) -> dict[str, str]:
    lines = git(bare, "for-each-ref", "--format=%(objectname) %(refname)").splitlines()
    return {name: sha for sha, _, name in (line.partition(" ") for line in lines)}


def test_refs_unchanged_on_disk_are_not_listed_by_git_again(clone: tuple[Path, Path], listed: list[str]) -> None:
    bare, _ = clone
    first = heads(bare)
    assert first == truth(bare) and "refs/heads/agent/one/work" in first
    for _ in range(5):
        assert heads(bare) == first
    assert listed == [str(bare)]  # one git process for six asks


def test_every_way_a_ref_moves_is_seen_at_the_next_ask(clone: tuple[Path, Path], listed: list[str]) -> None:
    bare, work = clone
    heads(bare)
    git(work, "commit", "-q", "--allow-empty", "-m", "the agent's work")  # a commit in the worktree
    assert heads(bare) == truth(bare)
    assert heads(bare)["refs/heads/agent/one/work"] == git(work, "rev-parse", "HEAD")
    git(bare, "branch", "deep/er/branch", "main")  # a new folder under refs/heads
    assert heads(bare) == truth(bare) and "refs/heads/deep/er/branch" in heads(bare)
    git(bare, "pack-refs", "--all")  # every loose ref into packed-refs
    assert heads(bare) == truth(bare)
    git(bare, "update-ref", "refs/heads/deep/er/branch", git(work, "rev-parse", "HEAD"))  # loose again, over packed
    assert heads(bare) == truth(bare)
    git(bare, "update-ref", "-d", "refs/heads/deep/er/branch")  # gone from both
    assert heads(bare) == truth(bare) and "refs/heads/deep/er/branch" not in heads(bare)
    git(bare, "pack-refs", "--all")
    # Written in place, the same length, its modification time set back: its change time still moves.
    ref = bare / "refs" / "heads" / "agent" / "one" / "work"
    git(work, "commit", "-q", "--allow-empty", "-m", "more")
    assert heads(bare) == truth(bare)
    before, back = os.stat(ref), git(work, "rev-parse", "HEAD~1")
    with open(ref, "r+") as handle:
        handle.write(back + "\n")
    os.utime(ref, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(ref).st_ino == before.st_ino and os.stat(ref).st_size == before.st_size
    assert heads(bare) == truth(bare)
    assert heads(bare)["refs/heads/agent/one/work"] == back


def test_git_lists_them_again_at_least_every_minute(clone: tuple[Path, Path], listed: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bare, _ = clone
    clock = [1000.0]
    monkeypatch.setattr(gitops.time, "monotonic", lambda: clock[0])
    heads(bare)
    clock[0] += gitops.RECHECK_SECONDS - 1
    heads(bare)
    assert len(listed) == 1
    clock[0] += 1
    heads(bare)
    assert len(listed) == 2
