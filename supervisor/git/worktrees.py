"""Agent worktrees and branches (git run as the engine runs it: `supervisor.git.environment`)."""

from __future__ import annotations

import threading
from pathlib import Path

from supervisor.errors import SupervisorError
from supervisor.files import write_atomically
from supervisor.git import environment
from supervisor.git.environment import NO_DIFF_PROGRAMS, NOT_INTO_SUBMODULES
from supervisor.hostside import sandbox_prep

# Files supervisor writes into agent worktrees. They are excluded through the repository's own
# info/exclude, which every worktree reads, so they never show as changes nor get committed.
SUPERVISOR_FILES = ("/SESSION.md", "/.sub-agents/", "/.claude/settings.local.json")
_EXCLUDE_MARK = "# supervisor: files it writes into agent worktrees (never committed)"


class GitError(SupervisorError):
    pass


def run_git(cwd: Path, *args: str) -> str:
    """git's output (one trailing newline removed); GitError with its message when it fails."""
    try:
        done = environment.run(cwd, *args)
    except OSError as exc:
        raise GitError(f"git {args[0]} failed: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"git {args[0]} failed: {detail or f'exit {done.returncode}'}")
    return done.stdout.decode("utf-8", "surrogateescape").removesuffix("\n")


def current_branch(root: Path) -> str | None:
    try:
        name = run_git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
    except GitError:
        return None  # detached HEAD
    return name or None


def resolve(root: Path, rev: str) -> str:
    try:
        return run_git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except GitError:
        raise GitError(f"unknown revision {rev!r}", hint="pass --base with a branch, tag or commit") from None


def branch_exists(root: Path, branch: str) -> bool:
    """Whether branch `branch` (a short name, or a full `refs/...` name) exists."""
    ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    try:
        run_git(root, "rev-parse", "--verify", "--quiet", ref)
    except GitError:
        return False
    return True


def ensure_excludes(common_dir: Path) -> None:
    """Add supervisor's files to info/exclude once."""
    exclude = common_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    current = exclude.read_text() if exclude.exists() else ""
    if _EXCLUDE_MARK in current:
        return
    block = "\n".join([_EXCLUDE_MARK, *SUPERVISOR_FILES]) + "\n"
    separator = "" if not current or current.endswith("\n") else "\n"
    exclude.write_text(current + separator + block)


def write_contract(worktree: Path, text: str) -> None:
    """Write SESSION.md into the worktree's root (atomically: an agent may be reading it)."""
    write_atomically(worktree / "SESSION.md", text)


# Two `git worktree add` at once in one repository can fail: each reads every worktree's folder under
# .git/worktrees, and may find the other's half made ("failed to read .git/worktrees/NAME/commondir"). The
# engine's launches run in threads of their own, so they add worktrees one at a time.
ADDING = threading.Lock()


def add_worktree(root: Path, path: Path, branch: str, base: str) -> None:
    if branch_exists(root, branch):
        raise GitError(
            f"branch {branch} already exists",
            hint=f"delete it (git branch -D {branch}) or choose another name",
        )
    if path.exists() and any(path.iterdir()):
        raise GitError(f"{path} already exists and is not empty", hint="remove it or choose another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    with ADDING:
        run_git(root, "worktree", "add", "--quiet", "-b", branch, str(path), base)


def remove_worktree(root: Path, path: Path, branch: str) -> None:
    if path.exists():
        run_git(root, "worktree", "remove", "--force", "--force", str(path))
    run_git(root, "worktree", "prune")
    if branch_exists(root, branch):
        run_git(root, "branch", "-D", branch)


def unmerged_commits(root: Path, branch: str, target: str) -> list[str]:
    """Commits on `branch` that `target` does not contain (all of them when `target` is gone)."""
    if not branch_exists(root, branch):
        return []
    spec = [branch, "--not", target] if branch_exists(root, target) or _is_commit(root, target) else [branch]
    out = run_git(root, "rev-list", "--oneline", *spec)
    return [line for line in out.splitlines() if line]


def _is_commit(root: Path, rev: str) -> bool:
    try:
        resolve(root, rev)
    except GitError:
        return False
    return True


def uncommitted_changes(worktree: Path) -> list[str]:
    """`git status --porcelain` lines of a worktree (supervisor's own files are excluded). Without optional
    locks: it never rewrites the agent's index, which the agent's own git may be writing at the same moment
    (and a rewrite in the same second as an edit can hide that edit from the agent's next `git add`)."""
    if not worktree.exists():
        return []
    out = run_git(worktree, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all",
                  *NOT_INTO_SUBMODULES)
    return [line for line in out.splitlines() if line]


def diffstat(worktree: Path, base: str) -> dict[str, int] | None:
    """Files changed and lines added/removed in `worktree` (commits and uncommitted edits) against `base`."""
    if not worktree.is_dir():
        return None
    try:
        out = run_git(worktree, "diff", *NO_DIFF_PROGRAMS, *NOT_INTO_SUBMODULES, "--numstat", "--no-renames", base)
    except GitError:
        return None
    return _numstat(out)


def diffstat_between(root: Path, base: str, tip: str) -> dict[str, int] | None:
    """Files changed and lines added/removed from commit `base` to commit `tip`."""
    try:
        out = run_git(root, "diff", *NO_DIFF_PROGRAMS, "--numstat", "--no-renames", base, tip, "--")
    except GitError:
        return None
    return _numstat(out)


def _numstat(out: str) -> dict[str, int]:
    files = added = removed = 0
    for line in out.splitlines():
        plus, minus, _path = line.split("\t", 2)
        files += 1
        added += int(plus) if plus.isdigit() else 0  # "-" for binary files
        removed += int(minus) if minus.isdigit() else 0
    return {"files": files, "added": added, "removed": removed}


GIT_DIR_KEY = "git_dir"  # in an agent's record: its worktree's own git folder, as git gave it at creation


def git_dir_at_creation(worktree: Path) -> str:
    """The worktree's own git folder (`.git/worktrees/<id>`), asked of git right after it made the worktree,
    before any agent could write the worktree's `.git` file."""
    return run_git(worktree, "rev-parse", "--absolute-git-dir")


def admin_dir(common_dir: Path, worktree: Path, recorded: str | None) -> Path:
    """The worktree's own git folder as the engine knows it: as recorded at its creation, else the one folder of
    `common_dir/worktrees/` whose `gitdir` names this worktree (never what the worktree's own, agent-writable,
    `.git` file says). Resolved, and always a direct child of `common_dir/worktrees/`: GitError otherwise. (The
    same code finds it on a host: supervisor/hostside/sandbox_prep.py.)"""
    try:
        return sandbox_prep.admin_dir(common_dir, worktree, recorded)
    except sandbox_prep.NotItsGitFolder as exc:
        raise GitError(exc.message, hint=exc.hint) from None
