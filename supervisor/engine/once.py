"""Hook events applied once, also across engine restarts.

`supervisor hook` gives each event an id and sends it to the engine; when the engine answers too late or not at
all (it was killed), the hook spools a copy, which the next read of the spool finds. The engine records the id in
the same store row as the event it applies (the `hook` event's `key`): an event is applied exactly when its id is
recorded, whatever moment a kill picks. The ids this engine applied are remembered in memory; before it reads a
spooled event that ran before it started, the ids recorded since that event ran are loaded from the store, since
an engine before it may have applied the event and died before the spooled copy was read.

Recorded is not yet applied to the agent's state: an engine killed between the two leaves the event recorded
(so its spooled copy is skipped) and its state unapplied. An adopted agent whose newest event is a hook event
therefore takes its hook state from that event (`last_hook`), as the engine before it would have.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.engine.hooks import read_hook
from supervisor.engine.spooled import Spooled, SpoolFolder

log = logging.getLogger(__name__)

_REMEMBERED = 16384  # ids kept in memory: far more than arrive between two reads of the spool
_CLOCK_SLACK = 60.0  # seconds an event may be recorded before its hook's clock says it ran


class Seen(Enum):
    NEW = "new"
    APPLYING = "applying"  # taken by one thread, not recorded yet
    RECORDED = "recorded"


class HookLedger:
    """Which hook event ids are applied (recorded in the store) or being applied. Thread-safe."""

    def __init__(self, store: Store) -> None:
        """Made when no other engine applies events any more (once the engine holds its lock)."""
        self.store = store
        self._ids: OrderedDict[str, bool] = OrderedDict()  # id -> recorded
        self._lock = threading.Lock()
        # Ids of events recorded since this time are known here: this engine's own, and those loaded.
        self._known_since = time.time()

    def seen(self, key: str) -> Seen:
        with self._lock:
            recorded = self._ids.get(key)
        return Seen.NEW if recorded is None else Seen.RECORDED if recorded else Seen.APPLYING

    def claim(self, key: object) -> bool:
        """Take the event with this id for applying; False when it is applied or being applied already. An event
        without an id is always new."""
        if not isinstance(key, str):
            return True
        with self._lock:
            if key in self._ids:
                return False
            self._ids[key] = False
            while len(self._ids) > _REMEMBERED:
                self._ids.popitem(last=False)
        return True

    def recorded(self, key: object) -> None:
        if isinstance(key, str):
            with self._lock:
                self._ids[key] = True

    def release(self, key: object) -> None:
        """Applying it failed (nothing recorded): a spooled copy may apply it."""
        if isinstance(key, str):
            with self._lock:
                if self._ids.get(key) is False:
                    del self._ids[key]

    def cover(self, ran: float) -> None:
        """Know the ids of every event recorded since an event that ran at `ran` (a spooled one) could have been."""
        since = ran - _CLOCK_SLACK
        if since >= self._known_since:
            return
        keys = [str(data["key"]) for data in self.store.recent_event_data("hook", since) if "key" in data]
        with self._lock:
            for key in keys:
                if key not in self._ids:
                    self._ids[key] = True
                    self._ids.move_to_end(key, last=False)  # older than what this engine applied: evicted first
            self._known_since = since


def ingest_spool(directory: Path, name: str, store: Store, ledger: HookLedger,
                 apply: Callable[[Agent, dict[str, Any], float, object], None]) -> bool:
    """Apply the hook events spooled in `directory` (agent `name`'s own spool folder: each is that agent's, whatever
    its file says) that are not applied yet, in order, and remove their files; `apply(agent, event, ran, key)`
    records the event with its id. Returns False when a file was kept, because its event's own request is being
    applied right now: its record decides at the next read. An event that fails to apply for any reason but the
    store's is said in the log and its file removed: one file never stops the others."""
    with SpoolFolder(directory) as folder:
        return apply_spooled(folder.read(), name, store, ledger, apply, folder.remove)


def apply_spooled(found: list[Spooled], name: str, store: Store, ledger: HookLedger,
                  apply: Callable[[Agent, dict[str, Any], float, object], None],
                  remove: Callable[[str], None]) -> bool:
    """`ingest_spool` of the events `found` in agent `name`'s spool, wherever it is (on this machine, or on a
    host: supervisor/engine/remoterequests.py); `remove(file name)` takes each one applied or dropped."""
    items = [(spooled, ran_at(spooled.item.get("at"), spooled.mtime)) for spooled in found]
    unknown = [ran for spooled, ran in items
               if isinstance(spooled.item.get("key"), str) and ledger.seen(spooled.item["key"]) is Seen.NEW]
    if unknown:
        ledger.cover(min(unknown))
    done = True
    for spooled, ran in items:
        key = spooled.item.get("key")
        seen = ledger.seen(key) if isinstance(key, str) else Seen.NEW
        if seen is Seen.APPLYING:
            done = False
            continue
        agent = store.get_agent(name)
        event = spooled.item.get("event")
        if seen is Seen.NEW and agent is not None and isinstance(event, dict) and ledger.claim(key):
            try:
                apply(agent, event, ran, key)
            except (OSError, sqlite3.Error):  # the store's trouble: the file waits for the next read
                ledger.release(key)
                raise
            except Exception:
                ledger.release(key)
                log.exception("%s: a spooled hook event in %s could not be applied; it is dropped", name,
                              spooled.name)
        remove(spooled.name)
    return done


def ran_at(at: object, otherwise: float) -> float:
    """When a hook ran, as `supervisor hook` said (never later than now), else `otherwise`."""
    if isinstance(at, bool) or not isinstance(at, int | float):
        return otherwise
    try:
        seconds = float(at)  # a JSON integer can be too large for a float
    except OverflowError:
        return otherwise
    return min(seconds, time.time()) if math.isfinite(seconds) else otherwise


def last_hook(store: Store, agent: str) -> tuple[State, str | None, float] | None:
    """The state, reason and time of the agent's newest event when it is a hook event with a word on the state
    (else None): what an adopting engine's watcher holds as the hooks' last report."""
    newest = store.newest_event(agent)
    if newest is None or newest[0] != "hook":
        return None
    events = store.events(agent, limit=1)
    if not events or events[-1].kind != "hook":
        return None
    reading = read_hook(events[-1].data)
    return None if reading.state is None else (reading.state, reading.reason, events[-1].ts)
