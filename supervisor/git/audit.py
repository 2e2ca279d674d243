"""The commit audit: which commits of an agent branch change paths its contract forbids.

Git hooks are advice: an agent can pass `--no-verify`, `-c core.hooksPath=`, or commit with plumbing
(`commit-tree` + `update-ref`). This audit reads the commits themselves, so it is the real check. The engine
runs it on every new commit of every agent branch:

    tips = branch_tips(root)                                   # one git process for all agents
    commits = new_commits(root, tips[branch], [last_audited, target])
    for found in audit(root, rules, commits): ...              # one (two with violations) git processes

A merge commit is judged by what it changed itself: the paths that differ from every parent (conflict
resolutions, "evil" edits). What a merge brings in from one side is the business of that side's commits,
which are audited on their own unless they belong to the branch the agent merges into.

Git runs with replace refs and grafts disabled, so an agent cannot make a commit look like another one.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from supervisor.core.pathrules import PathRules, Violation, check_changes
from supervisor.git.environment import git_env
from supervisor.git.worktrees import GitError

__all__ = ["CommitViolation", "audit", "branch_tips", "commit_changes", "new_commits"]

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


def _env() -> Mapping[str, str]:
    env = git_env()
    env["GIT_NO_REPLACE_OBJECTS"] = "1"  # `git replace` could show the audit a harmless stand-in commit
    env["GIT_GRAFT_FILE"] = os.devnull  # info/grafts could re-parent a commit (not covered by the above)
    env["LC_ALL"] = "C"
    return env


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run git in `root` and return its raw stdout; GitError with git's message on failure."""
    done = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, env=_env(), check=False)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def _text(raw: bytes) -> str:
    """A path or name from git's -z output: UTF-8, undecodable bytes kept as surrogates (round-trips)."""
    return raw.decode("utf-8", "surrogateescape")


def branch_tips(root: Path, prefix: str = "refs/heads/agent/") -> dict[str, str]:
    """Branch short name (`agent/auth.test`) → tip commit for every ref under `prefix`, in one git process."""
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


def commit_changes(root: Path, commits: Sequence[str]) -> dict[str, list[Change]]:
    """The paths each commit (a full commit id) changed, as (status letter, path, None), in one git process.

    `--no-renames` makes a rename a deletion plus an addition, so both sides are checked. A root commit lists
    all its files. A merge lists only the paths that differ from every parent: that is exactly what the
    combined format (`-c`) reports, with one status letter per parent (the first one, against the first
    parent, is kept). (`-m` would print one group per parent but skip the header of an empty group, so a
    merge that equals one parent could not be told apart without its parent count.) `--always` prints a
    header for every commit, even one with no changes: the output is <oid> NUL (<status> NUL <path> NUL)*
    per commit, in input order.
    """
    unique = list(dict.fromkeys(commits))
    bad = [commit for commit in unique if not _OID.fullmatch(commit.encode())]
    if bad:  # diff-tree --stdin echoes a line it cannot parse as an object id, which would garble the output
        raise GitError(f"not a full commit id: {bad[0]!r}")
    changes: dict[str, list[Change]] = {}
    if not unique:
        return changes
    out = _git(root, "diff-tree", "--stdin", "-r", "--no-renames", "--root", "-c", "--always", "-z",
               "--name-status", "--ignore-submodules=none", stdin="".join(f"{c}\n" for c in unique).encode())
    tokens = out.split(b"\0")
    if tokens and tokens[-1] == b"":
        tokens.pop()
    current: list[Change] | None = None
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if _OID.fullmatch(token):  # a commit header; statuses are letters, so this is never ambiguous
            current = changes.setdefault(token.decode("ascii"), [])
            position += 1
            continue
        if current is None or position + 1 >= len(tokens):
            raise GitError(f"git diff-tree: unexpected output near {token[:80]!r}")
        current.append((token[:1].decode("ascii"), _text(tokens[position + 1]), None))
        position += 2
    missing = [commit for commit in unique if commit not in changes]
    if missing:  # git says "error: ... not a commit" but exits 0 and prints nothing for it
        raise GitError(f"unknown commit {missing[0]}")
    return {commit: changes[commit] for commit in unique}


def _subjects(root: Path, commits: Sequence[str]) -> dict[str, str]:
    """The first line of each commit's message, from one `cat-file --batch` (length-framed, so robust)."""
    out = _git(root, "cat-file", "--batch", stdin="".join(f"{c}\n" for c in commits).encode())
    subjects: dict[str, str] = {}
    position = 0
    for commit in commits:
        header_end = out.index(b"\n", position)
        fields = out[position:header_end].split()
        position = header_end + 1
        if len(fields) != 3:  # "<rev> missing" or similar
            subjects[commit] = ""
            continue
        size = int(fields[2])
        body = out[position : position + size]
        position += size + 1
        _, _, message = body.partition(b"\n\n")
        subjects[commit] = message.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return subjects


def audit(root: Path, rules: PathRules, commits: Sequence[str]) -> list[CommitViolation]:
    """The commits (of `commits`, kept in their order) that change paths `rules` forbid, with each path."""
    changes = commit_changes(root, commits)
    found = {commit: tuple(check_changes(rules, paths)) for commit, paths in changes.items()}
    bad = [commit for commit, violations in found.items() if violations]
    if not bad:
        return []
    subjects = _subjects(root, bad)
    return [CommitViolation(commit, subjects[commit], found[commit]) for commit in bad]
