"""Agents' own object folders with real git, no sandbox: what the engine takes into the shared store, what it
refuses, and that main never comes to need a file in an agent's folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from supervisor.git import object_folders, taking_in
from supervisor.git.merge import merge_branch
from supervisor.git.worktrees import GitError
from supervisor.paths import RepoPaths

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@e"}


def _git(cwd: Path, *args: str, objects: Path | None = None, stdin: str | None = None) -> str:
    """git as the user runs it; `objects`: as an agent's git in its sandbox (its own folder, the shared store an
    alternate)."""
    env = dict(ENV)
    if objects is not None:
        env["GIT_OBJECT_DIRECTORY"] = str(objects)
        env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str(_common(cwd) / "objects")
    return subprocess.run(["git", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          check=True).stdout.strip()


def _common(cwd: Path) -> Path:
    return Path(subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip())


def _plain(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, env=ENV, capture_output=True, text=True, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> RepoPaths:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("hello\n")
    _git(root, "add", "README.md")
    _git(root, "commit", "-q", "-m", "initial")
    return RepoPaths(root=root, common_dir=root / ".git")


def _agent(repo: RepoPaths, name: str) -> tuple[Path, Path]:
    """An agent's worktree on its branch, and its own object folder."""
    worktree = repo.root.parent / name
    _git(repo.root, "worktree", "add", "-q", "-b", f"agent/{name}/work", str(worktree), "main")
    folder = repo.agent_objects(name)
    folder.mkdir(parents=True)
    return worktree, folder


def _commit(worktree: Path, folder: Path, path: str, text: str) -> str:
    (worktree / path).write_text(text)
    _git(worktree, "add", path, objects=folder)
    _git(worktree, "commit", "-q", "-m", f"add {path}", objects=folder)
    return _git(worktree, "rev-parse", "HEAD", objects=folder)


def test_objects_taken_in_are_the_agents_own_and_the_users_git_then_sees_them(repo: RepoPaths) -> None:
    worktree, folder = _agent(repo, "auth")
    tip = _commit(worktree, folder, "a.txt", "a\n")
    assert _plain(repo.root, "cat-file", "-e", tip).returncode != 0  # only in its folder

    assert taking_in.take_in(repo.root, folder) == 3  # the blob, the tree, the commit
    assert _plain(repo.root, "log", "-1", "--format=%s", "agent/auth/work").stdout.strip() == "add a.txt"
    assert taking_in.take_in(repo.root, folder) == 0  # nothing new: nothing done


def test_a_corrupt_object_or_one_that_is_not_what_its_name_says_is_refused_by_name(repo: RepoPaths) -> None:
    worktree, folder = _agent(repo, "auth")
    blob = _git(repo.root, "hash-object", "--stdin", stdin="bad\n")
    (folder / blob[:2]).mkdir()
    (folder / blob[:2] / blob[2:]).write_bytes(b"junk")  # a file git cannot even inflate
    with pytest.raises(GitError, match=f"corrupt.*{blob}"):
        taking_in.take_in(repo.root, folder)
    assert _plain(repo.root, "cat-file", "-e", blob).returncode != 0

    shutil.rmtree(folder / blob[:2])
    other = _git(worktree, "hash-object", "-w", "--stdin", objects=folder, stdin="other\n")
    (folder / blob[:2]).mkdir()
    (folder / other[:2] / other[2:]).rename(folder / blob[:2] / blob[2:])  # a sound object, under another's name
    with pytest.raises(GitError, match=f"{blob} .* is not what its name says"):
        taking_in.take_in(repo.root, folder)
    assert _plain(repo.root, "cat-file", "-e", blob).returncode != 0


def test_a_file_that_would_hold_a_reader_is_not_taken_for_an_object(repo: RepoPaths) -> None:
    _, folder = _agent(repo, "auth")
    (folder / "ab").mkdir()
    os.mkfifo(folder / "ab" / ("c" * 38))
    assert taking_in.take_in(repo.root, folder) == 0


