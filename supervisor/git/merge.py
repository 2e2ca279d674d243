"""`supervisor merge`: merge an agent branch into its target without disturbing anyone's uncommitted work.

The target branch is usually checked out in a worktree where a human or the parent agent is editing right
now, so `git merge` there is the wrong tool: it refuses on a dirty index, can leave conflict markers in the
user's files, and runs the user's hooks. Instead the merge happens in the object database and only then
touches that worktree, all or nothing:

1. if the target already contains the branch, nothing to do; else the agents' own objects it needs are taken
   into the shared store and checked (supervisor/git/taking_in.py), and what follows writes with no agent's
   folder read; if the target is an ancestor of the branch, the result is the branch tip (fast-forward);
   otherwise `git merge-tree --write-tree` computes the merged
   tree without a worktree (conflicts: refuse, nothing changed) and `git commit-tree` makes the two-parent
   commit;
2. if the target is checked out in a worktree, its index is locked (`index.lock`, as git itself does, so a
   concurrent `git commit` there fails instead of committing a half-updated index), and a two-tree
   `git read-tree -m -u <old> <new>` on a copy of the index moves the index and files from old to new. A
   two-tree merge carries unrelated staged and unstaged changes forward and refuses when a local change
   touches a path the merge changes: then nothing has changed and the error names those paths;
3. the branch ref moves with a compare-and-swap (`git update-ref <ref> <new> <old>`). If someone moved it
   meanwhile, the worktree files are rolled back with the reverse read-tree and the index is left as it was;
   otherwise the new index replaces the old one and the lock is released.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from supervisor.git import environment, taking_in
from supervisor.git.worktrees import GitError

__all__ = ["MergePlan", "MergeResult", "Preview", "TrialMerge", "merge_branch", "merge_preview", "plan_merge",
           "trial_merge"]

_HEADS = "refs/heads/"
_TEMP_INDEX = "index.supervisor-merge"


@dataclass(frozen=True)
class MergeResult:
    commit: str  # the target's tip afterwards
    fast_forward: bool
    already_merged: bool
    updated_worktree: Path | None  # the worktree whose index and files were moved along, if any


# ---------------------------------------------------------------------------------------------------------
# Running git


def _run(
    cwd: Path, *args: str, stdin: bytes | None = None, index: Path | None = None,
    objects: tuple[Path, Path] | None = None, shared_only: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run git in `cwd`; `index`: another index file; `objects`: (where new objects go, the repository's
    object directory, still read through as an alternate); `shared_only`: no agent's own object folder read
    (what main will reference must be written whole into the shared store)."""
    env: dict[str, str] = {}  # C locale: error messages are read below (environment.run sets it)
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    if objects is not None:
        env["GIT_OBJECT_DIRECTORY"] = str(objects[0])
        env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str(objects[1])
    return environment.run(cwd, *args, stdin=stdin, env=env, shared_only=shared_only)


