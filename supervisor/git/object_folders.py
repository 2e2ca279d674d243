"""Each sandboxed agent's own object folder: where its git writes the objects it makes, the repository's shared
object store being read-only to it.

A sandbox shows the agent's folder at the repository's `objects/` (bound over it, read-write) and the shared
store, read-only, at `RepoPaths.shared_objects_view` (in the state folder, which the sandbox hides otherwise);
the folder's `info/alternates` names that view, so the agent's git reads both and writes into its own folder
only. No variable in the agent's environment says any of this, so there is nothing for it to unset: every git
it runs, its CLI's and its hooks' too, sees the same mounts.

The folders live in the state folder (`<git common dir>/supervisor/objects/<agent>/`), not in the worktree's own
git folder (`.git/worktrees/<id>/`): `git worktree remove` and `prune` delete that one with the worktree while
the branch, and the objects it needs, may outlive it; and the state folder is hidden in every sandbox, so no
agent sees another's folder.

Out here nothing lists these folders as alternates of the shared store: git would take an object it finds in an
agent's folder for one the repository has (and write no copy of its own), so main could come to need a file an
agent may rewrite. The engine's git reads them through GIT_ALTERNATE_OBJECT_DIRECTORIES instead
(`environment.run`), and the engine takes each agent's objects into the shared store, checked, as its branch
moves and before a merge (supervisor/git/taking_in.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from supervisor.files import write_atomically
from supervisor.paths import agents_objects_dir

ALTERNATES = Path("info") / "alternates"
VARIABLE = "GIT_ALTERNATE_OBJECT_DIRECTORIES"


def prepare(folder: Path, view: Path, shared: Path) -> None:
    """Make the agent's object folder (kept as it is when it exists) and the empty folder a sandbox shows the
    shared store at; (re)write the folder's alternates: that view, then the shared store's own alternates made
    absolute (a relative one would be read relative to the view)."""
    for path in (folder, folder / "pack", folder / "info", view):
        if path.is_symlink() or (path.exists() and not path.is_dir()):  # the agent may have left anything
            remove(path)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = [str(view)]
    try:
        own = (shared / ALTERNATES).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        own = ""
    for line in own.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append(line if os.path.isabs(line) else os.path.normpath(shared / line))
    target, text = folder / ALTERNATES, "\n".join(lines) + "\n"
    if target.is_symlink() or (target.exists() and not target.is_file()):
        remove(target)
    elif target.is_file() and target.read_text(encoding="utf-8", errors="surrogateescape") == text:
        return  # as it should be (a restart): nothing written
    write_atomically(target, text)


def listed(common_dir: Path) -> list[str]:
    """Every agent object folder of the repository whose git common dir is `common_dir` (no git run), sorted.
    Strings, not paths: every git the engine runs asks, and sorting a hundred `Path`s cost milliseconds."""
    try:
        entries = os.scandir(agents_objects_dir(common_dir))
    except OSError:
        return []
    with entries:
        return sorted(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))


def alternates(common_dir: Path, base: str | None = None) -> str | None:
    """GIT_ALTERNATE_OBJECT_DIRECTORIES for a git that must read every agent's objects: `base` (the variable
    as it was) and each agent folder; None when there is none to add."""
    folders = listed(common_dir)
    if not folders:
        return base
    return os.pathsep.join([*([base] if base else []), *folders])


def remove(path: Path) -> None:
    """Remove an agent's object folder (or anything at its place), whatever the agent left in it."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()