def test_a_merge_refuses_objects_gits_strict_checks_refuse(repo: RepoPaths) -> None:
    worktree, folder = _agent(repo, "auth")
    blob = _git(worktree, "hash-object", "-w", "--stdin", objects=folder, stdin="evil\n")
    tree = _git(worktree, "mktree", objects=folder, stdin=f"100644 blob {blob}\t.git\n")
    commit = _git(worktree, "commit-tree", tree, "-p", "main", "-m", "sneaky", objects=folder)
    _git(worktree, "update-ref", "refs/heads/agent/auth/work", commit, objects=folder)
    _git(repo.root, "branch", "release", "main")  # checked out nowhere: no checkout would refuse `.git` on its own
    release = _git(repo.root, "rev-parse", "release")

    with pytest.raises(GitError, match="hasDotgit"):
        merge_branch(repo.root, "agent/auth/work", "release", "merge auth")
    assert _git(repo.root, "rev-parse", "release") == release


def test_main_never_needs_a_file_in_an_agents_folder(repo: RepoPaths) -> None:
    """Git writes no copy of an object it finds in an alternate: a merge that read the agents' folders would
    leave main needing the tree another agent happened to have made. Merged, then every folder gone: main whole."""
    auth, auth_objects = _agent(repo, "auth")
    _commit(auth, auth_objects, "a.txt", "a\n")
    (repo.root / "m.txt").write_text("m\n")
    _git(repo.root, "add", "m.txt")
    _git(repo.root, "commit", "-q", "-m", "main moves on")
    # Another agent already holds the very tree the merge will make (README, a.txt, m.txt), in its own folder.
    other, other_objects = _agent(repo, "other")
    (other / "a.txt").write_text("a\n")
    (other / "m.txt").write_text("m\n")
    _git(other, "add", "a.txt", "m.txt", objects=other_objects)
    planted = _git(other, "write-tree", objects=other_objects)

    result = merge_branch(repo.root, "agent/auth/work", "main", "merge auth")
    assert _git(repo.root, "rev-parse", f"{result.commit}^{{tree}}") == planted
    for folder in (auth_objects, other_objects):
        shutil.rmtree(folder)
    _git(repo.root, "worktree", "remove", "--force", str(other))
    _git(repo.root, "branch", "-D", "agent/other/work")
    done = _plain(repo.root, "fsck", "--strict", "--no-dangling", "main")
    assert done.returncode == 0 and "missing" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert _plain(repo.root, "show", "main:a.txt").stdout == "a\n"


def test_preparing_a_folder_never_writes_through_what_the_agent_left_in_it(repo: RepoPaths, tmp_path: Path) -> None:
    folder, view, shared = repo.agent_objects("auth"), repo.shared_objects_view, repo.common_dir / "objects"
    (shared / "info" / "alternates").write_text("../../elsewhere/objects\n")  # the repository's own, relative
    object_folders.prepare(folder, view, shared)
    said = (folder / "info" / "alternates").read_text().splitlines()
    assert said == [str(view), os.path.normpath(shared / "../../elsewhere/objects")]

    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(folder / "info")
    (folder / "info").symlink_to(outside)  # as the agent may leave it
    object_folders.prepare(folder, view, shared)
    assert list(outside.iterdir()) == []
    assert not (folder / "info").is_symlink() and (folder / "info" / "alternates").read_text().splitlines() == said


def test_an_engine_git_that_meets_a_fifo_for_an_object_comes_back_saying_so(repo: RepoPaths,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """git opens a loose object and waits for a writer for good when the agent left a FIFO in its place: the
    engine's git reading the agents' folders is stopped at its time limit, never holding the engine."""
    from supervisor.git import environment

    _, folder = _agent(repo, "auth")
    blob = "ab" + "c" * 38
    (folder / "ab").mkdir()
    os.mkfifo(folder / "ab" / blob[2:])
    monkeypatch.setattr(environment, "GIT_TIMEOUT", 2.0)
    done = environment.run(repo.root, "cat-file", "-p", blob)
    assert done.returncode == environment.TIMED_OUT
    assert b"did not finish within 2 s" in done.stderr
