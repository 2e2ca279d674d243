"""What is found in a store file before it is opened for writing: nothing yet, a store of a version this code
knows, one of a newer version (refused, untouched), or a damaged file (refused, with what to do).

The checks read only: the file's first bytes, then a read-only SQLite connection (`user_version`, `PRAGMA
quick_check`), so a store that is refused is never changed.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from supervisor.core import schema
from supervisor.errors import SupervisorError

SQLITE_HEADER = b"SQLite format 3\x00"
REPAIR_HINT = ("the agents keep running; `supervisor doctor --repair` moves the file aside (it is kept), carries "
               "over what can be read of it (the event log first) and rebuilds the agents from tmux and git")


class StoreError(SupervisorError):
    """The store cannot be opened; the message names the file and the problem."""

    def __init__(self, path: Path, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.path = path


class StoreTooNew(StoreError):
    def __init__(self, path: Path, version: int) -> None:
        super().__init__(
            path,
            f"{path} is a store of schema version {version}, made by a newer supervisor; this one knows versions "
            f"up to {schema.LATEST}, so it left the file as it was",
            hint="upgrade supervisor (pip install -U supervisor) to use this repository's store")
        self.version = version


class StoreDamaged(StoreError):
    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(path, f"the store {path} is damaged: {problem}", hint=REPAIR_HINT)
        self.problem = problem


@dataclass(frozen=True)
class Found:
    """What the file holds: `version` 0 with `empty` set when there is no store in it yet."""

    version: int
    empty: str | None = None  # "missing" or "0 bytes": a new store is made (the agents are re-adopted)


def readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)


def inspect(path: Path, *, full: bool = False) -> Found:
    """Check the store at `path` without writing to it; raise StoreTooNew or StoreDamaged. `full` runs the
    slower `integrity_check` (doctor) instead of `quick_check` (every engine start)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return Found(0, "missing")
    except OSError as exc:
        raise StoreError(path, f"cannot read the store {path}: {exc.strerror or exc}") from None
    if not head:
        return Found(0, "0 bytes")
    if head != SQLITE_HEADER:
        raise StoreDamaged(path, f"it is not an SQLite database (it starts with {head[:8]!r})")
    try:
        db = readonly(path)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > schema.LATEST:
                raise StoreTooNew(path, version)
            rows = db.execute("PRAGMA integrity_check(20)" if full else "PRAGMA quick_check(20)").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StoreDamaged(path, str(exc)) from None
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StoreDamaged(path, f"integrity check: {problems[0]}{more}")
    return Found(version)
