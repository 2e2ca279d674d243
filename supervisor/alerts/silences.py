"""Silences: "snooze this agent (or this trigger) for a while", kept in the store so they survive restarts.

A silence matches an alert item when its subject (an agent, or e.g. `tmux:`; or anything) and its trigger (or
any trigger) match. The `agent` column holds the subject (core/subjects.py). A firing
condition kept back by a silence is told when the silence ends, if it still holds (Alertmanager's model);
one-off occurrences during a silence are dropped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from supervisor.alerts.content import iso
from supervisor.core import subjects
from supervisor.core.durations import format_duration, parse_duration
from supervisor.core.triggers import Trigger
from supervisor.errors import UsageError


@dataclass(frozen=True)
class Silence:
    id: int
    agent: str | None
    trigger: str | None
    created: float
    until: float

    def matches(self, subject: str, trigger: str) -> bool:
        return (self.agent is None or subjects.covers(self.agent, subject)) and self.trigger in (None, trigger)

    def view(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "agent": self.agent, "subject": self.agent, "trigger": self.trigger,
                "created": iso(self.created),
                "until": iso(self.until), "remaining": format_duration(self.until - now)}


def check_target(agent: str | None, trigger: str | None) -> None:
    if agent is None and trigger is None:
        raise UsageError("say what to snooze: an agent (or another subject such as tmux:), a trigger, or both",
                         hint="e.g. `supervisor alerts snooze auth --for 1h` or `--trigger stalled`")
    if agent is not None:
        subjects.check(agent)
    if trigger is not None and trigger not in set(Trigger):
        raise UsageError(f"unknown trigger {trigger!r}", hint=f"triggers: {', '.join(Trigger)}")


def seconds(duration: str | float | int) -> float:
    try:
        value = parse_duration(duration)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if value <= 0:
        raise UsageError("a snooze needs a duration above zero, e.g. 30m")
    return value


def add(db: sqlite3.Connection, agent: str | None, trigger: str | None, until: float, now: float) -> Silence:
    cursor = db.execute("INSERT INTO alert_silences(agent, trigger, created, until) VALUES (?, ?, ?, ?)",
                        (agent, trigger, now, until))
    assert cursor.lastrowid is not None
    return Silence(cursor.lastrowid, agent, trigger, now, until)


def remove(db: sqlite3.Connection, silence_id: int | None, agent: str | None, trigger: str | None) -> int:
    """Delete one silence by id, or every silence with exactly this agent and trigger; how many went."""
    if silence_id is not None:
        return db.execute("DELETE FROM alert_silences WHERE id = ?", (silence_id,)).rowcount
    return db.execute("DELETE FROM alert_silences WHERE agent IS ? AND trigger IS ?", (agent, trigger)).rowcount


def active(db: sqlite3.Connection, now: float) -> list[Silence]:
    rows = db.execute("SELECT id, agent, trigger, created, until FROM alert_silences WHERE until > ? ORDER BY id",
                      (now,)).fetchall()
    return [Silence(*row) for row in rows]


def expire(db: sqlite3.Connection, now: float) -> int:
    return db.execute("DELETE FROM alert_silences WHERE until <= ?", (now,)).rowcount


def next_expiry(db: sqlite3.Connection) -> float | None:
    row = db.execute("SELECT MIN(until) FROM alert_silences").fetchone()
    return float(row[0]) if row and row[0] is not None else None
