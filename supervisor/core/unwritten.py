"""Writes the disk refuses (full, read-only, failing), kept in memory in order until it takes them.

The store's connection runs every statement on its database file. When a transaction cannot be written there,
the connection copies the database into memory once and from then on runs everything there, keeping the
writes of each committed transaction in order; `flush` replays them on the file, transaction by transaction,
once it can be written again, and the connection goes back to the file. The engine is the file's only writer, so the
file is still what was copied, and the same statements replayed in the same order give the same rows and ids.

A transaction begun `durable` (a record that must exist before its side effect, like a new agent's before its
launch) is never kept in memory: it reaches the file or fails with `StoreUnwritable`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from supervisor.errors import SupervisorError

log = logging.getLogger(__name__)

# What a full disk, a read-only folder or a failing disk makes SQLite answer (the primary codes).
_FAULTS = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}


def is_write_fault(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _FAULTS


class StoreUnwritable(SupervisorError):
    """A record that must be on disk before anything happens could not be written: nothing happened."""


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any
    many: bool = False


@dataclass(frozen=True)
class Fault:
    error: str  # SQLite's words: "database or disk is full", "attempt to write a readonly database"
    since: float
    waiting: int  # transactions kept in memory


def _writes(sql: str) -> bool:
    head = sql.lstrip()[:6].upper()
    return head not in ("SELECT", "WITH") and not head.startswith("PRAGMA")


class FallbackConnection(sqlite3.Connection):
    """A connection to the store's file that falls back to an in-memory copy while the file cannot be written.

    Made by `sqlite3.connect(..., factory=FallbackConnection)`; the store begins, commits and rolls back
    through `begin`, `commit_writes` and `rollback_writes` (the caller serialises all use, as the store does
    under its lock)."""

    memory: sqlite3.Connection | None = None
    _error = ""
    _since = 0.0
    _waiting: deque[list[Statement]]
    _open: list[Statement] | None = None  # the writes of the open transaction
    _durable = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = deque()

    # the store's statements ---------------------------------------------------------------------------

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.memory is None and self._open is None:  # a read, or a write outside the store's transactions
            return super().execute(sql, parameters)
        return self._run(Statement(sql, parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return self._run(Statement(sql, list(parameters), many=True))  # listed: replayed later

    def _run(self, statement: Statement) -> sqlite3.Cursor:
        if self.memory is not None:
            cursor = _apply(self.memory, statement)
        else:
            try:
                cursor = _apply(self, statement, disk=True)
            except sqlite3.OperationalError as exc:
                if self._open is None or not is_write_fault(exc):
                    raise
                if self._durable:
                    raise self._unwritable(exc) from None
                self._to_memory(exc)
                assert self.memory is not None
                cursor = _apply(self.memory, statement)
        if self._open is not None and _writes(statement.sql):
            self._open.append(statement)
        return cursor

    def begin(self, durable: bool = False) -> None:
        """BEGIN IMMEDIATE. `durable`: this transaction reaches the file or fails (`StoreUnwritable`)."""
        if durable and self.memory is not None and not self.flush():
            raise self._unwritable(None)
        self._durable = durable
        if self.memory is not None:
            self.memory.execute("BEGIN IMMEDIATE")
            self._open = []
            return
        try:
            super().execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not is_write_fault(exc):
                raise
            if durable:
                raise self._unwritable(exc) from None
            self._to_memory(exc)
            assert self.memory is not None
            self.memory.execute("BEGIN IMMEDIATE")
        self._open = []

    def commit_writes(self) -> None:
        statements = self._open or []
        if self.memory is None:
            try:
                super().execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if not is_write_fault(exc):
                    raise
                if self._durable:
                    raise self._unwritable(exc) from None  # the store rolls it back
                self._to_memory(exc)
        if self.memory is not None:
            self.memory.execute("COMMIT")
            if statements:
                self._waiting.append(statements)
        self._open = None

    def rollback_writes(self) -> None:
        self._open = None
        with contextlib.suppress(sqlite3.OperationalError):  # SQLite may have rolled it back on the fault
            _apply(self.memory or self, Statement("ROLLBACK", ()), disk=self.memory is None)

    # the fallback ---------------------------------------------------------------------------------------

    def fault(self) -> Fault | None:
        """Why the file is not written now, since when, and how many transactions wait; None: it is."""
        if self.memory is None:
            return None
        return Fault(self._error, self._since, len(self._waiting))

    def flush(self) -> bool:
        """Write what waits in memory to the file, one transaction at a time in order (each dropped as it
        lands; the first the disk refuses ends the try, so a try on a still full disk costs one transaction),
        and go back to the file once none waits. True: nothing waits."""
        if self.memory is None:
            return True
        if self._open is not None:
            return False
        written = 0
        while self._waiting:
            try:
                super().execute("BEGIN IMMEDIATE")
                for statement in self._waiting[0]:
                    _apply(self, statement, disk=True)
                super().execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    super().execute("ROLLBACK")
                if is_write_fault(exc):
                    self._error = str(exc)
                    return False
                # Not the disk: the file is no longer what was copied (never so with one writer). The copy in
                # memory is what the engine holds true: it replaces the file's content.
                log.error("replaying the unwritten changes failed (%s); writing the store from memory instead", exc)
                try:
                    self.memory.backup(self)
                except sqlite3.Error as again:
                    self._error = str(again)
                    return False
                written += len(self._waiting)
                self._waiting.clear()
                break
            self._waiting.popleft()
            written += 1
        self.memory.close()
        self.memory = None
        log.warning("the store %s is written again: the %d change(s) kept in memory since %s are in it", self._path(),
                    written, time.strftime("%H:%M:%S", time.localtime(self._since)))
        return True

    def _to_memory(self, exc: sqlite3.OperationalError) -> None:
        """The file refused a write: roll it back there, copy the file into memory, and redo the open
        transaction's writes there."""
        with contextlib.suppress(sqlite3.Error):
            super().execute("ROLLBACK")
        memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.backup(memory)
        memory.execute("PRAGMA foreign_keys=ON")
        if self._open is not None:
            memory.execute("BEGIN IMMEDIATE")
            for statement in self._open:
                _apply(memory, statement)
        self.memory = memory
        self._error = str(exc)
        self._since = time.time()
        log.error("cannot write the store %s (%s): changes are kept in memory and written once it can",
                  self._path(), exc)

    def _unwritable(self, exc: sqlite3.OperationalError | None) -> StoreUnwritable:
        error = str(exc) if exc is not None else self._error
        return StoreUnwritable(f"the store cannot be written ({error})",
                               hint=f"free space or make {self._path()} writable, then try again")

    def _path(self) -> str:
        row = sqlite3.Connection.execute(self, "PRAGMA database_list").fetchone()
        return str(row[2]) if row else "?"


def _apply(db: sqlite3.Connection, statement: Statement, disk: bool = False) -> sqlite3.Cursor:
    """Run a statement on `db` (`disk`: the fallback connection's own file, not its memory copy)."""
    run = sqlite3.Connection.executemany if statement.many else sqlite3.Connection.execute
    if not disk:
        return db.executemany(statement.sql, statement.parameters) if statement.many else \
            db.execute(statement.sql, statement.parameters)
    return run(db, statement.sql, statement.parameters)
