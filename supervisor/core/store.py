"""The engine's durable state in SQLite (WAL): agents and an append-only event log.

Every change that must survive the engine being killed goes through here first. The store is used from the
engine's request threads and its watch loop, so every operation holds one lock around a short transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from supervisor.core import schema
from supervisor.core.model import Agent, Event, State
from supervisor.core.notices import Bell, EventBell, EventWanted, Notices, RecordKey
from supervisor.core.storecheck import Found, StoreDamaged, inspect
from supervisor.core.unwritten import FallbackConnection, Fault, StoreUnwritable
from supervisor.errors import UsageError

log = logging.getLogger(__name__)
SCHEMA_VERSION = schema.LATEST

_AGENT_FIELDS = [f.name for f in fields(Agent)]


def _agent_to_json(agent: Agent) -> str:
    data = {name: getattr(agent, name) for name in _AGENT_FIELDS}
    data["state"] = str(agent.state)
    data["last_state"] = None if agent.last_state is None else str(agent.last_state)
    return json.dumps(data, sort_keys=True)


def _agent_from_json(text: str) -> Agent:
    data = json.loads(text)
    data = {key: value for key, value in data.items() if key in _AGENT_FIELDS}
    data["state"] = State(data["state"])
    if data.get("last_state") is not None:
        data["last_state"] = State(data["last_state"])
    return Agent(**data)


class NameTaken(UsageError):
    pass


def _event_data(text: str) -> dict[str, Any]:
    """An event's data; one that does not decode is shown as such rather than failing every reader."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return {"undecodable": str(text)[:200]}
    return data if isinstance(data, dict) else {"undecodable": str(text)[:200]}


@dataclass(frozen=True)
class SetAside:
    """An agent record that did not decode at open: moved to `agents_set_aside`, its name free again."""

    name: str
    error: str


# What an agent's newest event keeps for `ls` and `show` (`last_event`): the fields its sentence is made of
# (supervisor.core.eventtext), each string cut short; the whole event stays in the log.
_GIST_KEYS = ("trigger", "active", "since", "summary", "hook_event_name", "state", "previous", "reason", "alert",
              "subject", "triggers", "channel", "channels", "to", "status", "attempts", "error", "by", "request")
_GIST_TEXT = 200  # characters of a string field kept
_GIST_ITEMS = 8  # items of a list field kept


def _gist(data: dict[str, Any]) -> dict[str, Any]:
    gist: dict[str, Any] = {}
    for key in _GIST_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            value = value[:_GIST_TEXT]
        elif isinstance(value, list):
            value = [item[:_GIST_TEXT] if isinstance(item, str) else item for item in value[:_GIST_ITEMS]
                     if isinstance(item, str | int | float)]
        elif not isinstance(value, bool | int | float):
            continue
        gist[key] = value
    return gist


