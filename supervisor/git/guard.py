"""The pre-commit boundary guard of agent worktrees: installing it, and the check its hook runs.

Each agent worktree gets `core.hooksPath` in its own config (`git config --worktree`) pointing at
supervisor's hooks folder, so the main worktree and the user's other worktrees keep their hooks. In that
folder `pre-commit` and `pre-merge-commit` run `supervisor guard` (`main` below) and then the repository's
own hook of that name; every other hook name forwards to the repository's own hook (see `hooks/forward`).

The hook is advice to the agent, not enforcement (`--no-verify` skips it): the engine audits every commit.
`main` runs on every commit, so this module imports only what the check needs: GitPython (through
`supervisor.git.worktrees`) is imported by `install_guard`, and by the audit a merge is checked with.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from supervisor.core.contract import parse_contract
from supervisor.core.pathrules import PathRules, Violation, check_changes
from supervisor.errors import SupervisorError, UsageError
from supervisor.files import write_atomically
from supervisor.git import contract_file
from supervisor.paths import RepoPaths

__all__ = ["FORWARDED_HOOKS", "GUARD_HOOK", "GUARD_HOOKS", "install_guard", "main", "refusal", "write_hooks"]

GUARD_HOOK = "pre-commit"
GUARD_HOOKS = (GUARD_HOOK, "pre-merge-commit")
"""The hooks that run the guard (then the repository's own hook of that name): a commit, and the commit
`git merge` makes by itself when nothing conflicts."""

FORWARDED_HOOKS = (
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-rebase",
    "post-checkout",
    "post-merge",
    "pre-push",
    "pre-receive",
    "update",
    "proc-receive",
    "post-receive",
    "post-update",
    "reference-transaction",
    "push-to-checkout",
    "pre-auto-gc",
    "post-rewrite",
    "sendemail-validate",
    "fsmonitor-watchman",
    "p4-changelist",
    "p4-prepare-changelist",
    "p4-post-changelist",
    "p4-pre-submit",
    "post-index-change",
)
"""Every other hook name of githooks(5): each forwards to the repository's own hook of that name."""

_PYTHON_PLACEHOLDER = "@PYTHON@"
_HOOK_MODE = 0o755
_CONTRACT_NAME = "SESSION.md"


# ---------------------------------------------------------------------------------------------------------
# Installing


def install_guard(common_dir: Path, worktree: Path, hooks_dir: Path, python: str = sys.executable) -> None:
    """Guard commits in `worktree`: write supervisor's hooks into `hooks_dir` (shared by all agent
    worktrees) and point that worktree's own `core.hooksPath` at it. Idempotent.

    Per-worktree config needs `extensions.worktreeConfig` in the repository's shared config; git honours
    it in repositoryformatversion 0 repositories too, and without it `config --worktree` refuses to run.
    """
    from supervisor.git.worktrees import GitError, run_git

    hooks_dir = hooks_dir.absolute()
    shared_config = str(common_dir / "config")
    try:
        enabled = run_git(worktree, "config", "--file", shared_config, "--type=bool", "--get",
                          "extensions.worktreeConfig")
    except GitError:
        enabled = ""  # unset
    if enabled != "true":
        run_git(worktree, "config", "--file", shared_config, "extensions.worktreeConfig", "true")
    write_hooks(hooks_dir, python)
    try:
        current = run_git(worktree, "config", "--worktree", "--get-all", "core.hooksPath")
    except GitError:
        current = ""  # unset
    if current != str(hooks_dir):
        run_git(worktree, "config", "--worktree", "--replace-all", "core.hooksPath", str(hooks_dir))


def write_hooks(hooks_dir: Path, python: str = sys.executable) -> None:
    """Write the shipped hook scripts into `hooks_dir`: the guard as pre-commit and pre-merge-commit (running
    `python`), the forwarder under every other hook name. Each file is replaced atomically, and only when it
    differs."""
    from supervisor.resources import data_dir

    if not python:
        raise SupervisorError("cannot install the commit guard: no Python interpreter path")
    shipped = data_dir("hooks")
    guard = (shipped / GUARD_HOOK).read_text(encoding="utf-8")
    if _PYTHON_PLACEHOLDER not in guard:
        raise SupervisorError(f"{shipped / GUARD_HOOK} has no {_PYTHON_PLACEHOLDER} to substitute")
    forward = (shipped / "forward").read_bytes()
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name in GUARD_HOOKS:
        _write_if_changed(hooks_dir / name, guard.replace(_PYTHON_PLACEHOLDER, shlex.quote(python)).encode())
    for name in FORWARDED_HOOKS:
        _write_if_changed(hooks_dir / name, forward)


def _write_if_changed(path: Path, content: bytes) -> None:
    try:
        if path.read_bytes() == content:
            if stat.S_IMODE(path.stat().st_mode) != _HOOK_MODE:
                path.chmod(_HOOK_MODE)
            return
    except FileNotFoundError:
        pass
    write_atomically(path, content, mode=_HOOK_MODE)


# ---------------------------------------------------------------------------------------------------------
# Checking (what the pre-commit hook runs)


def main(cwd: Path) -> int:
    """Check the staged changes of the worktree containing `cwd` against its agent's contract.

    0 when they are allowed, or in the repository's main worktree (the human's own); 1 (with the reasons on
    stderr) otherwise. The contract is the one the engine wrote into the agent's runtime folder
    (`supervisor.git.contract_file`), never the SESSION.md in the worktree, which the agent can edit. A
    worktree with no such contract is refused with one line, unless the store (readable outside a sandbox)
    says no agent has it. A problem reading any of it raises SupervisorError: refused rather than let through.

    A merge (`git merge` committing by itself, or a `git commit` concluding one) is checked as the audit
    will check it: the paths where the staged result differs from git's own merge of its parents, and the
    commits it brings in that are not already on the branch the agent merges into. So merging that branch
    passes, whatever it changed; merging other work that changes forbidden paths does not.
    """
    top_text, common_text, git_dir_text = os.fsdecode(
        _git(cwd, "rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir", "--git-dir")
    ).split("\n")[:3]
    if os.path.realpath(git_dir_text) == os.path.realpath(common_text):
        return 0  # the main worktree: the human's own commits
    top = Path(top_text)
    paths = RepoPaths(root=top, common_dir=Path(common_text).resolve())  # where the engine keeps its files
    record = contract_file.find(top, paths.runtime_dir, os.environ.get("SUPERVISOR_SOCKET"))
    if record is None:
        if not paths.sandbox_mark.exists() and _agent_of_worktree(paths.db_path, top) is None:
            return 0  # a worktree of yours the store gives no agent
        raise SupervisorError(
            f"commit refused: the engine has written no contract for this worktree ({top}); an agent's commits "
            "are checked against the contract the engine keeps: `supervisor ls` starts the engine, which writes it")
    name = str(record.get("name"))
    if record.get("refused"):
        raise SupervisorError(f"commit refused: {name}: {record['refused']}")
    text = record.get("contract")
    if not isinstance(text, str):
        raise SupervisorError(f"commit refused: no contract is stored for agent {name}")
    target = record.get("target") if isinstance(record.get("target"), str) and record.get("target") else None
    try:
        contract = parse_contract(text, _CONTRACT_NAME)
    except UsageError as exc:
        raise SupervisorError(f"commit refused: the stored contract of {name} is invalid: {exc.message}") from None
    rules = contract.rules()
    heads = _merge_heads(top)
    brought: list[tuple[str, str, list[Violation]]] = []
    if heads:
        changes, brought = _merge_check(top, rules, heads, target)
    else:
        # --no-renames: a rename is a deletion plus an addition, so its source is checked too. On an unborn
        # branch (an orphan's first commit) `diff --cached` compares with the empty tree by itself.
        raw = _git(top, "diff", "--cached", "--name-status", "-z", "--no-renames", "--no-color", "--no-ext-diff",
                   "--ignore-submodules=none")
        changes = _name_status(raw)
    message = refusal(name, text, rules, changes, brought, merging=bool(heads), target=target)
    if message is None:
        return 0
    # Paths print byte for byte as git gave them, whatever the locale's encoding.
    sys.stderr.flush()
    sys.stderr.buffer.write(message.encode("utf-8", "surrogateescape"))
    sys.stderr.buffer.flush()
    return 1


def refusal(name: str, text: str, rules: PathRules, changes: list[tuple[str, str, str | None]],
            brought: list[tuple[str, str, list[Violation]]], *, merging: bool, target: str | None) -> str | None:
    """What the guard says when agent `name`'s commit (or merge) changes paths its contract (`text`, read as
    `rules`) does not allow; None when it allows them all. `brought`: the commits a merge brings in, with what
    each changes that the rules refuse. Also the engine's word on a commit on a host (the host client sends
    the staged changes home)."""
    violations = check_changes(rules, changes)
    everything = [*violations, *(v for _, _, found in brought for v in found)]
    if not everything:
        return None
    dont_touch_only = PathRules(["**"], rules.dont_touch)
    by_dont_touch = any(not dont_touch_only.allows(v.path) for v in everything)
    outside_modify = any(dont_touch_only.allows(v.path) for v in everything)
    key_lines = _key_lines(text)
    what = "merge" if merging else "commit"
    lines = [f"supervisor: {what} refused: {name} may not change these paths (its contract: {_CONTRACT_NAME})"]
    lines += [f"  {v.status:<2} {v.path} — {v.reason}" for v in violations]
    if brought:
        lines.append(f"Commits this merge would bring in (not on {target}) change them too:")
        for commit, subject, found_here in brought:
            lines.append(f"  {commit[:12]} {subject}")
            lines += [f"    {v.status:<2} {v.path} — {v.reason}" for v in found_here]
    wanted = (["modify"] if outside_modify else []) + (["don't touch"] if by_dont_touch else [])
    cited = [key_lines[key] for key in wanted if key in key_lines]
    if cited:
        lines.append("The contract lines that forbid them:")
        lines += [f"  {_CONTRACT_NAME}:{number}: {line}" for number, line in cited]
    if merging:
        lines.append("Undo the merge (git merge --abort), or ask for a role that allows them.")
    else:
        lines.append("Unstage them (git restore --staged PATH) or ask for a role that allows them.")
    return "\n".join(lines) + "\n"


_GITHEAD = re.compile(r"GITHEAD_([0-9a-f]{40}|[0-9a-f]{64})")


def _merge_heads(top: Path) -> list[str]:
    """The commits being merged into HEAD: MERGE_HEAD when a `git commit` concludes a merge; during
    `git merge`'s own pre-merge-commit, which runs before MERGE_HEAD is written, the GITHEAD_<id>
    variables git sets for each of them. None: an ordinary commit."""
    merge_head = Path(os.fsdecode(_git(top, "rev-parse", "--git-path", "MERGE_HEAD").rstrip(b"\n")))
    try:
        return (merge_head if merge_head.is_absolute() else top / merge_head).read_text().split()
    except FileNotFoundError:
        pass
    return sorted(match.group(1) for key in os.environ if (match := _GITHEAD.fullmatch(key)))


def _merge_check(top: Path, rules: PathRules, heads: list[str], target: str | None
                 ) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str, list[Violation]]]]:
    """A merge's own changes (staged result against git's merge of HEAD and `heads`), and the commits it
    brings in that are on neither HEAD nor `target`, with what the rules refuse in each. Imported here:
    only a merge pays for the audit's imports."""
    from supervisor.git.audit import audit, merge_changes, new_commits

    head = _git(top, "rev-parse", "--verify", "HEAD").decode("ascii").strip()
    tree = _git(top, "write-tree").decode("ascii").strip()  # the staged result, as the commit will have it
    commits = list(dict.fromkeys(c for merged in heads for c in new_commits(top, merged, [head, target or ""])))
    brought = [(v.commit, v.subject, list(v.violations)) for v in audit(top, rules, commits)]
    return merge_changes(top, tree, [head, *heads]), brought


