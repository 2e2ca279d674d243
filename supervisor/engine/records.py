"""Reading every agent record often without decoding them all: only those written since the last read."""

from __future__ import annotations

from supervisor.core.model import Agent
from supervisor.core.store import Store


class AgentRecords:
    """Every agent as last written, re-decoding only the records whose store version changed (a loop that
    looks every second must not decode 100 JSON records to learn that nothing changed)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cached: dict[str, tuple[int, Agent]] = {}  # name → (version, record) as last read
        self.written = -1  # the store's count of record writes the last read's records are as of
        self._read: tuple[list[Agent], dict[str, int]] = ([], {})
        self._order: list[str] = []  # the names of `_cached`, sorted

    def read(self) -> tuple[list[Agent], dict[str, int]]:
        """Every agent by name, and each one's version as read. With no record written since the last read,
        what it found (the loops that read every second mostly find nothing written)."""
        written = self.store.records_written  # before the versions: a write in between is read next time
        if written == self.written:
            return list(self._read[0]), dict(self._read[1])
        current = self.store.versions()
        cached = self._cached
        gone = [name for name in cached if name not in current]
        for name in gone:
            del cached[name]
        stale = [name for name, version in current.items() if name not in cached or cached[name][0] != version]
        if stale:
            fresh, versions = self.store.get_agents(stale)
            for name in stale:
                cached.pop(name, None)
            for agent in fresh:
                cached[agent.name] = (versions[agent.name], agent)
        if gone or len(cached) != len(self._order):  # the names changed: put in order again
            self._order = sorted(cached)
        self._read = ([cached[name][1] for name in self._order], {name: cached[name][0] for name in self._order})
        self.written = written
        return list(self._read[0]), dict(self._read[1])