class Store:
    """Opening checks the file first (storecheck.inspect: a newer or damaged store is refused untouched),
    migrates an older one forward, and sets aside agent records that do not decode. `found` says what was
    there (`found.empty` for a missing or 0-byte file), `migrated` the versions when a migration ran,
    `set_aside` the records set aside by this open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.found: Found = inspect(path)
        self.migrated: tuple[int, int] | None = None
        self.set_aside: list[SetAside] = []
        self._lock = threading.RLock()
        self._appended = threading.Condition(self._lock)  # notified on every new event
        # Bumped by every transaction that wrote an event or a record, and by `touch` (a change the store does
        # not hold, like a moved ref): services wait on it with their next deadline instead of polling.
        self._changed = threading.Condition(self._lock)
        self._changes = 0
        self._published = 0  # the change count as waiters see it (a thread holding its notices holds it back)
        self._holding: dict[int, int] = {}  # threads that hold their notices back → owed: 0 none, 1 a change, 2 events
        self._last_event = 0
        # Each agent's version: the store-wide write count at its last write through this Store (the only
        # writer is the engine's); 0 for records that were already there.
        self._versions: dict[str, int] = {}
        self._writes = 0
        self._record_bells: list[Callable[[], None]] = []  # called when a transaction wrote agent records
        self._notices = Notices()  # listeners told of the events and record changes they want only
        self._depth = 0  # transactions open on the holding thread (the outermost one commits)
        # While the file cannot be written (a full disk), the connection keeps the changes in memory.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30,
                                   factory=FallbackConnection)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if 0 < self.found.version < schema.LATEST:
                self._keep_copy(path.with_name(f"{path.name}.v{self.found.version}"))
            before, after = schema.migrate(self._db)
        except sqlite3.OperationalError:  # not the file's fault (a full disk, a read-only folder): as it is
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:  # what the checks could not see, e.g. a WAL beside an empty file
            self._db.close()
            raise StoreDamaged(path, str(exc)) from None
        if before != after and self.found.empty is None:
            self.migrated = (before, after)
            log.info("store %s migrated from schema version %d to %d", path, before, after)
        path.chmod(0o600)
        # Each agent's newest event, kept as events are written (`ls` shows it for every agent, every call).
        self._newest: dict[str, tuple[str, float, dict[str, Any]]] = {}
        self._pending: dict[str, tuple[str, float, dict[str, Any]]] = {}  # written in the open transaction
        self._set_aside_undecodable()
        self._last_event = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        rows = self._db.execute(
            "SELECT agent, kind, ts, data FROM events WHERE id IN "
            "(SELECT MAX(id) FROM events WHERE agent IS NOT NULL GROUP BY agent)").fetchall()
        for agent, kind, ts, data in rows:
            self._newest[agent] = (kind, ts, _gist(_event_data(data)))
        self._versions = {row[0]: 0 for row in self._db.execute("SELECT name FROM agents")}

    def _keep_copy(self, copy: Path) -> None:
        """A copy of the store as it was before a migration (kept beside it; a migration is one transaction,
        but a later release may want to look at what an older one wrote)."""
        if copy.exists():
            return
        target = sqlite3.connect(copy)
        try:
            self._db.backup(target)
        finally:
            target.close()
        copy.chmod(0o600)

    def _set_aside_undecodable(self) -> None:
        """Move each agent record that does not decode to `agents_set_aside` (with an event naming it), so the
        other agents load and the name is free; the record itself is kept there as it was."""
        bad: list[tuple[str, str, str]] = []
        for name, data in self._db.execute("SELECT name, data FROM agents").fetchall():
            try:
                agent = _agent_from_json(data)
                if agent.name != name:
                    raise ValueError(f"the record is named {agent.name!r}")
            except Exception as exc:  # whatever a bad record makes the decoder raise
                bad.append((name, data, f"{type(exc).__name__}: {exc}"[:300]))
        if not bad:
            return
        with self.transaction() as db:
            for name, data, error in bad:
                db.execute("INSERT INTO agents_set_aside(name, data, error, at) VALUES (?, ?, ?, ?)",
                           (name, data, error, time.time()))
                db.execute("DELETE FROM agents WHERE name = ?", (name,))
                self._append(db, name, "record_set_aside", {"error": error})
        for name, _, error in bad:
            log.warning("agent %s: its record in %s could not be read (%s); it was set aside in the table "
                        "agents_set_aside", name, self.path, error)
            self.set_aside.append(SetAside(name, error))

    def close(self) -> None:
        with self._lock:
            if not self._db.flush():
                fault = self._db.fault()
                assert fault is not None
                log.error("%d change(s) could not be written to %s (%s) and are lost", fault.waiting, self.path,
                          fault.error)
            self._db.close()

    def unwritten(self) -> Fault | None:
        """Why the store's file cannot be written now, and how many changes wait in memory; None: it can."""
        with self._lock:
            return self._db.fault()

    def write_unwritten(self) -> bool:
        """Try to write the changes kept in memory to the file; True when none wait (any more)."""
        with self._lock:
            return self._db.flush()

    @contextmanager
    def transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction. Nested in another (same thread), it is part of the outer one and commits or
        rolls back with it: writes that belong together, like a state and the trigger it fires, are read
        together or not at all. While the file cannot be written, it is kept in memory until it can, unless
        it is `durable` (it must be on disk before what follows is done): then it fails, `StoreUnwritable`."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            before, writes = self._last_event, self._writes
            self._db.begin(durable)
            self._depth = 1
            try:
                yield self._db
                self._db.commit_writes()
            except BaseException:
                self._db.rollback_writes()
                self._last_event = before
                self._notices.rollback()
                raise
            finally:
                self._depth = 0
                pending, self._pending = self._pending, {}
            self._newest.update(pending)
            if self._last_event != before or self._writes != writes:
                self._note_change(events=self._last_event != before)
            if self._writes != writes:
                for bell in self._record_bells:
                    bell()
            self._notices.commit()

    def _note_change(self, events: bool) -> None:
        """Wake the waiters (on changes, and on events when some were written), or, on a thread that holds
        its notices back, owe them until it is done."""
        self._changes += 1
        ident = threading.get_ident()
        if ident in self._holding:
            self._holding[ident] = max(self._holding[ident], 2 if events else 1)
            return
        self._published = self._changes
        self._changed.notify_all()
        if events:  # waiters on events only care for new events
            self._appended.notify_all()

    @contextmanager
    def notices_held(self) -> Iterator[None]:
        """Hold back, on this thread, the wake-ups of the threads that wait for events and changes, and give
        them once at the end: a watch tick that writes many records wakes every service once, not per write."""
        ident = threading.get_ident()
        with self._lock:
            outer = ident in self._holding
            if not outer:
                self._holding[ident] = 0
        try:
            yield
        finally:
            if not outer:
                with self._lock:
                    owed = self._holding.pop(ident)
                    if owed:
                        self._published = self._changes
                        self._changed.notify_all()
                    if owed == 2:
                        self._appended.notify_all()

    def touch(self) -> None:
        """Wake the threads waiting for a change: something they depend on changed outside the store."""
        with self._lock:
            self._note_change(events=False)
            self._notices.touch()

    @property
    def changes(self) -> int:
        """How many changes so far (see `wait_for_change`; those of a thread holding its notices once it is
        done)."""
        with self._lock:
            return self._published

    def wait_for_change(self, seen: int, timeout: float | None) -> int:
        """Block until a change after `seen` (a value of `changes`: a transaction that wrote an event or a
        record, or a `touch`), or `timeout`; the count of changes now."""
        with self._changed:
            self._changed.wait_for(lambda: self._published != seen, timeout=timeout)
            return self._published

    # agents -------------------------------------------------------------------------------------------

    def add_agent(self, agent: Agent) -> None:
        """Insert a new agent; the name must be free (atomic: two starts of one name cannot both win). Durable:
        an agent is launched only once its record is on disk, or a restarted engine would not know it."""
        try:
            with self.transaction(durable=True) as db:
                try:
                    db.execute("INSERT INTO agents(name, data) VALUES (?, ?)", (agent.name, _agent_to_json(agent)))
                except sqlite3.IntegrityError:
                    raise NameTaken(
                        f"an agent named {agent.name!r} already exists",
                        hint=f"pick another name, or `supervisor rm {agent.name}` first",
                    ) from None
                self._append(db, agent.name, "created", {"command": agent.command, "task": agent.task})
                self._bump(agent.name, agent, added=True)
        except StoreUnwritable as exc:
            raise StoreUnwritable(f"{agent.name} was not started: {exc.message}", hint=exc.hint) from None

    def save_agent(self, agent: Agent, event: str | None = None, **data: Any) -> None:
        """Write the agent's record, and with `event` append that event in the same transaction."""
        with self.transaction() as db:
            if self._notices.unseen(agent.name):  # the record as it stands, for the listeners that never saw it
                row = db.execute("SELECT data FROM agents WHERE name = ?", (agent.name,)).fetchone()
                try:
                    if row is not None:
                        self._notices.seed(agent.name, _agent_from_json(row[0]))
                except (ValueError, TypeError, KeyError):  # not known then: this write rings them
                    pass
            db.execute("UPDATE agents SET data = ? WHERE name = ?", (_agent_to_json(agent), agent.name))
            self._bump(agent.name, agent)
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

    def listen_records(self, bell: Callable[[], None]) -> None:
        """Call `bell` (quickly: under the store's lock) after each transaction that wrote or removed agent
        records: a service that depends on records alone sleeps until one is written."""
        with self._lock:
            self._record_bells.append(bell)

    def listen_record_keys(self, key: RecordKey, bell: Bell) -> None:
        """Call `bell` (quickly: under the store's lock) after each transaction that added or removed a record, or
        wrote one whose `key` differs from the one it had: a service that depends on some fields of the records
        sleeps through the writes of the others (supervisor.core.notices)."""
        with self._lock:
            self._notices.listen_records(key, bell)

    def listen_events(self, wanted: EventWanted, bell: EventBell) -> None:
        """Give `bell` (quickly: under the store's lock) each event `wanted(agent, kind, data)` accepts, once its
        transaction committed: a service that handles some events sleeps through the others."""
        with self._lock:
            self._notices.listen_events(wanted, bell)

    def listen_touches(self, bell: Bell) -> None:
        """Call `bell` (quickly: under the store's lock) at each `touch`: a change the store does not hold (a
        reloaded configuration, a moved ref)."""
        with self._lock:
            self._notices.touches.append(bell)

    @property
    def records_written(self) -> int:
        """How many agent records were written or removed so far: while it stays the same, so do `versions`."""
        with self._lock:
            return self._writes

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

    def _bump(self, name: str, agent: Agent, added: bool = False) -> None:
        self._writes += 1
        self._versions[name] = self._writes
        self._notices.record(name, agent, added)

    def delete_agent(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM agents WHERE name = ?", (name,))
            self._append(db, name, "removed", {})
            self._writes += 1
            self._versions.pop(name, None)
            self._notices.record(name, None)

    # events -------------------------------------------------------------------------------------------

    def append_event(self, agent: str | None, kind: str, **data: Any) -> int:
        with self.transaction() as db:
            return self._append(db, agent, kind, data)

    def _append(self, db: sqlite3.Connection, agent: str | None, kind: str, data: dict[str, Any]) -> int:
        ts = time.time()
        text = json.dumps(data, sort_keys=True, default=str)
        cursor = db.execute("INSERT INTO events(ts, agent, kind, data) VALUES (?, ?, ?, ?)", (ts, agent, kind, text))
        event_id = cursor.lastrowid
        assert event_id is not None
        self._last_event = event_id
        if agent is not None:
            self._pending[agent] = (kind, ts, _gist(data))
        self._notices.event(agent, kind, data, lambda: Event(event_id, ts, agent, kind, _event_data(text)))
        return event_id

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
        return [Event(row[0], row[1], row[2], row[3], _event_data(row[4])) for row in reversed(rows)]

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
                    item = _event_data(data)
                    if "undecodable" not in item:  # one that does not decode says nothing usable
                        found.append(item)
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