def _git(cwd: Path, *args: str) -> bytes:
    """git's raw stdout. Through subprocess, not GitPython: importing it would slow every commit."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise SupervisorError("git is not installed") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        raise SupervisorError(f"git {args[0]} failed: {detail or f'exit status {done.returncode}'}")
    return done.stdout


def _agent_of_worktree(db_path: Path, top: Path) -> str | None:
    """The name of the agent whose worktree is `top` in the store; None if no agent has it (or there is no
    store yet).

    Reads the store read-only rather than through `Store`, which creates its schema (a write that would
    wait for the engine's lock). Only the record's `name` and `worktree` are read.
    """
    if not db_path.exists():
        return None
    wanted = os.path.realpath(top)
    try:
        db = sqlite3.connect(db_path.absolute().as_uri() + "?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise SupervisorError(f"commit refused: cannot read {db_path}: {exc}") from None
    try:
        rows = db.execute("SELECT data FROM agents ORDER BY name").fetchall()
    except sqlite3.OperationalError as exc:
        if str(exc).startswith("no such table"):
            return None  # a store being created: no agent yet
        raise SupervisorError(f"commit refused: cannot read {db_path}: {exc}") from None
    except sqlite3.Error as exc:
        raise SupervisorError(f"commit refused: cannot read {db_path}: {exc}") from None
    finally:
        db.close()
    for (data,) in rows:
        record = json.loads(data)
        worktree = record.get("worktree")
        if isinstance(worktree, str) and worktree and os.path.realpath(worktree) == wanted:
            return str(record.get("name"))
    return None


def _name_status(raw: bytes) -> list[tuple[str, str, str | None]]:
    """(status, path, old path or None) from `git diff --name-status -z`; paths decoded as UTF-8 with
    surrogateescape, so any byte sequence survives. Renames and copies are read even though --no-renames
    means they should not come."""
    fields = raw.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    changes: list[tuple[str, str, str | None]] = []
    index = 0
    while index < len(fields):
        status = fields[index].decode("ascii", "replace")
        if status[:1] in ("R", "C") and index + 2 < len(fields):
            changes.append((status, _decode(fields[index + 2]), _decode(fields[index + 1])))
            index += 3
        elif index + 1 < len(fields):
            changes.append((status, _decode(fields[index + 1]), None))
            index += 2
        else:
            raise SupervisorError(f"commit refused: unexpected output of git diff: {raw[:200]!r}")
    return changes


def _decode(path: bytes) -> str:
    return path.decode("utf-8", "surrogateescape")


_HEADER = re.compile(r"^#+(?:[ \t]+(.*))?$")
_ITEM = re.compile(r"^[ \t]*[-*+][ \t]+([^:]*):")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})


def _normalised(text: str) -> str:
    return " ".join(text.translate(_APOSTROPHES).lower().split())


def _key_lines(text: str) -> dict[str, tuple[int, str]]:
    """The Modify and Don't touch items of SESSION.md `text`: normalised key → (line number, line).

    Lines are numbered as `parse_contract` numbers them (split on newlines only), skipping HTML comments.
    """
    found: dict[str, tuple[int, str]] = {}
    section = ""
    for number, line in _numbered_lines(text):
        stripped = line.strip(" \t")
        header = _HEADER.match(stripped)
        if header:
            section = _normalised((header.group(1) or "").rstrip("#").rstrip(":"))
            continue
        item = _ITEM.match(line)
        if item and section == "what this session can do":
            key = _normalised(item.group(1))
            if key in ("modify", "don't touch"):
                found.setdefault(key, (number, stripped))
    return found


def _numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    in_comment = False
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = line.removesuffix("\r")
        stripped = line.strip(" \t")
        if in_comment:
            in_comment = "-->" not in line
            continue
        if stripped.startswith("<!--"):
            in_comment = "-->" not in stripped[4:]
            continue
        yield number, line
