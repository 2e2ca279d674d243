"""The store's usage tables: each response's tokens, how far each file was read, each agent's newest context.

A response read again (its file replaced, truncated, or a line repeating it) is the same row: each count keeps
the largest value seen, so an early line with a partial output count never lowers it. A file's records and its
read position are written in one transaction, so an engine killed between reads neither loses nor doubles one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from supervisor.core.store import Store
from supervisor.usage.follow import Mark
from supervisor.usage.records import Context, Found

_UPSERT = """
INSERT INTO usage_records(agent, key, ts, model, input, output, cache_read, cache_write) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(agent, key) DO UPDATE SET
    model = COALESCE(excluded.model, model), input = MAX(input, excluded.input), output = MAX(output, excluded.output),
    cache_read = MAX(cache_read, excluded.cache_read), cache_write = MAX(cache_write, excluded.cache_write)"""
_CONTEXT = """
INSERT INTO usage_context(agent, ts, model, tokens, window) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(agent) DO UPDATE SET ts = excluded.ts, model = excluded.model, tokens = excluded.tokens,
    window = excluded.window WHERE excluded.ts >= usage_context.ts"""

# TOTAL, not SUM: a float that saturates where SUM of integers raises (rows stored before counts were bounded);
# CAST makes it an integer again.
_SUMS = ", ".join(f"CAST(TOTAL({name}) AS INTEGER)" for name in ("input", "output", "cache_read", "cache_write"))


@dataclass(frozen=True)
class Sum:
    """Tokens of one agent and model (one day, with `day`), as summed from the records."""

    agent: str
    model: str | None
    input: int
    output: int
    cache_read: int
    cache_write: int
    last: float  # the newest record's time
    day: str | None = None
    removed: float | None = None  # when the agent whose records these are was removed (None: a live agent's)


class Ledger:
    def __init__(self, store: Store) -> None:
        self.store = store

    def marks(self) -> dict[str, tuple[str, Mark]]:
        """Every file read so far: path → (agent, where its reading stands)."""
        with self.store.transaction() as db:
            rows = db.execute("SELECT path, agent, identity, offset, state FROM usage_files").fetchall()
        return {path: (agent, Mark(identity, offset, _state(state))) for path, agent, identity, offset, state in rows}

    def save(self, agent: str, path: str, mark: Mark, found: Found) -> None:
        self.save_all([(agent, path, mark, found)])

    def save_all(self, reads: list[tuple[str, str, Mark, Found]]) -> None:
        """What a pass read from many files (agent, file, its new mark, what it held), in one transaction."""
        with self.store.transaction() as db:
            for agent, path, mark, found in reads:
                self._save(db, agent, path, mark, found)

    @staticmethod
    def _save(db: sqlite3.Connection, agent: str, path: str, mark: Mark, found: Found) -> None:
        db.executemany(_UPSERT, [(agent, _key(r.key), r.ts, _text(r.model), r.input, r.output, r.cache_read,
                                  r.cache_write) for r in found.records])
        db.execute("INSERT OR REPLACE INTO usage_files(path, agent, identity, offset, state) "
                   "VALUES (?, ?, ?, ?, ?)", (path, agent, mark.identity, mark.offset, json.dumps(mark.state)))
        if found.context is not None:
            c = found.context
            db.execute(_CONTEXT, (agent, c.ts, _text(c.model), c.tokens, c.window))

    def forget(self, agent: str) -> None:
        """The agent is removed: its records stay (the repository's spending), no longer its name's; its read
        positions and context go (a new agent of that name starts with new files)."""
        with self.store.transaction() as db:
            db.execute("UPDATE usage_records SET removed = ? WHERE agent = ? AND removed IS NULL", (time.time(), agent))
            db.execute("DELETE FROM usage_files WHERE agent = ?", (agent,))
            db.execute("DELETE FROM usage_context WHERE agent = ?", (agent,))

    def sums(self, agents: list[str] | None = None, since: float | None = None, *, removed: bool = False,
             by_day: bool = False) -> list[Sum]:
        """Tokens per agent and model (and local day with `by_day`): of `agents` (None: all), recorded since
        `since`, with the rows of removed agents when `removed`."""
        where, args = ["1"], []  # type: tuple[list[str], list[Any]]
        if not removed:
            where.append("removed IS NULL")
        if since is not None:
            where.append("ts >= ?")
            args.append(since)
        if agents is not None:
            where.append(f"agent IN ({','.join('?' * len(agents))})")
            args += agents
        day = "date(ts, 'unixepoch', 'localtime')" if by_day else "NULL"
        # Removed agents' rows apart: one agent's, not its name's.
        query = (f"SELECT agent, model, {_SUMS}, MAX(ts), {day}, removed "
                 f"FROM usage_records WHERE {' AND '.join(where)} GROUP BY agent, removed, model, {day} ORDER BY agent")
        with self.store.transaction() as db:
            rows = db.execute(query, args).fetchall()
        return [Sum(*row) for row in rows]

    def tree_sums(self, root: str) -> list[Sum]:
        """Tokens per agent and model of the tree rooted at `root` (it and every helper under it): its agents'
        now, and those of helpers removed since `root` was created (merged and removed, they still spent the
        tree's budget); not those of an earlier agent of one of these names."""
        query = (f"SELECT agent, model, {_SUMS}, MAX(ts), NULL "
                 "FROM usage_records WHERE (agent = ? OR (agent > ? AND agent < ?)) AND (removed IS NULL OR "
                 "removed >= (SELECT MAX(ts) FROM events WHERE agent = ? AND kind = 'created')) "
                 "GROUP BY agent, model ORDER BY agent")
        with self.store.transaction() as db:  # `root.` < a helper's name < `root/` ('/' follows '.')
            rows = db.execute(query, (root, f"{root}.", f"{root}/", root)).fetchall()
        return [Sum(*row) for row in rows]

    def contexts(self, agents: list[str] | None = None) -> dict[str, Context]:
        query, args = "SELECT agent, ts, model, tokens, window FROM usage_context", list(agents or [])
        if agents is not None:
            query += f" WHERE agent IN ({','.join('?' * len(agents))})"
        with self.store.transaction() as db:
            rows = db.execute(query, args).fetchall()
        return {agent: Context(tokens, ts, model, window) for agent, ts, model, tokens, window in rows}


def _text(text: str | None, limit: int = 200) -> str | None:
    """A name from a CLI's file as the store can hold it: valid UTF-8 (JSON may carry a lone surrogate, which
    SQLite refuses), of modest length."""
    if text is None:
        return None
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


def _key(key: str) -> str:
    """A record's key as the store can hold it; a long one (not a CLI's own) by its digest, still one per key."""
    if len(key) <= 256 and key.isascii():
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _state(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
