"""Precise notices from the store: a service hears of the events and record changes it depends on, not of every
write (the watch tick writes some record or event every second at many agents, and most services care for none
of them).

- An event listener gives `wanted(agent, kind, data)` and a bell: the bell gets each wanted event (as read back
  from the log) once its transaction committed.
- A record listener gives `key(agent)`: its bell rings once a transaction committed that wrote a record whose key
  differs from the one it had before, or added or removed one. The key a record had before is remembered from its
  last write; for a record not written since the listener began, the store reads it before writing it (`seed`:
  once per record, the first write after an engine starts).
- A touch listener's bell rings at each `Store.touch` (a change the store does not hold: a reloaded
  configuration, a moved ref).

Bells run under the store's lock, in the writing thread: they must be quick (set an Event, append to a list).
What a rolled-back transaction wrote rings nothing. A `wanted` or `key` that fails counts as a change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from supervisor.core.model import Agent, Event

log = logging.getLogger(__name__)

EventWanted = Callable[[str | None, str, dict[str, Any]], bool]
EventBell = Callable[[Event], None]
RecordKey = Callable[[Agent], object]
Bell = Callable[[], None]

_GONE = object()  # the key of a removed record
_FAILED = object()  # the key of a record its key function failed on: never equal to any other
_ADDED = object()  # the key a new record had before: never equal to any other


class _RecordListener:
    def __init__(self, key: RecordKey, bell: Bell) -> None:
        self.key = key
        self.bell = bell
        self.keys: dict[str, object] = {}  # name → its key as last committed


class Notices:
    """The listeners of one store, and what its open transaction owes them (the store's lock held throughout)."""

    def __init__(self) -> None:
        self._events: list[tuple[EventWanted, EventBell]] = []
        self._records: list[_RecordListener] = []
        self.touches: list[Bell] = []
        self._owed_events: list[tuple[EventBell, Event]] = []
        self._owed_records: dict[tuple[int, str], object] = {}  # (listener, name) → key written

    def listen_events(self, wanted: EventWanted, bell: EventBell) -> None:
        self._events.append((wanted, bell))

    def listen_records(self, key: RecordKey, bell: Bell) -> None:
        self._records.append(_RecordListener(key, bell))

    def unseen(self, name: str) -> bool:
        """Whether some record listener does not know the key of `name`'s record as it stands."""
        return any(name not in listener.keys for listener in self._records)

    def seed(self, name: str, agent: Agent) -> None:
        """`name`'s record as it stands (read before a write): its key for the listeners that did not know it."""
        for listener in self._records:
            if name not in listener.keys:
                listener.keys[name] = self._key(listener, agent)

    @staticmethod
    def _key(listener: _RecordListener, agent: Agent) -> object:
        try:
            return listener.key(agent)
        except Exception:
            log.exception("a record listener failed: told all the same")
            return _FAILED

    def event(self, agent: str | None, kind: str, data: dict[str, Any], read: Callable[[], Event]) -> None:
        """An event appended in the open transaction; `read` gives it as the log holds it."""
        event: Event | None = None  # read back once, for all the listeners that want it
        for wanted, bell in self._events:
            try:
                hit = wanted(agent, kind, data)
            except Exception:
                log.exception("an event listener failed: told all the same")
                hit = True
            if hit:
                event = event or read()
                self._owed_events.append((bell, event))

    def record(self, name: str, agent: Agent | None, added: bool = False) -> None:
        """A record written (None: removed; `added`: new) in the open transaction."""
        for index, listener in enumerate(self._records):
            if added:
                listener.keys[name] = _ADDED  # (rolled back: it rings once for nothing)
            self._owed_records[(index, name)] = _GONE if agent is None else self._key(listener, agent)

    def commit(self) -> None:
        """The open transaction committed: ring what it owes."""
        events, self._owed_events = self._owed_events, []
        records, self._owed_records = self._owed_records, {}
        for bell, event in events:
            bell(event)
        rung: set[int] = set()
        for (index, name), key in records.items():
            listener = self._records[index]
            if key is _FAILED or listener.keys.get(name, _FAILED) != key:
                if key is _GONE:
                    listener.keys.pop(name, None)
                else:
                    listener.keys[name] = key
                rung.add(index)
        for index in sorted(rung):
            self._records[index].bell()

    def rollback(self) -> None:
        self._owed_events.clear()
        self._owed_records.clear()

    def touch(self) -> None:
        for bell in self.touches:
            bell()
