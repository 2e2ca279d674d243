"""What has to exist before an agent's sandbox starts, made on the machine it runs on (bubblewrap cannot bind
what does not exist), and the one folder of the shared git folder that is the agent's worktree's own.

Standard library only, like sandbox.py: the engine makes this machine's sandboxes with it (hosts/local.py) and
the host program its host's (sandbox_op.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from .regular import read_regular
from .sandbox import Spec, folders_to_create, from_home

KEEP = ".keep"  # in an agent's ref and reflog folders: git skips dot-files there
GITDIR_LIMIT = 1 << 16


class NotItsGitFolder(Exception):
    """The worktree's own git folder is not one git made for it in the repository (a planted `.git` file)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def prepare(spec: Spec) -> None:
    """Make what the sandbox binds. The agent's HOME is replaced when it is not a folder (the agent can write the
    folder holding it: a dangling link left there must not stop its next start). Its ref and reflog folders get
    a dot-file git never takes for a ref, so that no `git pack-refs --prune` or gc removes a folder a running
    sandbox has bound. (Its own object folder, when it has one, is the engine's to make: object_folders.py.)"""
    if spec.home.is_symlink() or (spec.home.exists() and not spec.home.is_dir()):
        spec.home.unlink()
    for folder in folders_to_create(spec):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in (spec.ref_folder, spec.log_folder):
        (folder / KEEP).touch(exist_ok=True)
    seed_home(spec)


def seed_home(spec: Spec) -> None:
    """Copy what the CLI keeps in the user's home and also writes (`home_seed`) into the agent's HOME, once:
    whatever is already there (its own since, or anything it put there, a link included) is left as it is. A
    copy is made beside and renamed into place, so a copy cut short is never taken for a whole one."""
    home = spec.home.resolve()
    for source, name in from_home(spec, spec.home_seed):
        target = home / name
        if os.path.lexists(target) or not inside_folder(home, target.parent):
            continue
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.seeding")
        remove(partial)
        try:
            if source.is_dir():
                with contextlib.suppress(shutil.Error):  # files it cannot read: nor could the CLI
                    shutil.copytree(source, partial, symlinks=True)
            else:
                shutil.copy2(source, partial, follow_symlinks=False)
            partial.rename(target)
        except BaseException:
            remove(partial)
            raise


def inside_folder(folder: Path, path: Path) -> bool:
    """Whether `path`, links resolved, is `folder` or in it (never a link the agent left leading out)."""
    resolved = path.resolve()
    return resolved == folder or folder in resolved.parents


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()


def admin_dir(common_dir: Path, worktree: Path, recorded: str | None) -> Path:
    """The worktree's own git folder as the engine knows it: as recorded at its creation, else the one folder of
    `common_dir/worktrees/` whose `gitdir` names this worktree (never what the worktree's own, agent-writable,
    `.git` file says). Resolved, and always a direct child of `common_dir/worktrees/`: NotItsGitFolder
    otherwise."""
    folder = (common_dir / "worktrees").resolve()
    if recorded:
        found = Path(recorded).resolve()
    else:
        mine = os.path.realpath(worktree / ".git")
        matches = []
        for candidate in sorted(folder.iterdir()) if folder.is_dir() else []:
            gitdir = _read_regular(candidate / "gitdir")  # each agent's to write: no link, no FIFO
            if gitdir is None:
                continue
            named = gitdir.decode("utf-8", "surrogateescape").strip()
            if os.path.realpath(named) == mine:
                matches.append(candidate.resolve())
        if len(matches) != 1:
            raise NotItsGitFolder(f"git knows {'no' if not matches else 'more than one'} git folder of the "
                                  f"worktree {worktree} in {folder}",
                                  "`git worktree prune`, or remove the agent and start it again")
        found = matches[0]
    if found.parent != folder or not found.is_dir():
        raise NotItsGitFolder(f"the git folder of the worktree {worktree} is {found}, not one of {folder}/",
                              "remove the agent and start it again")
    return found


def _read_regular(path: Path) -> bytes | None:
    """The regular file `path` whole (no link at its last part, no FIFO, at most GITDIR_LIMIT bytes), or None."""
    read = read_regular(path, GITDIR_LIMIT)
    return None if read is None else read[0]
