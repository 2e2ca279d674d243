"""Who moved a branch: each agent branch's and each base branch's tip as the engine last accepted it, and the
check that a new tip was made where it may be made (`tamper` otherwise).

- An agent branch may move only by its own worktree: the new tip is in that worktree's own HEAD reflog
  (`.git/worktrees/<id>/logs/HEAD`: git writes there only for a ref updated through that worktree's HEAD),
  and none of its new commits comes from another agent's branch (its own helpers' excepted: a parent merges
  their work). Another process's `git update-ref refs/heads/agent/<victim>/work`, or a reset onto another
  agent's commits, is tampering.
- A base branch (one agents merge into, e.g. `main`) may move by a worktree that is not an agent's and has
  it checked out (the human's commits, pulls and merges: its HEAD reflog has the new tip), or by the engine's
  own merge (which records the tip it made before anyone looks).
Reading a reflog costs no git process; commits are listed only when a branch moved. Without a sandbox an
agent could also write the reflog it is judged by: this catches careless agents, not a determined one.
"""

from __future__ import annotations

import os
from pathlib import Path

from supervisor.files import open_regular
from supervisor.git.refs import worktree_git_dir

TAIL_BYTES = 1 << 20  # of a reflog: the entries of the latest moves are at its end


def made_by_worktree(worktree: Path, tip: str) -> bool:
    """Whether the worktree's own HEAD reflog has `tip` as the new value of one of its entries."""
    return tip in made_in(worktree)


def made_in(worktree: Path) -> set[str]:
    """The commits the worktree's HEAD was moved to (its commits among them), from its own HEAD reflog."""
    git_dir = worktree_git_dir(worktree) if (worktree / ".git").is_file() else worktree / ".git"
    return set() if git_dir is None else reflog_tips(git_dir / "logs" / "HEAD")


def reflog_tips(path: Path) -> set[str]:
    """The new values of a reflog's entries (its last TAIL_BYTES)."""
    fd = open_regular(path)  # the agent's own git folder: no link followed, no FIFO waited on
    if fd is None:
        return set()
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, TAIL_BYTES, max(0, size - TAIL_BYTES))
    except OSError:
        return set()
    finally:
        os.close(fd)
    found = set()
    for line in data.split(b"\n"):
        parts = line.split(b" ", 2)
        if len(parts) == 3 and len(parts[1]) in (40, 64):
            found.add(parts[1].decode("ascii", "replace"))
    return found
