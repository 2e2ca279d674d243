"""Everything an agent changed against its base: its commits, its uncommitted edits and its new files, as one
diff (its worktree against its base commit), whole or file by file.

`supervisor diff` prints it; the dashboard's diff view gets it file by file through the engine's `diff`
request. git runs as the engine runs it (`supervisor.git.environment`), since the worktree and its
configuration are the agent's. Nothing here changes the agent's worktree: new files are marked to be added in
a throwaway copy of its index.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supervisor.errors import SupervisorError
from supervisor.git import environment
from supervisor.git.environment import NO_DIFF_PROGRAMS, NOT_INTO_SUBMODULES

FILE_LINES_MAX = 4000  # lines of one file's diff sent to the dashboard; `supervisor diff` shows them all
TOTAL_LINES_MAX = 40000  # … and of all files together (a generated file must not flood the view)


def _git(cwd: Path, name: str, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
         errors: str = "replace") -> str:
    """git as the engine runs it (`supervisor.git.environment`: none of the programs an agent's configuration
    could name, a time limit, a sandboxed agent's own objects readable); its output, or why it failed."""
    try:
        done = environment.run(cwd, *args, stdin=stdin, env=env)
    except OSError as exc:
        raise SupervisorError(f"cannot show {name}'s changes: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["git failed"])[-1]
        raise SupervisorError(f"cannot show {name}'s changes: {detail}")
    return done.stdout.decode("utf-8", errors)


def agent_diff(root: Path, agent: dict[str, Any], *, stat: bool = False, colour: bool = False) -> str:
    """The agent's (a record as `show` gives it: name, base, branch, worktree) changes as one diff: its
    worktree against its base commit, new untracked files included. Without a worktree: its branch against
    its base. `stat`: git's summary of files and lines instead of the patch."""
    name, base, worktree = agent["name"], agent["base"], Path(agent["worktree"])
    diff = _diff_args(stat, colour)
    if not worktree.is_dir():
        return commits_diff(root, name, base, agent["branch"], stat=stat, colour=colour)
    index = _git(worktree, name, "rev-parse", "--path-format=absolute", "--git-path", "index").strip()
    with tempfile.TemporaryDirectory(prefix="supervisor-diff-") as scratch:
        copy = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if index and Path(index).exists():
            shutil.copyfile(index, copy["GIT_INDEX_FILE"])
        new = _git(worktree, name, "ls-files", "--others", "--exclude-standard", "-z", env=copy,
                   errors="surrogateescape")  # file names as their bytes, given back as they came
        if new:
            _git(worktree, name, "add", "--intent-to-add", "--pathspec-from-file=-", "--pathspec-file-nul",
                 stdin=new.encode("utf-8", "surrogateescape"), env=copy)
        return _git(worktree, name, *diff, base, "--", env=copy)


def _diff_args(stat: bool, colour: bool) -> tuple[str, ...]:
    # Names as they are (quoted only when they hold quotes or controls); no external diff, no textconv.
    return ("-c", "core.quotePath=false", "diff", f"--color={'always' if colour else 'never'}",
            "--stat" if stat else "--patch", *NO_DIFF_PROGRAMS, *NOT_INTO_SUBMODULES)


def commits_diff(root: Path, name: str, base: str, branch: str, *, stat: bool = False, colour: bool = False) -> str:
    """What the commits of `branch` (a branch, or a full ref: a remote agent's as fetched home) changed
    against `base`."""
    return _git(root, name, *_diff_args(stat, colour), base, branch, "--")


@dataclass
class FileDiff:
    """One file's part of a diff."""

    path: str  # the file as it is now (as it was, for a deleted one)
    status: str = "modified"  # added, deleted, renamed, modified
    old_path: str | None = None  # a renamed file's former path
    added: int = 0
    removed: int = 0
    binary: bool = False
    lines: list[str] = field(default_factory=list)  # its hunks (from the first @@), without git's header
    cut: int = 0  # lines left out past FILE_LINES_MAX (or the total)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(path: str) -> str:
    """A path as git's header writes it: `b/x.py`, or in double quotes with C escapes when unusual."""
    if len(path) >= 2 and path.startswith('"') and path.endswith('"'):
        raw, body, index = bytearray(), path[1:-1], 0
        while index < len(body):
            char = body[index]
            if char == "\\" and index + 1 < len(body):
                following = body[index + 1]
                if body[index + 1:index + 4].isdigit() and len(body[index + 1:index + 4]) == 3:
                    raw.append(int(body[index + 1:index + 4], 8) & 0xFF)
                    index += 4
                    continue
                raw.append(_ESCAPES.get(following, ord(following) if following.isascii() else 63))
                index += 2
                continue
            raw.extend(char.encode("utf-8"))
            index += 1
        path = raw.decode("utf-8", "replace")
    return path[2:] if path[:2] in ("a/", "b/") else path


def split_files(patch: str, *, file_lines: int = FILE_LINES_MAX, total_lines: int = TOTAL_LINES_MAX) -> list[FileDiff]:
    """A `git diff --patch` (without colours) as one FileDiff per file, in git's order."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    in_hunks = False
    kept = 0
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            current = FileDiff(path="")
            files.append(current)
            in_hunks = False
            names = line[len("diff --git "):]
            half = names.find(" b/") if not names.startswith('"') else names.find('" ') + 1
            if half > 0:
                current.old_path, current.path = _unquote(names[:half].strip()), _unquote(names[half + 1:].strip())
            continue
        if current is None:
            continue
        if not in_hunks:
            if line.startswith("new file mode"):
                current.status = "added"
            elif line.startswith("deleted file mode"):
                current.status = "deleted"
            elif line.startswith("rename to "):
                current.status, current.path = "renamed", line[len("rename to "):]
            elif line.startswith("rename from "):
                current.old_path = line[len("rename from "):]
            elif line[:4] in ("+++ ", "--- ") and line[4:] != "/dev/null" and \
                    (line[0] == "+" or current.status == "deleted"):
                current.path = _unquote(line[4:])
            elif line.startswith("Binary files "):
                current.binary = True
            elif line.startswith("@@"):
                in_hunks = True
            if not in_hunks:
                continue
        if line.startswith("+"):
            current.added += 1
        elif line.startswith("-"):
            current.removed += 1
        if len(current.lines) < file_lines and kept < total_lines:
            current.lines.append(line)
            kept += 1
        else:
            current.cut += 1
    for found in files:
        if found.status != "renamed" or found.old_path == found.path:
            found.old_path = None
    return files


def agent_files(root: Path, agent: dict[str, Any]) -> list[FileDiff]:
    """The agent's changes file by file (see `agent_diff`)."""
    return split_files(agent_diff(root, agent))
