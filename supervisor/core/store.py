"""The engine's durable state in SQLite (WAL): agents and an append-only event log.

Every change that must survive the engine being killed goes through here first. The store is used from the
engine's request threads and its watch loop, so every operation holds one lock around a short transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from supervisor.core.model import Agent, Event, State
from supervisor.errors import UsageError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    agent TEXT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_agent ON events(agent, id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_AGENT_FIELDS = [f.name for f in fields(Agent)]


def _agent_to_json(agent: Agent) -> str:
    data = {name: getattr(agent, name) for name in _AGENT_FIELDS}
    data["state"] = str(agent.state)
    return json.dumps(data, sort_keys=True)


def _agent_from_json(text: str) -> Agent:
    data = json.loads(text)
    data = {key: value for key, value in data.items() if key in _AGENT_FIELDS}
    data["state"] = State(data["state"])
    return Agent(**data)


class NameTaken(UsageError):
    pass


def _gist(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in ("trigger", "active", "hook_event_name", "state") if key in data}


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._appended = threading.Condition(self._lock)  # notified on every new event
        self._last_event = 0
        # Each agent's version: the store-wide write count at its last write through this Store (the only
        # writer is the engine's); 0 for records that were already there.
        self._versions: dict[str, int] = {}
        self._writes = 0
        self._depth = 0  # transactions open on the holding thread (the outermost one commits)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        path.chmod(0o600)
        self._last_event = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        # Each agent's newest event, kept as events are written (`ls` shows it for every agent, every call).
        self._newest: dict[str, tuple[str, float, dict[str, Any]]] = {}
        self._pending: dict[str, tuple[str, float, dict[str, Any]]] = {}  # written in the open transaction
        rows = self._db.execute(
            "SELECT agent, kind, ts, data FROM events WHERE id IN "
            "(SELECT MAX(id) FROM events WHERE agent IS NOT NULL GROUP BY agent)").fetchall()
        for agent, kind, ts, data in rows:
            self._newest[agent] = (kind, ts, _gist(json.loads(data)))
        self._versions = {row[0]: 0 for row in self._db.execute("SELECT name FROM agents")}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction. Nested in another (same thread), it is part of the outer one and commits or
        rolls back with it: writes that belong together, like a state and the trigger it fires, are read
        together or not at all."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            before = self._last_event
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                self._last_event = before
                raise
            finally:
                self._depth = 0
                pending, self._pending = self._pending, {}
            self._db.execute("COMMIT")
            self._newest.update(pending)
            if self._last_event != before:  # waiters only care for new events
                self._appended.notify_all()

    # agents -------------------------------------------------------------------------------------------

    def add_agent(self, agent: Agent) -> None:
        """Insert a new agent; the name must be free (atomic: two starts of one name cannot both win)."""
        with self.transaction() as db:
            try:
                db.execute("INSERT INTO agents(name, data) VALUES (?, ?)", (agent.name, _agent_to_json(agent)))
            except sqlite3.IntegrityError:
                raise NameTaken(
                    f"an agent named {agent.name!r} already exists",
                    hint=f"pick another name, or `supervisor rm {agent.name}` first",
                ) from None
            self._append(db, agent.name, "created", {"command": agent.command, "task": agent.task})
            self._bump(agent.name)

    def save_agent(self, agent: Agent, event: str | None = None, **data: Any) -> None:
        """Write the agent's record, and with `event` append that event in the same transaction."""
        with self.transaction() as db:
            db.execute("UPDATE agents SET data = ? WHERE name = ?", (_agent_to_json(agent), agent.name))
            self._bump(agent.name)
            if event is not None:
                self._append(db, agent.name, event, data)

    def get_agent(self, name: str) -> Agent | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM agents WHERE name = ?", (name,)).fetchone()
        return _agent_from_json(row[0]) if row else None

    def agents(self) -> list[Agent]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM agents ORDER BY name").fetchall()
        return [_agent_from_json(row[0]) for row in rows]

    def versions(self) -> dict[str, int]:
        """Every agent's name and version: a version still equal means the record has not been written
        since (by this Store, the only writer: the engine's), so a reader may keep what it decoded."""
        with self._lock:
            return dict(self._versions)

    def get_agents(self, names: list[str]) -> tuple[list[Agent], dict[str, int]]:
        """The named agents (those that exist), and their versions as read."""
        found: list[Agent] = []
        with self._lock:
            for start in range(0, len(names), 500):
                chunk = names[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT data FROM agents WHERE name IN ({marks})", chunk).fetchall()
                found += [_agent_from_json(row[0]) for row in rows]
            versions = {agent.name: self._versions.get(agent.name, 0) for agent in found}
        return found, versions

    def version(self, name: str) -> int:
        with self._lock:
            return self._versions.get(name, 0)

    def _bump(self, name: str) -> None:
        self._writes += 1
        self._versions[name] = self._writes

    def delete_agent(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM agents WHERE name = ?", (name,))
            self._append(db, name, "removed", {})
            self._writes += 1
            self._versions.pop(name, None)

    # events -------------------------------------------------------------------------------------------

    def append_event(self, agent: str | None, kind: str, **data: Any) -> int:
        with self.transaction() as db:
            return self._append(db, agent, kind, data)

    def _append(self, db: sqlite3.Connection, agent: str | None, kind: str, data: dict[str, Any]) -> int:
        ts = time.time()
        cursor = db.execute(
            "INSERT INTO events(ts, agent, kind, data) VALUES (?, ?, ?, ?)",
            (ts, agent, kind, json.dumps(data, sort_keys=True, default=str)),
        )
        assert cursor.lastrowid is not None
        self._last_event = cursor.lastrowid
        if agent is not None:
            self._pending[agent] = (kind, ts, _gist(data))
        return cursor.lastrowid

    def newest_event(self, agent: str) -> tuple[str, float, dict[str, Any]] | None:
        """The agent's newest event: its kind, time, and what it was about (trigger, hook, state)."""
        with self._lock:
            return self._newest.get(agent)

    @property
    def last_event_id(self) -> int:
        return self._last_event

    def wait_for_events(self, after: int, timeout: float) -> int:
        """Block until an event newer than `after` is committed (or `timeout`); the newest event id."""
        with self._appended:
            self._appended.wait_for(lambda: self._last_event > after, timeout=timeout)
            return self._last_event

    def events(self, agent: str | None = None, after: int = 0, limit: int = 100) -> list[Event]:
        """The newest `limit` events after id `after` (of one agent, or all), oldest first."""
        query = "SELECT id, ts, agent, kind, data FROM events WHERE id > ?"
        args: list[Any] = [after]
        if agent is not None:
            query += " AND agent = ?"
            args.append(agent)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [Event(row[0], row[1], row[2], row[3], json.loads(row[4])) for row in reversed(rows)]

    def recent_event_data(self, kind: str, since: float) -> list[dict[str, Any]]:
        """What events of `kind` recorded since the time `since` hold, newest first. Read from the newest event
        back, stopping at the first older than `since`: what came before costs nothing."""
        found: list[dict[str, Any]] = []
        with self._lock:
            cursor = self._db.execute("SELECT ts, kind, data FROM events ORDER BY id DESC")
            for ts, row_kind, data in cursor:
                if ts < since:
                    break
                if row_kind == kind:
                    found.append(json.loads(data))
            cursor.close()
        return found

    # meta ---------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
