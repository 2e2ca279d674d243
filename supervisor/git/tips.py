"""Who moved a branch: each agent branch's and each base branch's tip as the engine last accepted it, and the
check that a new tip was made where it may be made (`tamper` otherwise).

- An agent branch may move only by its own worktree: the new tip is in that worktree's own HEAD reflog
  (`.git/worktrees/<id>/logs/HEAD`, the folder recorded when the engine made the worktree, never the one its
  agent-writable `.git` file names; git writes there only for a ref updated through that worktree's HEAD),
  and none of its new commits comes from another agent's branch (its own helpers' excepted: a parent merges
  their work), unless its worktree made that commit (another branch took it since). Another process's
  `git update-ref refs/heads/agent/<victim>/work`, or a reset onto another agent's commits, is tampering.
- A base branch (one agents merge into, e.g. `main`) may move by a worktree that is not an agent's and has
  it checked out (the human's commits, pulls and merges: its HEAD reflog has the new tip), by a fetch from a
  remote (`git fetch origin main:main`: the new tip is a remote-tracking branch's, which no sandboxed agent can
  write), or by the engine's own merge (which records the tip it made before anyone looks).
Reading a reflog costs no git process; commits are listed only when a branch moved. The worktree's own git
folder, its reflog with it, is the agent's to write (in the sandbox too): what it writes there can make a move of
its own branch look like its worktree's, but never pass as its own a commit another agent's branch held when the
engine last accepted it, nor one another agent's branch holds now and whose worktree says it made it too
(engine/branch_moves.py: its own ref file may name another's brand-new commit, whose objects a sandbox does not
even show it, before the engine looks at either branch). Without a sandbox it could write any reflog and read any
object: this catches careless agents, not a determined one.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.git.refs import worktree_git_dir
from supervisor.hostside.worktree_facts import reflog_tips  # one reader of reflogs, here and on hosts


def made_by_worktree(git_dir: Path | None, tip: str) -> bool:
    """Whether the HEAD reflog of the worktree whose own git folder is `git_dir` has `tip` as the new value of one
    of its entries (a commit it made, or one it moved to: a reset, an `update-ref` of its branch)."""
    return git_dir is not None and tip in reflog_tips(str(git_dir / "logs" / "HEAD"))


def made_in(git_dir: Path | None) -> set[str]:
    """The commits the worktree whose own git folder is `git_dir` made (committed, merged, cherry-picked, rebased),
    from its HEAD reflog: never a commit it only moved to (a reset, a checkout, a fast-forward, an `update-ref`),
    which may be anyone's."""
    return set() if git_dir is None else reflog_tips(str(git_dir / "logs" / "HEAD"), made=True)


def human_git_dir(worktree: Path) -> Path | None:
    """A worktree's own git folder from its `.git` (for a human's worktree; an agent's is the one recorded when the
    engine made it, `worktrees.admin_dir`, never what its agent-writable `.git` file says)."""
    return worktree_git_dir(worktree) if (worktree / ".git").is_file() else worktree / ".git"
