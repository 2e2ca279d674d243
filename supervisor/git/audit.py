"""The commit audit: which commits of an agent branch change paths its contract forbids.

Git hooks are advice: an agent can pass `--no-verify`, `-c core.hooksPath=`, or commit with plumbing
(`commit-tree` + `update-ref`). This audit reads the commits themselves, so it is the real check. The engine
runs it on every new commit of every agent branch:

    tips = branch_tips(root)                                   # one git process for all agents
    commits = new_commits(root, tips[branch], [last_audited, target])
    for found in audit(root, rules, commits): ...              # one (two with violations) git processes

A merge commit is charged with what it changed itself: the paths where its tree differs from what git's
own merge of its two parents gives (`git merge-tree`, as `git show --remerge-diff` does): conflict
resolutions, "evil" edits, and a side's change undone by taking the other side's older content (a merge
of an earlier commit of the target that reverts a later one). What a merge brings in cleanly from one side
is the business of that side's commits, which are audited on their own unless they belong to the branch
the agent merges into. An octopus merge, which git cannot redo in one step, is charged with every path it
differs from any of its parents in.

`merge` also checks the branch's net change since its merge base with the target (`net_violations`), so
whatever a history of commits hides, what the branch would bring into the target is inside its contract.

Git runs with replace refs and grafts disabled, so an agent cannot make a commit look like another one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from supervisor.core.pathrules import PathRules, Violation, check_changes
from supervisor.git import environment
from supervisor.git.worktrees import GitError

__all__ = [
    "CommitViolation", "audit", "branch_tips", "commit_changes", "merge_changes", "net_changes", "net_violations",
    "new_commits",
]

Change = tuple[str, str, str | None]

_HEADS = "refs/heads/"
_OID = re.compile(rb"[0-9a-f]{40}(?:[0-9a-f]{24})?")


@dataclass(frozen=True)
class CommitViolation:
    """A commit that changes paths its contract forbids."""

    commit: str
    subject: str
    violations: tuple[Violation, ...]

    def __str__(self) -> str:
        lines = [f"{self.commit[:12]} {self.subject}"]
        lines += [f"  {violation}" for violation in self.violations]
        return "\n".join(lines)


# `git replace` could show the audit a harmless stand-in commit; info/grafts could re-parent one.
_ENV = {"GIT_NO_REPLACE_OBJECTS": "1", "GIT_GRAFT_FILE": os.devnull}


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run git in `root` and return its raw stdout; GitError with git's message on failure."""
    done = environment.run(root, *args, stdin=stdin, env=_ENV)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def _text(raw: bytes) -> str:
    """A path or name from git's -z output: UTF-8, undecodable bytes kept as surrogates (round-trips)."""
    return raw.decode("utf-8", "surrogateescape")


def branch_tips(root: Path, prefix: str = "refs/heads/agent/") -> dict[str, str]:
    """Branch short name (`agent/auth.test/work`) → tip commit for every ref under `prefix`, in one git process."""
    out = _git(root, "for-each-ref", "--format=%(objectname) %(refname)", prefix)
    tips: dict[str, str] = {}
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        commit, _, ref = line.partition(" ")
        if ref:
            tips[ref.removeprefix(_HEADS)] = commit
    return tips


def new_commits(root: Path, tip: str, exclude: Sequence[str]) -> list[str]:
    """Commits reachable from `tip` and from none of `exclude`, oldest first (parents before children).

    `exclude` is typically the last audited tip and the branch the agent merges into. Excludes that no longer
    resolve (a deleted branch, a commit pruned after a rewrite) are ignored; an unknown `tip` is an error.
    """
    if not tip or tip.startswith("-"):
        raise GitError(f"not a commit: {tip!r}")
    wanted = [rev for rev in exclude if rev and not rev.startswith("-")]
    out = _git(root, "rev-list", "--topo-order", "--reverse", "--ignore-missing", tip, "--not", *wanted, "--")
    commits = out.decode("ascii").split()
    if not commits:  # --ignore-missing also hides a missing tip: tell that apart from "nothing new"
        try:
            _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{tip}^{{commit}}")
        except GitError:
            raise GitError(f"unknown commit {tip}") from None
    return commits