def _stderr(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stderr.decode("utf-8", "replace").strip()


def _git(cwd: Path, *args: str, stdin: bytes | None = None, index: Path | None = None) -> str:
    done = _run(cwd, *args, stdin=stdin, index=index)
    if done.returncode != 0:
        lines = _stderr(done).splitlines()
        raise GitError(f"git {args[0]} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout.decode("utf-8", "surrogateescape").strip()


def _tip(root: Path, branch: str) -> str:
    """The commit of branch `branch` (a short name; a full `refs/...` name is taken as it is: a remote agent's
    branch as fetched home)."""
    ref = branch if branch.startswith("refs/") else f"{_HEADS}{branch}"
    done = _run(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if done.returncode != 0:
        raise GitError(f"no branch {branch}")
    return done.stdout.decode("ascii").strip()


def _is_ancestor(root: Path, ancestor: str, descendant: str) -> bool:
    done = _run(root, "merge-base", "--is-ancestor", ancestor, descendant)
    if done.returncode not in (0, 1):
        raise GitError(f"git merge-base failed: {_stderr(done)}")
    return done.returncode == 0


def _short(name: str) -> str:
    return name.removeprefix(_HEADS)


# ---------------------------------------------------------------------------------------------------------
# The merge commit


@dataclass(frozen=True)
class TrialMerge:
    """What merging two commits would give: the merged tree, and the paths that conflict (none: clean)."""

    tree: str
    conflicts: tuple[str, ...]


def trial_merge(root: Path, ours: str, theirs: str, *, objects: tuple[Path, Path] | None = None,
                shared_only: bool = False) -> TrialMerge:
    """Merge two commits in the object database only (`git merge-tree --write-tree`): no worktree, no index.

    `objects` = (scratch directory, the repository's object directory) writes the merge's new objects (the
    merged trees, blobs with conflict markers) to the scratch directory instead of the repository.
    `shared_only`: read no agent's own object folder (see `_run`).
    Conflicting paths are decoded as UTF-8 with undecodable bytes kept as surrogates. GitError when git
    cannot merge them at all (unrelated histories, an unknown commit).
    """
    done = _run(root, "merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", ours, theirs,
                objects=objects, shared_only=shared_only)
    fields = [field for field in done.stdout.split(b"\0") if field]
    if done.returncode == 0 and fields:
        return TrialMerge(fields[0].decode("ascii"), ())
    if done.returncode == 1 and len(fields) > 1:  # an unknown commit also exits 1, with no output at all
        paths = (field.decode("utf-8", "surrogateescape") for field in fields[1:])
        return TrialMerge(fields[0].decode("ascii"), tuple(dict.fromkeys(paths)))
    raise GitError(f"git merge-tree failed: {_stderr(done) or f'exit {done.returncode}'}")


def _merged_tree(root: Path, target: str, ours: str, theirs: str) -> str:
    """The tree of merging `theirs` into `ours`, computed without any worktree; GitError naming conflicts."""
    merged = trial_merge(root, ours, theirs, shared_only=True)
    if merged.conflicts:
        paths = ", ".join(path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                          for path in merged.conflicts)
        raise GitError(f"merging into {target if target.startswith('refs/') else _HEADS + target} conflicts in: "
                       f"{paths}",
                       hint=f"merge {target} into the agent's branch and resolve the conflicts there first")
    return merged.tree


def _commit(root: Path, tree: str, parents: tuple[str, str], message: str) -> str:
    done = _run(root, "commit-tree", tree, "-p", parents[0], "-p", parents[1], "-F", "-", stdin=message.encode(),
                shared_only=True)
    if done.returncode == 0:
        return done.stdout.decode("ascii").strip()
    detail = _stderr(done)
    if "tell me who you are" in detail.lower() or "identity" in detail.lower() or "auto-detect" in detail:
        raise GitError("git has no identity to record the merge commit with",
                       hint='git config user.name "Your Name" && git config user.email you@example.com')
    raise GitError(f"git commit-tree failed: {detail.splitlines()[-1] if detail else f'exit {done.returncode}'}")


# ---------------------------------------------------------------------------------------------------------
# The worktree that has the target checked out


def _checked_out_in(root: Path, target: str) -> Path | None:
    """The existing worktree whose HEAD is `refs/heads/<target>`, if any (from `git worktree list -z`)."""
    out = _run(root, "worktree", "list", "--porcelain", "-z")
    if out.returncode != 0:
        raise GitError(f"git worktree list failed: {_stderr(out)}")
    found: list[Path] = []
    for block in out.stdout.split(b"\0\0"):
        fields = dict(field.partition(b" ")[::2] for field in block.split(b"\0") if field)
        path = fields.get(b"worktree")
        if path is None or fields.get(b"branch") != f"{_HEADS}{target}".encode():
            continue
        where = Path(os.fsdecode(path))
        if b"bare" not in fields and b"prunable" not in fields and where.is_dir():
            found.append(where)
    if len(found) > 1:
        raise GitError(f"{target} is checked out in several worktrees: {', '.join(map(str, found))}")
    return found[0] if found else None


@contextlib.contextmanager
def _locked_index(worktree: Path) -> Iterator[tuple[Path, Path]]:
    """Hold the worktree's `index.lock` and yield (index, a scratch copy of it); always release both."""
    git_dir = Path(_git(worktree, "rev-parse", "--absolute-git-dir"))
    index, lock, scratch = git_dir / "index", git_dir / "index.lock", git_dir / _TEMP_INDEX
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise GitError(
            f"the index of {worktree} is locked by another git process ({lock} exists)",
            hint="try again when it is done, or remove the lock file if no git process is running",
        ) from None
    try:
        if index.exists():
            shutil.copyfile(index, scratch)
        else:
            scratch.unlink(missing_ok=True)
        yield index, scratch
    finally:
        scratch.unlink(missing_ok=True)
        os.close(fd)
        lock.unlink(missing_ok=True)


def _changed_paths(root: Path, old: str, new: str) -> set[str]:
    out = _run(root, "diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new).stdout
    return {os.fsdecode(path) for path in out.split(b"\0") if path}


def _local_changes(worktree: Path) -> set[str]:
    """Paths with staged, unstaged or untracked changes (read-only: no index refresh is written)."""
    out = _run(worktree, "--no-optional-locks", "status", "--porcelain=v1", "-z", "--no-renames",
               "--untracked-files=all", *environment.NOT_INTO_SUBMODULES).stdout
    return {os.fsdecode(entry[3:]) for entry in out.split(b"\0") if len(entry) > 3}


def _refused(worktree: Path, target: str, old: str, new: str, detail: str) -> GitError:
    touched = sorted(_changed_paths(worktree, old, new) & _local_changes(worktree))
    if touched:
        what = f"local changes in {worktree} touch paths the merge changes: {', '.join(touched)}"
    else:
        what = f"cannot update {worktree}: {detail.splitlines()[-1] if detail else 'read-tree failed'}"
    return GitError(f"not merged into {target}: {what}",
                    hint=f"commit or stash those changes in {worktree}, then merge again")


def _update_worktree(worktree: Path, target: str, old: str, new: str, reflog: str) -> None:
    """Move the checked-out `target` from `old` to `new`: index, files and ref, or nothing at all."""
    with _locked_index(worktree) as (index, scratch):
        if _tip(worktree, target) != old:
            raise GitError(f"{target} moved while merging", hint="run the merge again")
        # stale stat data is no local change; a gitlink's nested repository is not looked into
        _run(worktree, "update-index", "-q", "--ignore-submodules", "--refresh", index=scratch)
        done = _run(worktree, "read-tree", "-m", "-u", old, new, index=scratch)
        if done.returncode == 0:
            moved = _run(worktree, "update-ref", "-m", reflog, f"{_HEADS}{target}", new, old)
            if moved.returncode == 0:
                os.replace(scratch, index)
                return
            back = _run(worktree, "read-tree", "-m", "-u", new, old, index=scratch)
            lost = "" if back.returncode == 0 else f"; restoring the files in {worktree} failed: {_stderr(back)}"
            raise GitError(f"{target} moved while merging (nothing merged{lost})", hint="run the merge again")
    # Outside the lock: finding which local changes are in the way runs `git status` there.
    raise _refused(worktree, target, old, new, _stderr(done))


def _move_ref(root: Path, target: str, old: str, new: str, reflog: str) -> None:
    done = _run(root, "update-ref", "-m", reflog, f"{_HEADS}{target}", new, old)
    if done.returncode != 0:
        raise GitError(f"{target} moved while merging (nothing merged): {_stderr(done)}", hint="run the merge again")


# ---------------------------------------------------------------------------------------------------------
# The command


@dataclass(frozen=True)
class MergePlan:
    """A merge computed in the object database: the target moves from `old` to `new`."""

    old: str
    new: str
    fast_forward: bool


def _planned(root: Path, branch: str, theirs: str, target: str, message: str) -> MergePlan | None:
    """What merging commit `theirs` (of `branch`) would make the target (None: it already has all of it);
    GitError on conflicts, or when the objects it needs cannot be had whole and sound in the shared store: the
    agents' own ones are taken in first (supervisor/git/taking_in.py), and the merge reads no agent's folder."""
    old = _tip(root, target)
    if _is_ancestor(root, theirs, old):
        return None
    taking_in.take_in_branches(root, (branch, target))
    taking_in.check_merge(root, theirs, [old])
    if _is_ancestor(root, old, theirs):
        return MergePlan(old, theirs, fast_forward=True)
    tree = _merged_tree(root, target, old, theirs)
    return MergePlan(old, _commit(root, tree, (old, theirs), message), fast_forward=False)


@dataclass(frozen=True)
class Preview:
    branch_tip: str
    target_tip: str
    result: str  # the commit the target would become


def merge_preview(root: Path, branch: str, target: str) -> Preview | None:
    """What merging `branch` now would make `target`, touching no ref, index or worktree (a merge commit
    object is written, unreferenced); None when the target already has all of the branch."""
    branch = _short(branch)
    theirs = _tip(root, branch)
    planned = _planned(root, branch, theirs, _short(target), f"Merge {branch} (preview)")
    return None if planned is None else Preview(theirs, planned.old, planned.new)


def plan_merge(root: Path, branch: str, target: str, message: str, *, expected_tip: str | None = None,
               expected_target: str | None = None) -> MergePlan | None:
    """The merge of `branch` into `target` (as `merge_branch` takes them), computed and written as objects but
    moving no ref, index or worktree; None when the target has all of the branch already. GitError as
    `merge_branch` says, nothing moved."""
    branch, target = _short(branch), _short(target)
    theirs = _tip(root, branch)
    if expected_tip is not None and theirs != expected_tip:
        raise GitError(f"{branch} moved since it was audited (now at {theirs[:12]})", hint="run the merge again")
    plan = _planned(root, branch, theirs, target, message)
    if plan is not None and expected_target is not None and plan.old != expected_target:
        raise GitError(f"{target} moved since the check ran (now at {plan.old[:12]})", hint="run the merge again")
    return plan


def merge_branch(
    root: Path, branch: str, target: str, message: str, *, expected_tip: str | None = None,
    expected_target: str | None = None,
) -> MergeResult:
    """Merge `branch` into `target` (both branch names; `branch` may be a full ref: a remote agent's, as
    fetched home) with `message`, never touching uncommitted work.

    `expected_tip` is the commit the caller audited: if the branch has moved since, nothing is merged (an
    agent could otherwise slip a commit in between the audit and the merge). `expected_target` is the target
    tip a check ran against: if the target moved since, nothing is merged either.
    Raises GitError, with nothing changed, on conflicts, on local changes in the target's worktree that the
    merge would overwrite, on a missing identity, or when the branch or the target moves meanwhile.
    """
    branch, target = _short(branch), _short(target)
    plan = plan_merge(root, branch, target, message, expected_tip=expected_tip, expected_target=expected_target)
    if plan is None:
        return MergeResult(_tip(root, target), fast_forward=False, already_merged=True, updated_worktree=None)
    reflog = f"supervisor merge {branch}: {'fast-forward' if plan.fast_forward else 'merge'}"
    worktree = _checked_out_in(root, target)
    if worktree is None:
        _move_ref(root, target, plan.old, plan.new, reflog)
    else:
        _update_worktree(worktree, target, plan.old, plan.new, reflog)
    return MergeResult(plan.new, plan.fast_forward, already_merged=False, updated_worktree=worktree)
