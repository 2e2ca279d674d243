"""The conflict radar: which branches would conflict if merged, with each other or into their target.

For every pair of the given branches, and for each branch against the branch it merges into (its target),
`git merge-tree --write-tree` merges the two tips in the object database alone: no worktree, no index is
touched, and the objects the trial merges write go to a scratch directory that is deleted after the scan, so
the repository does not even collect loose objects. A pair whose merge would conflict is reported with the
conflicting paths.

A merge's outcome depends only on the two commits, so outcomes are cached by the pair of tips: when one
branch moves, only its pairs (and its target) run git again. The cache keeps only the pairs of the last
scan, so branches that moved or went away leave nothing behind. The merges of one scan run in a small pool
of threads (each is a git process; the threads only wait).

    radar = Radar(root)
    scan = radar.scan({"agent/auth": "main", "agent/ui": "main"}, branch_tips(root, "refs/heads/"))
    scan.conflicts["agent/ui"]  # [Conflict(other="agent/auth", files=("src/app.py",))]

A branch whose target is another branch of the scan (a helper merging into its parent) meets it as a pair,
reported once under that name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from supervisor.git.merge import trial_merge
from supervisor.git.worktrees import GitError, run_git

__all__ = ["Conflict", "Radar", "Scan", "default_workers"]

_OID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


@dataclass(frozen=True, order=True)
class Conflict:
    """Merging this branch and `other` (another branch, or its target) would conflict in `files`."""

    other: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class Failure:
    """Two branches git could not merge at all (unrelated histories, a commit gone missing)."""

    branch: str
    other: str
    error: str


@dataclass
class Scan:
    conflicts: dict[str, list[Conflict]]  # branch → its conflicts, by `other`; every scanned branch is a key
    merges: int = 0  # trial merges git ran for this scan (the others came from the cache)
    cached: int = 0  # outcomes taken from the cache
    failures: list[Failure] = field(default_factory=list)


# The outcome of one trial merge: the conflicting paths (empty: clean), or why git could not merge.
_Outcome = tuple[str, ...] | GitError
_Pair = tuple[str, str]  # two commit ids, the smaller first


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Radar:
    """Trial merges of branch tips, with their outcomes cached between scans (one scan at a time)."""

    def __init__(self, root: Path, workers: int | None = None) -> None:
        self.root = root
        self.workers = workers or default_workers()
        self._cache: dict[_Pair, _Outcome] = {}
        self._objects: Path | None = None

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def scan(self, branches: Mapping[str, str | None], tips: Mapping[str, str]) -> Scan:
        """The conflicts of `branches` (branch → its target branch, or None) with each other and with their
        targets, at the commits `tips` gives (branch name → commit, as `branch_tips` returns).

        A branch missing from `tips` (deleted meanwhile) is left out; a target missing from it is skipped
        unless it is a full commit id. Pairs git cannot merge are listed in `failures`, never raised."""
        present = {branch: tips[branch] for branch in sorted(branches) if branch in tips}
        wanted: dict[_Pair, list[tuple[str, str]]] = {}  # commit pair → the (branch, other) pairs it answers
        for (one, tip_one), (two, tip_two) in combinations(present.items(), 2):
            wanted.setdefault(_pair(tip_one, tip_two), []).append((one, two))
        for branch, tip in present.items():
            target = branches[branch]
            if not target or target in present:
                continue  # no target, or one of the scanned branches: met as a pair above
            target_tip = tips.get(target) or (target if _OID.fullmatch(target) else None)
            if target_tip is not None:
                wanted.setdefault(_pair(tip, target_tip), []).append((branch, target))
        outcomes, merges = self._outcomes(list(wanted))
        scan = Scan({branch: [] for branch in present}, merges=merges, cached=len(wanted) - merges)
        for key, sides in wanted.items():
            outcome = outcomes[key]
            for branch, other in sides:
                if isinstance(outcome, GitError):
                    scan.failures.append(Failure(branch, other, str(outcome)))
                elif outcome:
                    scan.conflicts[branch].append(Conflict(other, outcome))
                    if other in scan.conflicts:
                        scan.conflicts[other].append(Conflict(branch, outcome))
        for found in scan.conflicts.values():
            found.sort()
        self._cache = outcomes  # only what this scan needed: moved or deleted branches' pairs drop out
        return scan

    def _outcomes(self, keys: list[_Pair]) -> tuple[dict[_Pair, _Outcome], int]:
        outcomes: dict[_Pair, _Outcome] = {}
        missing: list[_Pair] = []
        for key in keys:
            if key[0] == key[1]:
                outcomes[key] = ()  # the same commit: nothing to merge
            elif key in self._cache:
                outcomes[key] = self._cache[key]
            else:
                missing.append(key)
        if not missing:
            return outcomes, 0
        with self._scratch_objects() as objects:
            def merge(key: _Pair) -> _Outcome:
                try:
                    return trial_merge(self.root, key[0], key[1], objects=objects).conflicts
                except GitError as exc:
                    return exc

            if self.workers > 1 and len(missing) > 1:
                with ThreadPoolExecutor(max_workers=min(self.workers, len(missing)),
                                        thread_name_prefix="radar") as pool:
                    outcomes.update(zip(missing, pool.map(merge, missing), strict=True))
            else:
                outcomes.update((key, merge(key)) for key in missing)
        return outcomes, len(missing)

    @contextmanager
    def _scratch_objects(self) -> Iterator[tuple[Path, Path]]:
        """A scratch object directory for one scan's trial merges, reading through to the repository's."""
        if self._objects is None:
            where = Path(run_git(self.root, "rev-parse", "--git-path", "objects"))
            self._objects = where if where.is_absolute() else (self.root / where).resolve()
        scratch = Path(tempfile.mkdtemp(prefix="supervisor-radar-"))
        try:
            yield scratch, self._objects
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _pair(one: str, two: str) -> _Pair:
    return (one, two) if one <= two else (two, one)