@dataclass(frozen=True)
class _Commit:
    tree: str
    parents: tuple[str, ...]
    subject: str


def _read_commits(root: Path, commits: Sequence[str]) -> dict[str, _Commit]:
    """Tree, parents and subject of each commit, from one `cat-file --batch` (length-framed, so robust).
    GitError naming the first id that is missing or not a commit."""
    out = _git(root, "cat-file", "--batch", stdin="".join(f"{c}\n" for c in commits).encode())
    found: dict[str, _Commit] = {}
    position = 0
    for commit in commits:
        header_end = out.index(b"\n", position)
        fields = out[position:header_end].split()
        position = header_end + 1
        if len(fields) != 3:  # "<id> missing"
            raise GitError(f"unknown commit {commit}")
        size = int(fields[2])
        body = out[position : position + size]
        position += size + 1
        if fields[1] != b"commit":
            raise GitError(f"unknown commit {commit} (a {fields[1].decode('ascii', 'replace')})")
        head, _, message = body.partition(b"\n\n")
        tree, parents = "", []
        for line in head.split(b"\n"):
            key, _, value = line.partition(b" ")
            if key == b"tree":
                tree = value.decode("ascii")
            elif key == b"parent":
                parents.append(value.decode("ascii"))
        subject = message.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        found[commit] = _Commit(tree, tuple(parents), subject)
    return found


def _parse_groups(out: bytes, into: dict[str, list[Change]]) -> None:
    """`diff-tree --stdin -z --name-status` output, <id> NUL (<status> NUL <path> NUL)* per commit, into
    `into` (a commit without changes prints nothing: its entry stays as it was)."""
    tokens = out.split(b"\0")
    if tokens and tokens[-1] == b"":
        tokens.pop()
    current: list[Change] | None = None
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if _OID.fullmatch(token):  # a commit header; statuses are letters, so this is never ambiguous
            current = into.setdefault(token.decode("ascii"), [])
            position += 1
            continue
        if current is None or position + 1 >= len(tokens):
            raise GitError(f"git diff-tree: unexpected output near {token[:80]!r}")
        current.append((token[:1].decode("ascii"), _text(tokens[position + 1]), None))
        position += 2


def _tree_changes(root: Path, old: str, new: str) -> list[Change]:
    """The paths that differ between two trees (or commits), as (status letter, path, None)."""
    out = _git(root, "diff-tree", "-r", "--no-renames", "-z", "--name-status", "--ignore-submodules=none",
               old, new, "--")
    fields = out.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    if len(fields) % 2:
        raise GitError(f"git diff-tree: unexpected output {out[:80]!r}")
    return [(fields[i][:1].decode("ascii"), _text(fields[i + 1]), None) for i in range(0, len(fields), 2)]


def _remerged_tree(root: Path, ours: str, theirs: str) -> str | None:
    """The tree git's own merge of two commits gives (conflicted paths with their markers in); None when git
    cannot merge them. Its few new objects go into the repository, as those of `git merge` would."""
    done = environment.run(root, "merge-tree", "--write-tree", "--allow-unrelated-histories", "-z", "--name-only",
                           "--no-messages", ours, theirs, env=_ENV)
    tree = done.stdout.split(b"\0", 1)[0]
    return tree.decode("ascii") if done.returncode in (0, 1) and _OID.fullmatch(tree) else None


def _one_per_path(changes: list[Change]) -> list[Change]:
    """The first change of each path (of changes gathered against several trees)."""
    seen: set[str] = set()
    kept = []
    for change in changes:
        if change[1] not in seen:
            seen.add(change[1])
            kept.append(change)
    return kept


