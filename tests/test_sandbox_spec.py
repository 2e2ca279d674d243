"""What a sandbox is made of, from its parts: the bubblewrap command line (`sandbox.argv`: later mounts cover
earlier ones, so nothing hidden may come back through a later bind) and the folders the engine takes from its own
knowledge rather than from what an agent could have written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from supervisor.git.worktrees import GitError, add_worktree, admin_dir, git_dir_at_creation


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q",
                                                 "--allow-empty", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def test_the_worktree_git_folder_is_the_one_git_made_not_what_its_git_file_says(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    worktree = tmp_path / "wt"
    add_worktree(root, worktree, "agent/a/work", "HEAD")
    recorded = git_dir_at_creation(worktree)
    assert Path(recorded) == (root / ".git" / "worktrees" / "wt").resolve()
    (worktree / ".git").write_text("gitdir: /\n")  # what an agent can write
    assert admin_dir(root / ".git", worktree, recorded) == Path(recorded)
    # without a record (an agent started by an older engine): the folder whose `gitdir` names the worktree
    assert admin_dir(root / ".git", worktree, None) == Path(recorded)


@pytest.mark.parametrize("recorded", ["/", "{common}", "{common}/worktrees", "{common}/worktrees/wt/../../objects"])
def test_a_git_folder_outside_the_worktrees_folder_is_refused(tmp_path: Path, recorded: str) -> None:
    root = _repo(tmp_path)
    worktree = tmp_path / "wt"
    add_worktree(root, worktree, "agent/a/work", "HEAD")
    with pytest.raises(GitError, match="not one of"):
        admin_dir(root / ".git", worktree, recorded.format(common=root / ".git"))


def test_a_symlinked_git_folder_is_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    worktree = tmp_path / "wt"
    add_worktree(root, worktree, "agent/a/work", "HEAD")
    (root / ".git" / "worktrees" / "link").symlink_to(root / ".git" / "refs")
    with pytest.raises(GitError, match="not one of"):
        admin_dir(root / ".git", worktree, str(root / ".git" / "worktrees" / "link"))


def test_a_failed_probe_for_bubblewrap_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that failed once (a busy machine's timeout) must not leave the engine deciding from it for its
    whole life: the next look probes again."""
    import shutil

    from supervisor.hosts import isolation

    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    monkeypatch.setattr(isolation, "_working", None)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{fake}:{path}")
    assert isolation.sandboxing().bwrap is None
    monkeypatch.setenv("PATH", path)
    assert isolation.sandboxing().bwrap == shutil.which("bwrap")


def test_a_plan_session_has_an_isolation_of_its_own(tmp_path: Path) -> None:
    from supervisor.core.plan import parse_plan
    from supervisor.errors import InputFileError

    text = "sessions:\n  - name: a\n    isolation: none\n  - name: b\n"
    plan = parse_plan(text, tmp_path / "plan.yaml", tmp_path)
    assert [s.isolation for s in plan.sessions] == ["none", None]
    with pytest.raises(InputFileError, match="isolation must be one of"):
        parse_plan(text.replace("none", "docker"), tmp_path / "plan.yaml", tmp_path)
