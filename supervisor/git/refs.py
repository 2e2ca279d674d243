"""Noticing that branches moved without running git: a stamp of the ref folders' metadata; and what a
worktree has checked out, from its HEAD file.

Git updates a loose ref by renaming a new file over it, and deletes one by unlinking it, so the folder
holding it gets a new mtime; `pack-refs` rewrites `packed-refs`. A stamp of those folders (and that file)
that is equal to the previous one means no ref in them moved, and a watcher need not run git at all.

As in git's own "racy clean" index entries, a folder changed within the last RACY_SECONDS might change
again within the same timestamp tick after it was read; such a stamp never compares equal to another, so
the caller looks once more a moment later.
"""

from __future__ import annotations

import itertools
import posixpath
import time
from collections.abc import Iterable
from pathlib import Path

from supervisor.files import read_regular

__all__ = ["AGENT_REFS", "RACY_SECONDS", "agent_branch", "agent_of_branch", "agent_ref_folder", "agent_refs_stamp",
           "ref_folder", "refs_stamp", "stamp_of", "worktree_git_dir", "worktree_head"]

AGENT_REFS = "refs/heads/agent"  # the folder of every agent's ref folder (`agent/auth/`, `agent/auth.test/`)
AGENT_BRANCH_LEAF = "work"
RACY_SECONDS = 1.0

_racy = itertools.count()


def agent_branch(name: str) -> str:
    """The branch of agent `name` (`agent/auth/work`). Each agent's refs live in a folder of their own
    (`refs/heads/agent/auth/`), so that a sandbox can give an agent that folder to write and no other ref:
    git replaces a loose ref by renaming a new file over it, which needs its folder, not the file."""
    return f"agent/{name}/{AGENT_BRANCH_LEAF}"


def agent_ref_folder(name: str) -> str:
    """The folder, relative to the git common dir, that holds agent `name`'s refs (`refs/heads/agent/auth`)."""
    return f"{AGENT_REFS}/{name}"


def agent_of_branch(branch: str) -> str | None:
    """The agent whose branch `branch` is (`agent/auth/work` or `refs/heads/agent/auth/work` → `auth`), or
    None for any other branch. The name is not validated here."""
    short = branch.removeprefix("refs/heads/")
    head, _, rest = short.partition("/")
    name, _, leaf = rest.rpartition("/")
    if head != "agent" or leaf != AGENT_BRANCH_LEAF or not name or "/" in name:
        return None
    return name


def agent_refs_stamp(common_dir: Path, branches: Iterable[str], more: Iterable[str] = ()) -> tuple[int, ...]:
    """`refs_stamp` of the folders that hold `branches` (agents' branches, each in a folder of its own), of
    the folder holding those folders (a new agent's folder appears there) and of the folders of the refs
    `more` (targets): one stat per folder, so a watcher can look every tick."""
    return refs_stamp(common_dir, {AGENT_REFS, *(ref_folder(ref) for ref in (*branches, *more) if ref)})


def ref_folder(ref: str) -> str:
    """The folder, relative to the git common dir, that holds the loose ref `ref` (`refs/heads/feature/x`
    → `refs/heads/feature`); a short branch name is taken as under refs/heads/."""
    full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    return posixpath.dirname(full)


def refs_stamp(common_dir: Path, folders: Iterable[str]) -> tuple[int, ...]:
    """Changes whenever a loose ref directly in one of `folders` (relative to `common_dir`, e.g.
    `refs/heads/agent`) or a packed ref moves, is created or is deleted."""
    return stamp_of([*(common_dir / folder for folder in sorted(set(folders))), common_dir / "packed-refs"])


def stamp_of(paths: Iterable[Path]) -> tuple[int, ...]:
    """The metadata of `paths` (a folder's changes when an entry in it is created, replaced or removed);
    never equal to another when one of them changed within RACY_SECONDS."""
    stamp: list[int] = []
    newest = 0
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            stamp += [0, 0, 0]
            continue
        stamp += [info.st_mtime_ns, info.st_ino, info.st_size]
        newest = max(newest, info.st_mtime_ns)
    if abs(time.time_ns() - newest) < RACY_SECONDS * 1e9:
        stamp.append(-1 - next(_racy))  # unique: equal to no other stamp
    return tuple(stamp)


# Operations that detach HEAD for a while and put the branch back (or leave it as it was) when they end.
_IN_PROGRESS = ("rebase-merge", "rebase-apply", "BISECT_START")
GIT_FILE_LIMIT = 1 << 16  # bytes: a `.git` file, a HEAD (a path or a ref in each)


def worktree_git_dir(worktree: Path) -> Path | None:
    """A linked worktree's own git folder (`.git/worktrees/NAME`, where its HEAD lives), from its `.git`
    file; None when it has none (gone, or not a linked worktree: agents' worktrees always are). Git
    renames a new HEAD into it, so the folder's stamp (`stamp_of`) changes whenever HEAD does."""
    data = read_regular(worktree / ".git", GIT_FILE_LIMIT)  # the agent's to write: no link, no FIFO
    if data is None:
        return None
    dot_git = data.decode("utf-8", "surrogateescape")
    if not dot_git.startswith("gitdir:"):
        return None
    return worktree / dot_git.removeprefix("gitdir:").strip()  # an absolute one replaces `worktree`


def worktree_head(worktree: Path, git_dir: Path | None = None) -> str | None:
    """What the worktree has checked out, read from its HEAD file without running git: the ref it points
    at (`refs/heads/agent/auth`), or the commit id of a detached HEAD. None when that cannot be told or
    says nothing: no such worktree, an unreadable file, or a rebase or bisect in progress (which detaches
    HEAD until it ends). `git_dir`: its git folder, when the caller knows it."""
    git_dir = git_dir or worktree_git_dir(worktree)
    if git_dir is None:
        return None
    try:
        if any((git_dir / name).exists() for name in _IN_PROGRESS):
            return None
    except OSError:
        return None
    data = read_regular(git_dir / "HEAD", GIT_FILE_LIMIT)  # its own git folder is the agent's to write
    if data is None:
        return None
    head = data.decode("utf-8", "surrogateescape").strip()
    return head.removeprefix("ref:").strip() if head.startswith("ref:") else head or None
