"""What an agent's worktree on the host says of its branch, read from its own git folder without running git, for the
engine to judge at home as it judges a local worktree (supervisor/git/refs.py `worktree_head`, supervisor/git/tips.py):
what its HEAD has checked out (off its branch: `boundary`), which commits its HEAD reflog moved it to (a branch tip
its worktree did not move it to: `tamper`) and which of them it made (a commit of another agent's branch it only
moved to, by a reset or a fetch, is not its own: `tamper`). The files are the agent's to write: read as planted ones
are."""

from __future__ import annotations

import os
import stat
from typing import Any

from .calls import Call, OpError
from .regular import read_regular

GIT_FILE_LIMIT = 1 << 16  # bytes: a `.git` file, a HEAD
TAIL_BYTES = 1 << 20  # of a reflog: the entries of the latest moves are at its end
_IN_PROGRESS = ("rebase-merge", "rebase-apply", "BISECT_START")


def facts(call: Call) -> dict[str, Any]:
    """For each worktree of `worktrees` (`{path: [commit, ...]}`): `head`, the ref its HEAD points at or the commit
    of a detached HEAD (None when that cannot be told: no such worktree, a rebase or bisect in progress);
    `moved`, those of the commits given that its HEAD reflog has as the new value of an entry; and `made`, those
    that an entry making a commit has (`reflog_tips(made=True)`, as this machine's tamper check reads them)."""
    asked = call.arg("worktrees", dict)
    if not all(isinstance(path, str) and isinstance(commits, list) and all(isinstance(c, str) for c in commits)
               for path, commits in asked.items()):
        raise OpError("argument 'worktrees' must map paths to lists of commits")
    found: dict[str, Any] = {}
    for path, commits in asked.items():
        git_dir = _git_dir(path)
        reflog = os.path.join(git_dir, "logs", "HEAD") if git_dir is not None and commits else None
        moved = reflog_tips(reflog) if reflog is not None else set()
        made = reflog_tips(reflog, made=True) if reflog is not None and moved & set(commits) else set()
        found[path] = {"head": _head(git_dir) if git_dir is not None else None,
                       "moved": sorted(set(commits) & moved), "made": sorted(set(commits) & made)}
    return found


def _git_dir(worktree: str) -> str | None:
    """A linked worktree's own git folder, from its `.git` file (no link, no FIFO); None when it has none."""
    read = read_regular(os.path.join(worktree, ".git"), GIT_FILE_LIMIT)
    if read is None:
        return None
    text = read[0].decode("utf-8", "surrogateescape")
    if not text.startswith("gitdir:"):
        return None
    return os.path.join(worktree, text.removeprefix("gitdir:").strip())  # an absolute one replaces `worktree`


def _head(git_dir: str) -> str | None:
    try:
        if any(os.path.lexists(os.path.join(git_dir, name)) for name in _IN_PROGRESS):
            return None
    except OSError:
        return None
    read = read_regular(os.path.join(git_dir, "HEAD"), GIT_FILE_LIMIT)
    if read is None:
        return None
    head = read[0].decode("utf-8", "surrogateescape").strip()
    return head.removeprefix("ref:").strip() if head.startswith("ref:") else head or None


# A reflog entry that moved HEAD onto commits that were there already (its own or anyone's), not one it made, by
# git's own messages: `reset: moving to X` (reset, and the aborts of merge and cherry-pick), `checkout: moving from A
# to B` (checkout, switch, bisect), and the steps of a rebase that make nothing, whose action (before the first ": ")
# ends with one of MOVED_STEPS: `rebase (start): checkout X`, `rebase (finish): returning to refs/heads/B`,
# `rebase (abort): ...`, `rebase (reset): 'onto'` (--rebase-merges), and the same from `git pull --rebase`, whose
# action carries the pull's arguments (`pull --rebase origin main (start): checkout X`). A fast-forward (of merge,
# pull, rebase, cherry-pick) ends with "Fast-forward" or "fast-forward".
MOVED_ONTO = ("reset:", "checkout:", "branch:", "fetch", "clone:")
MOVED_STEPS = ("(start)", "(finish)", "(abort)", "(reset)")
MADE_BY = ("commit", "cherry-pick", "revert", "rebase", "merge", "pull", "am:")


def reflog_tips(path: str, *, made: bool = False) -> set[str]:
    """The new values of a reflog's entries (its last TAIL_BYTES), read with no link followed and no FIFO waited on;
    `made`: of those that made a new commit. (This machine's tamper check reads its agents' reflogs with it too.)"""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return set()
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return set()
        data = os.pread(fd, TAIL_BYTES, max(0, info.st_size - TAIL_BYTES))
    except OSError:
        return set()
    finally:
        os.close(fd)
    found = set()
    for line in data.split(b"\n"):
        parts = line.split(b" ", 2)
        if len(parts) == 3 and len(parts[1]) in (40, 64) and (not made or _made(line)):
            found.add(parts[1].decode("ascii", "replace"))
    return found


def _made(line: bytes) -> bool:
    """Whether the reflog entry `line` made a commit (by git's own message for it)."""
    message = line.partition(b"\t")[2].decode("utf-8", "replace").strip()
    if (not message or message.startswith(MOVED_ONTO) or message.partition(": ")[0].endswith(MOVED_STEPS)
            or message.endswith(("Fast-forward", "fast-forward"))):
        return False  # `update-ref` without a message writes none
    return message.startswith(MADE_BY)
