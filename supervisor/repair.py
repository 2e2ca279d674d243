"""`supervisor doctor --repair`: a damaged store is moved aside (never deleted), what can be read of it is
carried into a new store (the event log first, then the agents and the other tables, row by row where
pages are broken), and the agents it lost are rebuilt from tmux and git. The engine must not be running."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.client import REPAIRING, take_engine_lock
from supervisor.core.schema import LATEST
from supervisor.core.store import Store
from supervisor.core.storecheck import StoreDamaged, StoreError, inspect, readonly
from supervisor.errors import SupervisorError
from supervisor.paths import RepoPaths

CHUNK = 512
# Carried over in this order (a delivery needs its alert); the event log first, as it matters most.
TABLES = ("events", "agents", "meta", "tasks", "approvals", "alerts", "alert_deliveries", "alert_attempts",
          "alert_threads", "alert_conditions", "alert_pending", "alert_silences", "agents_set_aside",
          "usage_records", "usage_files", "usage_context")


@dataclass
class Repaired:
    problem: str
    moved_to: list[Path] = field(default_factory=list)
    carried: dict[str, int] = field(default_factory=dict)  # table → rows carried over
    unreadable: dict[str, str] = field(default_factory=dict)  # table → what could not be read
    rebuilt: list[str] = field(default_factory=list)


def store_check(paths: RepoPaths) -> tuple[bool, str, str | None]:
    """For `supervisor doctor`: whether the store opens, what it is, and what to do when it does not."""
    try:
        found = inspect(paths.db_path, full=True)
    except StoreError as exc:
        return False, exc.message, exc.hint
    if found.empty:
        return True, f"{paths.db_path}: {found.empty} (a new one is made; running agents are re-adopted)", None
    note = "" if found.version == LATEST else f" (migrated to {LATEST} at the engine's next start)"
    return True, f"{paths.db_path}: sound, schema version {found.version}{note}", None


def repair(paths: RepoPaths) -> Repaired | None:
    """Repair the store if it needs it (None when it is sound). Raises a StoreTooNew as it is."""
    db = paths.db_path
    try:
        found = inspect(db, full=True)
    except StoreDamaged as exc:
        problem = exc.problem
    else:
        if found.empty is None:
            return None
        problem = f"the store was {found.empty}"
    paths.ensure_dirs()
    with _engine_lock(paths.engine_lock):
        return _repair(paths, db, problem)


@contextmanager
def _engine_lock(lock: Path) -> Iterator[None]:
    """Hold the engine's lock for the whole repair: an engine started meanwhile (by any command or a hook)
    would make a store of its own under the repair. Its file says who holds it, for an engine that waits."""
    with open(lock, "a") as handle:
        if not take_engine_lock(handle):
            raise SupervisorError("the engine is running",
                                  hint="`supervisor engine stop` first (the agents keep running)") from None
        try:
            os.ftruncate(handle.fileno(), 0)
            handle.write(f"{REPAIRING} {os.getpid()}\n")
            handle.flush()
            yield
        finally:
            os.ftruncate(handle.fileno(), 0)


def _repair(paths: RepoPaths, db: Path, problem: str) -> Repaired:
    result = Repaired(problem)
    broken = db.with_name(f"{db.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    if db.exists() and db.stat().st_size:
        for suffix in ("", "-wal", "-shm"):  # SQLite finds the moved file's WAL by the same suffix
            source = Path(f"{db}{suffix}")
            if source.exists():
                target = Path(f"{broken}{suffix}")
                source.rename(target)
                result.moved_to.append(target)
    store = Store(db)
    try:
        if result.moved_to:
            _carry_over(broken, store, result)
    finally:
        store.close()
    _rebuild(paths, result)
    return result


def _carry_over(broken: Path, store: Store, result: Repaired) -> None:
    try:
        source = readonly(broken)
        names = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        result.unreadable["*"] = f"its list of tables: {exc}"
        return
    try:
        for table in TABLES:
            if table in names:
                _carry_table(source, store, table, result)
    finally:
        source.close()


def _carry_table(source: sqlite3.Connection, store: Store, table: str, result: Repaired) -> None:
    with store.transaction() as db:
        wanted = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    try:
        present = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError as exc:
        result.unreadable[table] = str(exc)
        return
    columns = [name for name in wanted if name in present]
    listed = ", ".join(columns)
    insert = f"INSERT OR IGNORE INTO {table}({listed}) VALUES ({', '.join('?' * len(columns))})"
    carried = lost = 0
    with store.transaction() as db:
        for rows, missed in _readable(source, table, listed):
            lost += missed
            for row in rows:
                try:
                    db.execute(insert, row)
                    carried += 1
                except sqlite3.Error:  # e.g. a delivery whose alert was lost
                    lost += 1
    result.carried[table] = carried
    if lost:
        result.unreadable[table] = f"{lost} row(s) or range(s) could not be read"


def _readable(source: sqlite3.Connection, table: str, listed: str) -> Iterator[tuple[list[tuple[object, ...]], int]]:
    """The table's readable rows, a chunk of rowids at a time; a chunk that fails is split until the rows
    that cannot be read are found (each counted once as missed)."""
    try:
        top = int(source.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0] or 0)
    except sqlite3.DatabaseError:
        top = _top_from_sequence(source, table)
    query = f"SELECT {listed} FROM {table} WHERE rowid BETWEEN ? AND ? ORDER BY rowid"

    def chunk(low: int, high: int) -> Iterator[tuple[list[tuple[object, ...]], int]]:
        try:
            yield source.execute(query, (low, high)).fetchall(), 0
        except sqlite3.DatabaseError:
            if low == high:
                yield [], 1
                return
            middle = (low + high) // 2
            yield from chunk(low, middle)
            yield from chunk(middle + 1, high)

    for low in range(1, top + 1, CHUNK):
        yield from chunk(low, min(top, low + CHUNK - 1))


def _top_from_sequence(source: sqlite3.Connection, table: str) -> int:
    """The highest rowid ever given (AUTOINCREMENT tables) when the table itself cannot say."""
    try:
        row = source.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    except sqlite3.DatabaseError:
        return 0
    return int(row[0]) if row else 0


def _rebuild(paths: RepoPaths, result: Repaired) -> None:
    """Agents the carried-over records lack, from tmux (live panes) and git (worktrees, stopped)."""
    from supervisor.config import load_config
    from supervisor.engine.rebuild import rebuild_missing
    from supervisor.tmux.server import Tmux

    store = Store(paths.db_path)
    try:
        tmux = Tmux(paths.tmux_socket, paths.tmux_conf)
        result.rebuilt = rebuild_missing(store, paths, load_config(paths.root), tmux, include_stopped=True)
        store.append_event(None, "store_repaired", problem=result.problem, moved_to=[str(p) for p in result.moved_to],
                           carried=result.carried, unreadable=result.unreadable, rebuilt=result.rebuilt)
    finally:
        store.close()