def commit_changes(root: Path, commits: Sequence[str]) -> dict[str, list[Change]]:
    """The paths each commit (a full commit id) changed, as (status letter, path, None).

    `--no-renames` makes a rename a deletion plus an addition, so both sides are checked. A root commit lists
    all its files; any other plain commit what differs from its parent. A two-parent merge lists the paths
    where it differs from git's own merge of its parents (`git merge-tree`): its conflict resolutions, evil
    edits and reverts, not what it cleanly brings in from either side. An octopus merge (or a merge git
    cannot redo) lists every path it differs from any parent in. One `cat-file` and one `diff-tree` for all
    the commits, plus one `merge-tree` and one `diff-tree` per two-parent merge (a `diff-tree` per parent
    for an octopus).
    """
    return _changes(root, commits)[1]


def _changes(root: Path, commits: Sequence[str]) -> tuple[dict[str, _Commit], dict[str, list[Change]]]:
    unique = list(dict.fromkeys(commits))
    bad = [commit for commit in unique if not _OID.fullmatch(commit.encode())]
    if bad:  # diff-tree --stdin echoes a line it cannot parse as an object id, which would garble the output
        raise GitError(f"not a full commit id: {bad[0]!r}")
    if not unique:
        return {}, {}
    info = _read_commits(root, unique)
    changes: dict[str, list[Change]] = {commit: [] for commit in unique}
    plain = [commit for commit in unique if len(info[commit].parents) < 2]
    if plain:  # diff-tree --stdin: each against its parent, a root commit against nothing
        _parse_groups(_git(root, "diff-tree", "--stdin", "-r", "--no-renames", "--root", "-z", "--name-status",
                           "--ignore-submodules=none", stdin="".join(f"{c}\n" for c in plain).encode()), changes)
    for commit in unique:
        if len(info[commit].parents) > 1:
            changes[commit] = merge_changes(root, info[commit].tree, info[commit].parents)
    return info, changes


def merge_changes(root: Path, tree: str, parents: Sequence[str]) -> list[Change]:
    """What a merge of the commits `parents` whose result is `tree` changed itself (see `commit_changes`):
    where `tree` differs from git's own merge of two parents, else from any of the parents."""
    auto = _remerged_tree(root, *parents) if len(parents) == 2 else None
    if auto is not None:
        return _tree_changes(root, auto, tree)
    return _one_per_path([change for parent in parents for change in _tree_changes(root, parent, tree)])


def net_changes(root: Path, tip: str, target: str) -> list[Change]:
    """What `tip` changed since its merge base with `target` (`git diff target...tip`), renames as a deletion
    plus an addition. With several merge bases (criss-cross histories), what it changed since any of them;
    with none (unrelated histories), every file of `tip`."""
    for rev in (tip, target):
        if not rev or rev.startswith("-"):
            raise GitError(f"not a commit: {rev!r}")
    done = environment.run(root, "merge-base", "--all", target, tip, env=_ENV)
    if done.returncode not in (0, 1):
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git merge-base failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    bases = done.stdout.decode("ascii").split()
    if not bases:  # no common history: everything in the tip is new
        bases = [_git(root, "hash-object", "-t", "tree", "--stdin", stdin=b"").decode("ascii").strip()]
    return _one_per_path([change for base in bases for change in _tree_changes(root, base, tip)])


def net_violations(root: Path, rules: PathRules, tip: str, target: str) -> list[Violation]:
    """The paths `rules` forbid among those `tip` changed since its merge base with `target` (`net_changes`)."""
    return check_changes(rules, net_changes(root, tip, target))


def audit(root: Path, rules: PathRules, commits: Sequence[str]) -> list[CommitViolation]:
    """The commits (of `commits`, kept in their order) that change paths `rules` forbid, with each path."""
    info, changes = _changes(root, commits)
    found = {commit: tuple(check_changes(rules, paths)) for commit, paths in changes.items()}
    return [CommitViolation(commit, info[commit].subject, violations) for commit, violations in found.items()
            if violations]
