"""The store's schema and its migrations forward: every table of the package, in numbered steps.

A store's version is SQLite's `user_version`. Opening a store runs the steps above its version, all in one
transaction with the new version, so a store is at one version or the next, never between. A step is never
edited once released (stores in the wild were made by it): a change is a new step at the end, and a fixture
store of each version is kept in tests/fixtures/stores/ (`python tests/fixtures/stores/make_fixture.py`).

To add a step: write `def _vN(db)` with the statements (ALTER TABLE ... ADD COLUMN, CREATE TABLE, a data
fix), append `Step(N, "what it changes", _vN)` to STEPS, and make the fixture of version N.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    version: int  # the version a store has once this step ran
    summary: str
    apply: Callable[[sqlite3.Connection], None]


def _run(db: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated statements inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


# Version 1: the schema as it stood when versioning began (agents and events; the alert pipeline's tables,
# approvals and the task board, which their modules created on first use until then).
_V1 = """
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
CREATE TABLE IF NOT EXISTS alert_conditions (
    agent TEXT NOT NULL,
    trigger TEXT NOT NULL,
    firing INTEGER NOT NULL,          -- 1 while the condition holds
    occurrence INTEGER NOT NULL,      -- how many times it started
    since REAL NOT NULL,              -- when the current occurrence started
    told INTEGER NOT NULL DEFAULT 0,  -- the human was told about this occurrence (so "resolved" is owed)
    told_at REAL,                     -- when they were last told (repeat_after counts from here)
    held INTEGER NOT NULL DEFAULT 0,  -- kept back by a silence: told when the silence ends, if still true
    data TEXT NOT NULL,               -- the newest evidence (summary, task, screen, ...)
    PRIMARY KEY (agent, trigger)
);
CREATE TABLE IF NOT EXISTS alert_pending (
    agent TEXT NOT NULL,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,             -- firing | resolved
    repeat INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL DEFAULT 1,
    queued REAL NOT NULL,             -- the group of an agent is sent at min(queued) + group_wait
    since REAL NOT NULL,
    until REAL,
    data TEXT NOT NULL,
    PRIMARY KEY (agent, trigger)
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    agent TEXT NOT NULL,
    route TEXT NOT NULL,              -- human | parent
    triggers TEXT NOT NULL,           -- JSON list
    status TEXT NOT NULL,             -- firing | resolved
    content TEXT NOT NULL             -- AlertContent JSON, composed once
);
CREATE INDEX IF NOT EXISTS alerts_by_agent ON alerts(agent, id);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    alert INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,             -- pending | sent | cancelled
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    sent_at REAL,
    detail TEXT,
    PRIMARY KEY (alert, channel)
);
CREATE INDEX IF NOT EXISTS alert_deliveries_open ON alert_deliveries(channel, status, alert);
CREATE TABLE IF NOT EXISTS alert_threads (
    agent TEXT NOT NULL,
    channel TEXT NOT NULL,            -- the channel's thread key, e.g. slack:#agents
    ref TEXT NOT NULL,                -- e.g. the Slack channel id and ts of the thread's first message
    PRIMARY KEY (agent, channel)
);
CREATE TABLE IF NOT EXISTS alert_silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT,                       -- NULL: every agent
    trigger TEXT,                     -- NULL: every trigger
    created REAL NOT NULL,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,          -- pending | approved | denied | timed_out
    reason TEXT,
    decided_by TEXT,
    created REAL NOT NULL,
    decided REAL
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so an id in a transcript stays unambiguous
    text TEXT NOT NULL,
    state TEXT NOT NULL,                   -- open | claimed | done
    holder TEXT,                           -- who holds it (claimed) or finished it (done), NULL: the human
    incarnation REAL,                      -- the holder's started_at when it claimed (NULL: the human)
    added_by TEXT,                         -- the agent that added it (NULL: the human)
    created REAL NOT NULL,
    claimed REAL,
    done REAL,
    updated REAL NOT NULL,                 -- when its state last changed
    claims INTEGER NOT NULL DEFAULT 0,     -- how many times it was claimed
    released TEXT                          -- why it last went back to the board
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks(state, id)
"""


def _v1(db: sqlite3.Connection) -> None:
    _run(db, _V1)


def _v2(db: sqlite3.Connection) -> None:
    """Agent records that could not be decoded are moved here at start, so that one bad record leaves the
    others usable and its name free, and nothing of it is lost."""
    _run(db, """
    CREATE TABLE agents_set_aside (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        data TEXT NOT NULL,           -- the record as it was
        error TEXT NOT NULL,          -- why it could not be read
        at REAL NOT NULL
    )""")


def _v3(db: sqlite3.Connection) -> None:
    # An alert's attempt is recorded before its channel is called and forgotten with its outcome: a row left
    # after a crash is an attempt that may have got through (Slack is searched for it before sending again).
    db.execute("""CREATE TABLE alert_attempts (
        alert INTEGER NOT NULL,
        channel TEXT NOT NULL,
        started REAL NOT NULL,        -- the first attempt whose outcome is unknown
        PRIMARY KEY (alert, channel)
    )""")


def _v4(db: sqlite3.Connection) -> None:
    # Tokens per model response, read from each agent's CLI records (supervisor/usage); the cost is computed
    # when asked, from the prices in force. A removed agent's rows stay (the repository spent them), marked.
    _run(db, """
    CREATE TABLE usage_records (
        agent TEXT NOT NULL,
        key TEXT NOT NULL,                -- the response, as its reader names it every time it is read
        ts REAL NOT NULL,                 -- when the CLI recorded it
        model TEXT,
        input INTEGER NOT NULL,           -- input tokens billed at the input price (cached ones apart)
        output INTEGER NOT NULL,
        cache_read INTEGER NOT NULL,
        cache_write INTEGER NOT NULL,
        removed REAL,                     -- the agent was removed (`rm`) then: not a later agent of its name's
        PRIMARY KEY (agent, key)
    );
    CREATE INDEX usage_records_by_ts ON usage_records(ts);
    CREATE TABLE usage_files (
        path TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        identity TEXT NOT NULL,           -- device:inode, so a replaced file is read again from its start
        offset INTEGER NOT NULL,          -- read up to here (complete lines)
        state TEXT NOT NULL               -- the reader's state at that offset (JSON)
    );
    CREATE TABLE usage_context (
        agent TEXT PRIMARY KEY,
        ts REAL NOT NULL,
        model TEXT,
        tokens INTEGER NOT NULL,          -- the context the newest turn used
        window INTEGER                    -- as the CLI reported it (NULL: from the price table)
    )""")


def _v5(db: sqlite3.Connection) -> None:
    # Agents are known by the socket they talk through, no longer by a token in their environment: the tokens
    # earlier versions kept in agents' records (where any process of the user could read them) go.
    db.execute("UPDATE agents SET data = json_remove(data, '$.token') "
               "WHERE json_valid(data) AND json_type(data, '$.token') IS NOT NULL")


def _v6(db: sqlite3.Connection) -> None:
    # The host an agent runs on is a field of its record (`local`: the engine's machine), no longer kept beside
    # its pane's reference in `extra` (where records placed on a pane had it).
    _run(db, """
    UPDATE agents SET data = json_set(data, '$.host', COALESCE(json_extract(data, '$.extra.host'), 'local'))
    WHERE json_valid(data) AND json_type(data, '$.host') IS NULL;
    UPDATE agents SET data = json_remove(data, '$.extra.host')
    WHERE json_valid(data) AND json_type(data, '$.extra.host') IS NOT NULL""")


def _v7(db: sqlite3.Connection) -> None:
    # An agent on a host the engine cannot reach is `unreachable`, with the state it was in as `last_state`. The
    # version is what matters: an engine older than this one would set aside a record in a state it does not
    # know, and a store of a newer version is refused by it instead.
    db.execute("UPDATE agents SET data = json_set(data, '$.last_state', NULL) "
               "WHERE json_valid(data) AND json_type(data, '$.last_state') IS NULL")


STEPS: tuple[Step, ...] = (
    Step(1, "agents, events, meta, alerts, approvals, tasks", _v1),
    Step(2, "agents_set_aside: undecodable agent records kept apart", _v2),
    Step(3, "alert_attempts: alert attempts whose outcome is unknown", _v3),
    Step(4, "usage_records, usage_files, usage_context: tokens read from the agents' CLI records", _v4),
    Step(5, "agents: the tokens of earlier versions removed from the records", _v5),
    Step(6, "agents: the host each runs on, `local` unless its record named another", _v6),
    Step(7, "agents: last_state, the state an unreachable agent was last known in", _v7),
)
LATEST = STEPS[-1].version


def pending_steps(version: int) -> list[Step]:
    """The steps a store at `version` needs. A store at version 1 gets step 1 again: before versioning, the
    alert, approval and task tables were created on first use, so a version-1 store may lack some of them
    (step 1 only creates what is missing)."""
    return [step for step in STEPS if step.version > version or (version == 1 and step.version == 1)]


def migrate(db: sqlite3.Connection) -> tuple[int, int]:
    """Bring the store open on `db` (autocommit mode) to LATEST in one transaction; (before, after).
    The caller has refused a store newer than LATEST."""
    db.execute("BEGIN IMMEDIATE")
    try:
        before = int(db.execute("PRAGMA user_version").fetchone()[0])
        assert before <= LATEST, f"a store of version {before} reached migrate"
        steps = pending_steps(before)
        for step in steps:
            step.apply(db)
        if before != LATEST:
            db.execute(f"PRAGMA user_version={LATEST}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return before, LATEST
