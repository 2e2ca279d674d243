"""The conflict radar: which branches would conflict if merged, with each other or into their target.

For every pair of the given branches, and for each branch against the branch it merges into (its target),
`git merge-tree --write-tree` merges the two tips in the object database alone: no worktree, no index is
touched, and the objects the trial merges write go to a scratch directory that is deleted after the scan, so
the repository does not even collect loose objects. A pair whose merge would conflict is reported with the
conflicting paths.

A merge's outcome depends only on the two commits, so outcomes are cached by the pair of tips: when one
branch moves, only its pairs (and its target) are looked at again, and a scan of the same branches as the
last one looks only at the pairs of those that moved (its work grows with the branches, not the pairs). The
cache keeps only the pairs of the last scan, so branches that moved or went away leave nothing behind. The
merges of one scan run in a small pool of threads (each is a git process; the threads only wait).

    radar = Radar(root)
    scan = radar.scan({"agent/auth/work": "main", "agent/ui/work": "main"}, branch_tips(root, "refs/heads/"))
    scan.conflicts["agent/ui/work"]  # [Conflict(other="agent/auth/work", files=("src/app.py",))]

A branch whose target is another branch of the scan (a helper merging into its parent) meets it as a pair,
reported once under that name.

The prefilter: most pairs are proven clean without a merge
------------------------------------------------------------

With 100 branches a cold scan would be 4950 trial merges, and every commit about 100 more. But most agents
change files no other agent touches, and for those pairs the outcome follows from which paths each side
changed, which costs git processes per scan (a few), not per pair.

Why a skipped pair is clean. A merge of A and B with the single merge base M takes every path that only one
side changed from that side; it can only conflict where the changes M→A and M→B meet (`_Changes.meets`): a
path both changed; a path of one side that is a directory above a path of the other (file/directory); or a
directory above a path one side deleted that is also above a path the other side changed, because git
detects directory renames (a file added in a directory the other side renamed away). Renames need no rule
of their own: with --no-renames a rename is a deletion plus an addition, both listed.

Knowing M without asking git per pair. Both branches are seen from one reference commit R: their common
target (main for two sessions, the parent for its helpers, the target itself for a branch against it). One
`git rev-list --parents TIPS --not R` gives each branch's own commits (those R does not contain) and the
commits of R's history they stand on; when one of those contains all the others, it is the branch's fork F
(`git merge-base branch R`), and everything of the branch's history that R has is F's history. So if A and
B share no own commit, their common ancestors are the common ancestors of FA and FB, and when FA is an
ancestor of FB (or the same commit), that is FA's history: FA is the only merge base, the very tree
merge-tree merges from. Then M→A is A's own diff FA→A, and M→B lies within FA→FB plus B's own diff FB→B.
The forks seen from R, ordered by ancestry (one `rev-list` of the history between them), form a chain
F1 < F2 < ... < R whose neighbours are diffed once (the segments); FA→FB lies within the segments between
them. Against R itself, M is FA and R's side is FA→R. Diffs are of immutable commits, cached by their pair.
A branch that got one commit on top of the one it was at needs no `rev-list`: its own commits are the
previous ones plus the new one, once the same `diff-tree` that diffs it shows that its only parent is the
previous commit (otherwise, an amend or a merge, it is looked up). So a commit costs one git process.

Anything else gets the real merge: branches that share own commits (one merged the other), a fork that is
not unique, forks off the chain (criss-cross or merged-in histories), pairs with no common target, and any
git error on the way. A false "maybe" costs one merge-tree; a "clean" is never a guess.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from pathlib import Path

from supervisor.git import environment
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
    merges: int = 0  # trial merges git ran for this scan
    cached: int = 0  # outcomes taken from the cache
    skipped: int = 0  # pairs the prefilter proved clean without a merge
    failures: list[Failure] = field(default_factory=list)


# The outcome of one trial merge: the conflicting paths (empty: clean), or why git could not merge.
_Outcome = tuple[str, ...] | GitError
_Pair = tuple[str, str]  # two commit ids, the smaller first
# A pair for the prefilter: (reference commit R, a tip, the other tip or None for R itself).
_Question = tuple[str, str, str | None]


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Radar:
    """Trial merges of branch tips, with their outcomes cached between scans (one scan at a time).

    `prefilter=False` runs a merge for every pair whose outcome is not cached (the radar before the
    prefilter: for comparisons)."""

    def __init__(self, root: Path, workers: int | None = None, *, prefilter: bool = True) -> None:
        self.root = root
        self.workers = workers or default_workers()
        self._cache: dict[_Pair, _Outcome] = {}  # outcome by pair of commits, for the pairs of the last scan
        self._last = _Pairs({}, {})
        self._objects: Path | None = None
        self._prefilter = _Prefilter(root) if prefilter else None

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def scan(self, branches: Mapping[str, str | None], tips: Mapping[str, str]) -> Scan:
        """The conflicts of `branches` (branch → its target branch, or None) with each other and with their
        targets, at the commits `tips` gives (branch name → commit, as `branch_tips` returns).

        A branch missing from `tips` (deleted meanwhile) is left out; a target missing from it is skipped
        unless it is a full commit id. Pairs git cannot merge are listed in `failures`, never raised.

        When the same branches and targets as last time are scanned, only the pairs of those whose commit
        moved are looked at, so a commit costs work in proportion to the branches, not to the pairs."""
        present = {branch: tips[branch] for branch in sorted(branches) if branch in tips}
        roster = {branch: branches[branch] for branch in present}
        at = dict(present)  # every branch and target of the scan → its commit
        for target in roster.values():
            if target and target not in at and (target_tip := _tip_of(target, tips)) is not None:
                at[target] = target_tip
        last = self._last
        if last.roster == roster and last.at.keys() == at.keys():
            moved = [name for name, tip in at.items() if last.at[name] != tip]
            todo = {pair for name in moved for pair in last.of[name]}
            previous = {at[name]: last.at[name] for name in moved}
            state = last
        else:  # other branches or targets: every pair again (their outcomes still come from the cache)
            state = _Pairs(roster, at)
            todo, previous = set(state.keys), {}
        state.at = at
        wanted: dict[_Pair, list[tuple[str, str]]] = {}  # pair of commits → the pairs of names it answers
        for one, other in todo:
            wanted.setdefault(_pair(at[one], at[other]), []).append((one, other))
        outcomes, merges, skipped = self._outcomes(wanted, branches, tips, previous)
        dropped: list[_Pair] = []  # commits some pair was answered for before, maybe by no pair now
        for key, sides in wanted.items():
            for side in sides:
                dropped.extend(state.answer(side, key, outcomes[key]))
        self._cache.update(outcomes)
        if state is last:
            for key in set(dropped):  # one pair of commits may have answered several pairs of names
                if key not in state.refs:
                    self._cache.pop(key, None)
        else:  # only what this scan needed: moved or deleted branches' pairs drop out
            self._cache = {key: self._cache[key] for key in state.refs}
        self._last = state
        scan = Scan({branch: [] for branch in present}, merges=merges, skipped=skipped,
                    cached=len(state.refs) - merges - skipped)
        for (branch, other), outcome in state.bad.items():
            if isinstance(outcome, GitError):
                scan.failures.append(Failure(branch, other, str(outcome)))
            else:
                scan.conflicts[branch].append(Conflict(other, outcome))
                if other in scan.conflicts:
                    scan.conflicts[other].append(Conflict(branch, outcome))
        for found in scan.conflicts.values():
            found.sort()
        return scan

    def _outcomes(self, wanted: Mapping[_Pair, Sequence[tuple[str, str]]], branches: Mapping[str, str | None],
                  tips: Mapping[str, str], previous: Mapping[str, str]) -> tuple[dict[_Pair, _Outcome], int, int]:
        """Every wanted pair's outcome, with the number of merges run and of pairs the prefilter skipped
        (`previous`: the commit before, of the branches and targets that moved, by their new commit)."""
        outcomes: dict[_Pair, _Outcome] = {}
        missing: list[_Pair] = []
        for key in wanted:
            if key[0] == key[1]:
                outcomes[key] = ()  # the same commit: nothing to merge
            elif key in self._cache:
                outcomes[key] = self._cache[key]
            else:
                missing.append(key)
        skipped = 0
        if missing and self._prefilter is not None:
            targets = _Targets(branches, tips)
            questions = {key: question for key in missing
                         if (question := targets.question(*wanted[key][0])) is not None}
            clean = self._prefilter.clean(questions, previous)
            outcomes.update((key, ()) for key in clean)
            missing = [key for key in missing if key not in clean]
            skipped = len(clean)
        if not missing:
            return outcomes, 0, skipped
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
        return outcomes, len(missing), skipped

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


class _Pairs:
    """The pairs of names one set of branches and targets makes, each with the pair of commits it was last
    answered for, and those whose answer was a conflict or a failure."""

    def __init__(self, roster: dict[str, str | None], at: dict[str, str]) -> None:
        self.roster, self.at = roster, at
        self.keys: dict[tuple[str, str], _Pair | None] = {}  # (branch, other) → its commits, once answered
        self.of: dict[str, list[tuple[str, str]]] = {name: [] for name in at}  # name → the pairs it is in
        self.refs: dict[_Pair, int] = {}  # pair of commits → how many pairs of names it answers
        self.bad: dict[tuple[str, str], tuple[str, ...] | GitError] = {}
        branches = [branch for branch in roster if branch in at]
        pairs = [*combinations(branches, 2), *((branch, target) for branch, target in roster.items()
                                               if target and target not in roster and target in at)]
        for one, other in pairs:  # a target that is one of the branches is met as a pair of branches
            self.keys[(one, other)] = None
            self.of[one].append((one, other))
            self.of[other].append((one, other))

    def answer(self, pair: tuple[str, str], key: _Pair, outcome: _Outcome) -> list[_Pair]:
        """Record the outcome of `pair` at the commits `key`; the commits it was answered for before."""
        old = self.keys[pair]
        if old is not None:
            self.refs[old] -= 1
            if not self.refs[old]:
                del self.refs[old]
        self.keys[pair] = key
        self.refs[key] = self.refs.get(key, 0) + 1
        if outcome:
            self.bad[pair] = outcome
        else:
            self.bad.pop(pair, None)
        return [] if old is None or old == key else [old]


def _pair(one: str, two: str) -> _Pair:
    return (one, two) if one <= two else (two, one)


def _tip_of(name: str, tips: Mapping[str, str]) -> str | None:
    return tips.get(name) or (name if _OID.fullmatch(name) else None)


class _Targets:
    """Which reference commit a pair of branches is seen from, following targets (a helper's target is its
    parent, whose target is the base branch)."""

    def __init__(self, branches: Mapping[str, str | None], tips: Mapping[str, str]) -> None:
        self.branches, self.tips = branches, tips
        self._chains: dict[str, dict[str, str]] = {}

    def chain(self, branch: str) -> dict[str, str]:
        """The branch's target, its target's target, …: name → tip, nearest first."""
        if branch not in self._chains:
            chain: dict[str, str] = {}
            target = self.branches.get(branch)
            while target and target != branch and target not in chain:
                tip = _tip_of(target, self.tips)
                if tip is None:
                    break
                chain[target] = tip
                target = self.branches.get(target)
            self._chains[branch] = chain
        return self._chains[branch]

    def question(self, branch: str, other: str) -> _Question | None:
        """`branch` against `other` (a branch, or a target of `branch`) as the prefilter takes it, or None
        when they have no target in common."""
        tip = self.tips[branch]
        mine = self.chain(branch)
        if other in mine:
            return (mine[other], tip, None)
        theirs = self.chain(other) if other in self.branches else {}
        if branch in theirs:
            return (theirs[branch], self.tips[other], None)
        common = next((name for name in mine if name in theirs), None)
        if common is None:
            return None
        return (mine[common], tip, self.tips[other])


# ---------------------------------------------------------------------------------------------------------
# The prefilter


@dataclass(frozen=True)
class _Changes:
    """The paths one side of a merge changed (`git diff-tree -r --no-renames`), and the directories above."""

    paths: frozenset[str]
    dirs: frozenset[str]  # every directory above a changed path
    gone: frozenset[str]  # every directory above a deleted path: the side may have renamed it away

    @staticmethod
    def of(changes: Iterable[tuple[str, str]]) -> _Changes:
        """From (status letter, path) pairs."""
        paths: set[str] = set()
        dirs: set[str] = set()
        gone: set[str] = set()
        for status, path in changes:
            paths.add(path)
            parts = path.split("/")
            above = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
            dirs.update(above)
            if status == "D":
                gone.update(above)
        return _Changes(frozenset(paths), frozenset(dirs), frozenset(gone))

    def meets(self, other: _Changes) -> bool:
        """Whether a merge of this side with `other` (both from one merge base) could conflict."""
        return not (self.paths.isdisjoint(other.paths)
                    and self.paths.isdisjoint(other.dirs) and self.dirs.isdisjoint(other.paths)
                    and self.gone.isdisjoint(other.dirs) and self.dirs.isdisjoint(other.gone))


@dataclass(frozen=True)
class _Line:
    """A branch tip as seen from a reference commit R."""

    own: frozenset[str]  # the branch's commits that R does not contain
    bases: frozenset[str]  # the commits of R's history it stands on (the tip itself when R contains it)


@dataclass
class _View:
    """What one scan knows of the branches seen from one reference commit R."""

    lines: dict[str, _Line]  # tip → line
    forks: dict[str, str | None]  # tip → its fork, None when not unique
    points: list[str]  # the forks on one chain, oldest first, then R
    index: dict[str, int]  # point → its position


class _Prefilter:
    """Proves pairs clean from the paths each side changed (see the module's docstring), with its own caches
    of facts about commits: lines by (tip, reference), orders by set of commits, diffs by pair of commits, and
    which segment first meets a branch's changes. Each keeps what the last call used."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lines: dict[tuple[str, str], _Line] = {}
        self._orders: dict[frozenset[str], dict[str, frozenset[str]]] = {}
        self._changes: dict[tuple[str, str], _Changes] = {}
        self._reach: dict[tuple[str, tuple[str, ...]], int] = {}

    def clean(self, questions: Mapping[_Pair, _Question], previous: Mapping[str, str]) -> set[_Pair]:
        """The pairs whose merge is proven clean; any git error proves nothing. `previous` maps a tip to the
        commit its branch was at before: when it is that commit's only parent, its line is that commit's
        plus itself, and no `rev-list` is needed (checked in the same `diff-tree` as the diffs)."""
        try:
            return self._clean(questions, previous)
        except GitError:
            self._lines = {}  # they may hold guesses that were not checked
            return set()

    def _clean(self, questions: Mapping[_Pair, _Question], previous: Mapping[str, str]) -> set[_Pair]:
        wanted: dict[str, set[str]] = {}  # reference → the tips seen from it
        for reference, one, two in questions.values():
            wanted.setdefault(reference, set()).update(tip for tip in (one, two) if tip is not None)
        used_lines: dict[tuple[str, str], _Line] = {}
        used_orders: dict[frozenset[str], dict[str, frozenset[str]]] = {}
        views: dict[str, _View] = {}
        guessed: set[str] = set()
        for reference, seen in wanted.items():
            try:
                lines = self._lines_from(reference, seen, previous, guessed)
                bases = frozenset(base for line in lines.values() for base in line.bases)
                order = self._orders.get(bases) or self._order(bases)
            except GitError:
                continue  # an unknown reference commit: its pairs get the real merge
            used_lines.update(((tip, reference), line) for tip, line in lines.items())
            used_orders[bases] = order
            views[reference] = _view(reference, lines, order)
        self._lines, self._orders = used_lines, used_orders

        needed: set[tuple[str, str]] = set()  # (from, to): each tip's own diff, and the segments
        for view in views.values():
            needed.update((fork, tip) for tip, fork in view.forks.items() if fork is not None)
            needed.update(pairwise(view.points))
        changes, parents = self._diffs(needed, guessed)
        wrong = {tip for tip in guessed if parents.get(tip) != [previous[tip]]}
        if wrong:  # not a commit on top of the previous one (a merge, an amend, a reset): ask rev-list
            self._lines = {key: line for key, line in self._lines.items() if key[0] not in wrong}
            return self._clean(questions, {tip: old for tip, old in previous.items() if tip not in wrong})
        reach = self._reaches(views, changes)

        clean: set[_Pair] = set()
        for key, (reference, one, two) in questions.items():
            seen_from = views.get(reference)
            if seen_from is not None and _proven_clean(seen_from, changes, reach, reference, one, two):
                clean.add(key)
        return clean

    def _lines_from(self, reference: str, tips: set[str], previous: Mapping[str, str], guessed: set[str],
                    ) -> dict[str, _Line]:
        """Each tip as seen from `reference`: from the cache; guessed from its previous commit's line (added to
        `guessed`, to be checked) when that commit is not in the reference's history; or from one `rev-list`
        for all the others."""
        lines = {tip: line for tip in tips if (line := self._lines.get((tip, reference))) is not None}
        for tip in tips - lines.keys():
            before = self._lines.get((previous.get(tip, ""), reference))
            if before is not None and before.own:  # so neither the previous commit nor this one is in R
                lines[tip] = _Line(before.own | {tip}, before.bases)
                guessed.add(tip)
        fresh = sorted(tips - lines.keys())
        if not fresh:
            return lines
        out = _git(self.root, "rev-list", "--parents", "--stdin",
                   stdin="".join(f"{tip}\n" for tip in [*fresh, f"^{reference}"]).encode())
        parents: dict[str, list[str]] = {}  # the commits of the tips that the reference does not contain
        for row in out.decode("ascii").splitlines():
            commit, *above = row.split()
            parents[commit] = above
        for tip in fresh:
            if tip not in parents:
                lines[tip] = _Line(frozenset(), frozenset([tip]))
                continue
            own, bases, todo = {tip}, set(), [tip]
            while todo:
                for parent in parents[todo.pop()]:
                    if parent not in parents:
                        bases.add(parent)
                    elif parent not in own:
                        own.add(parent)
                        todo.append(parent)
            lines[tip] = _Line(frozenset(own), frozenset(bases))
        return lines

    def _order(self, commits: frozenset[str]) -> dict[str, frozenset[str]]:
        """For each of `commits`, those of them that contain it (itself included): one walk of the history
        from them down to their common ancestor, carrying each commit's bit to its parents."""
        alone = {commit: frozenset([commit]) for commit in commits}
        if len(commits) < 2:
            return alone
        done = _run(self.root, "merge-base", "--octopus", "--all", *sorted(commits))
        floor = done.stdout.decode("ascii").split()
        if done.returncode != 0 or not floor:
            return alone  # no common ancestor: only each commit itself is known to contain it
        out = _git(self.root, "rev-list", "--parents", "--topo-order", "--stdin",
                   stdin="".join(f"{rev}\n" for rev in [*sorted(commits), *(f"^{c}" for c in floor)]).encode())
        bits = {commit: 1 << number for number, commit in enumerate(sorted(commits))}
        masks: dict[str, int] = {}
        for row in out.decode("ascii").splitlines():  # children before parents
            commit, *above = row.split()
            mask = masks.pop(commit, 0) | bits.get(commit, 0)
            if commit in bits:
                masks[commit] = mask
            for parent in above:
                masks[parent] = masks.get(parent, 0) | mask
        return {commit: frozenset(other for other, bit in bits.items() if (masks.get(commit, 0) | bits[commit]) & bit)
                for commit in commits}

    def _diffs(self, needed: set[tuple[str, str]], commits: set[str]) -> tuple[dict[tuple[str, str], _Changes],
                                                                               dict[str, list[str]]]:
        """The changes from one commit to another for each pair, from the cache or one `diff-tree` for all the
        others, and the parents of `commits` (read in the same process).

        A line "B A" of `diff-tree --stdin` diffs A → B (B as a commit, A given as its parent); a line "C" diffs
        commit C with its own parents, and the header format prints them. Those lines come first: git keeps
        the parents a line gives to a commit for the lines after it."""
        changes = {diff: known for diff in needed if (known := self._changes.get(diff)) is not None}
        fresh = sorted(diff for diff in needed if diff not in changes and diff[0] != diff[1])
        changes.update((diff, _Changes.of(())) for diff in needed if diff[0] == diff[1])
        parents: dict[str, list[str]] = {}
        lines = [*sorted(commits), *(f"{new} {old}" for old, new in fresh)]
        if lines:
            out = _git(self.root, "diff-tree", "--stdin", "-r", "-z", "--no-renames", "--name-status", "--always",
                       "--ignore-submodules=none", "--format=%x01%H %P", stdin="".join(f"{line}\n" for line in lines)
                       .encode())
            # Per line, in input order (--always: even with no change): \x01<commit> <parents> NUL, then its
            # changes as <status> NUL <path> NUL (a newline before the first).
            tokens = out.split(b"\0")
            if tokens[-1:] == [b""]:
                tokens.pop()
            found: list[tuple[list[str], list[tuple[str, str]]]] = []
            position = 0
            while position < len(tokens):
                token = tokens[position].lstrip(b"\n")
                if token.startswith(b"\x01"):
                    found.append((token[1:].decode("ascii").split(), []))
                    position += 1
                elif found and token and position + 1 < len(tokens):
                    path = tokens[position + 1].decode("utf-8", "surrogateescape")
                    found[-1][1].append((token[:1].decode("ascii", "replace"), path))
                    position += 2
                else:
                    raise GitError(f"git diff-tree: unexpected output near {token[:80]!r}")
            if len(found) != len(lines):
                raise GitError(f"git diff-tree: {len(found)} diffs for {len(lines)} lines")
            parents = {header[0]: header[1:] for header, _ in found[:len(commits)]}
            changes.update(zip(fresh, (_Changes.of(diff) for _, diff in found[len(commits):]), strict=True))
        self._changes = changes
        return changes, parents

    def _reaches(self, views: Mapping[str, _View], changes: Mapping[tuple[str, str], _Changes]) -> dict[
            tuple[str, str], int]:
        """For each (tip, reference) whose fork is on the chain, the first segment from its fork on that meets
        its own changes (len(points) - 1: none), cached by the tip and the chain from its fork up."""
        reach: dict[tuple[str, str], int] = {}
        kept: dict[tuple[str, tuple[str, ...]], int] = {}
        for reference, view in views.items():
            last = len(view.points) - 1
            for tip, fork in view.forks.items():
                if fork is None or fork not in view.index:
                    continue
                start = view.index[fork]
                key = (tip, tuple(view.points[start:]))
                steps = self._reach.get(key)  # counted from the fork: the chain below it may change
                if steps is None:
                    mine = changes[(fork, tip)]
                    steps = next((number - start for number in range(start, last)
                                  if mine.meets(changes[(view.points[number], view.points[number + 1])])),
                                 last - start)
                kept[key] = steps
                reach[(tip, reference)] = start + steps
        self._reach = kept
        return reach


def _view(reference: str, lines: dict[str, _Line], order: Mapping[str, frozenset[str]]) -> _View:
    """Each tip's fork (the base that contains all its other bases), and a chain of forks ordered by ancestry
    (newest first, each kept if it is an ancestor of the last one kept), ending with the reference."""
    forks: dict[str, str | None] = {}
    for tip, line in lines.items():
        forks[tip] = next((base for base in line.bases if all(base in order[other] for other in line.bases)), None)
    chain: list[str] = []
    for fork in sorted({fork for fork in forks.values() if fork is not None}, key=lambda f: (len(order[f]), f)):
        if not chain or chain[-1] in order[fork]:
            chain.append(fork)
    points = [*reversed(chain)]
    if not points or points[-1] != reference:
        points.append(reference)  # every base is in the reference's history
    return _View(lines, forks, points, {point: number for number, point in enumerate(points)})


def _proven_clean(view: _View, changes: Mapping[tuple[str, str], _Changes], reach: Mapping[tuple[str, str], int],
                  reference: str, one: str, two: str | None) -> bool:
    """Whether merging tips `one` and `two` (None: the reference itself) is certainly clean."""
    fork = view.forks[one]
    if fork is None:
        return False
    if two is None:  # against the reference: the merge base is the fork, the reference's side fork → reference
        return fork in view.index and reach[(one, reference)] == len(view.points) - 1
    other_fork = view.forks[two]
    if other_fork is None or not view.lines[one].own.isdisjoint(view.lines[two].own):
        return False
    if changes[(fork, one)].meets(changes[(other_fork, two)]):
        return False
    if fork == other_fork:
        return True
    if fork not in view.index or other_fork not in view.index:
        return False  # forks off the chain: maybe not even ancestors of one another
    if view.index[fork] > view.index[other_fork]:
        one, fork, other_fork = two, other_fork, fork
    # The merge base is `fork`; the other side's changes lie within the segments up to its fork and its own.
    return reach[(one, reference)] >= view.index[other_fork]


def _run(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return environment.run(root, *args, stdin=stdin)


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    done = _run(root, *args, stdin=stdin)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout
