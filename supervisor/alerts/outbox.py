"""The durable outbox: every alert is written here before any channel sees it (SPEC §8, §11).

One row in `alerts` is one message about one subject (an agent, or e.g. `tmux:`: core/subjects.py; the
`agent` columns of these tables hold the subject); one row in `alert_deliveries` per (alert, channel) tracks
that channel's attempts. A delivery is marked sent in the same transaction that records its result (and the
Slack thread it started), so after a crash only unsent deliveries are sent again. Per channel, deliveries go
out in alert order per subject: a later alert about one never overtakes an earlier one that is retrying.

An attempt is recorded in `alert_attempts` before the channel is called and forgotten with its outcome, so a
row left there after a crash is an attempt that may have got through: a channel that can read back what it
sent (Slack with a bot token) looks for it before sending again.

The router's own state (conditions, the groups being collected, silences) lives in tables of the store too;
every table is created and migrated by supervisor/core/schema.py.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from supervisor.alerts.content import AlertContent
from supervisor.alerts.content import iso as _iso
from supervisor.core import subjects
from supervisor.core.store import Store
from supervisor.core.unwritten import StoreUnwritable

CURSOR_KEY = "alerts.cursor"
KEEP_SECONDS = 30 * 86400  # delivered alerts older than this are pruned at start

PENDING = "pending"
SENT = "sent"
CANCELLED = "cancelled"  # the channel was removed from the configuration before the alert could be sent


@dataclass(frozen=True)
class Delivery:
    alert: int
    channel: str
    subject: str
    attempts: int
    content: AlertContent
    in_flight: float | None = None  # an earlier attempt started then and may have got through


def _event_agent(subject: str) -> str | None:
    return subject if subjects.is_agent(subject) else None


def ensure_schema(store: Store) -> None:
    """Start the event cursor at the end of the log on the very first run (an existing repository's old
    triggers are history, not news). The tables are the store's (supervisor/core/schema.py)."""
    with store.transaction() as db:
        db.execute("INSERT OR IGNORE INTO meta(key, value) SELECT ?, COALESCE(MAX(id), 0) FROM events",
                   (CURSOR_KEY,))


def get_cursor(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (CURSOR_KEY,)).fetchone()
    return int(row[0]) if row else 0


def set_cursor(db: sqlite3.Connection, cursor: int) -> None:
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (CURSOR_KEY, str(cursor)))

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    # writing (inside the router's transaction) ------------------------------------------------------

    @staticmethod
    def add(db: sqlite3.Connection, content_for: Callable[[int], AlertContent], agent: str, route: str,
            triggers: list[str], status: str, channels: Iterable[str], now: float) -> int:
        """Insert one alert and a pending delivery per channel; `content_for(id)` composes its content."""
        cursor = db.execute(
            "INSERT INTO alerts(created, agent, route, triggers, status, content) VALUES (?, ?, ?, ?, ?, '')",
            (now, agent, route, json.dumps(triggers), status),
        )
        alert_id = cursor.lastrowid
        assert alert_id is not None
        content = content_for(alert_id)
        db.execute("UPDATE alerts SET content = ? WHERE id = ?", (content.to_json(), alert_id))
        db.executemany(
            "INSERT INTO alert_deliveries(alert, channel, status, next_attempt) VALUES (?, ?, 'pending', ?)",
            [(alert_id, channel, now) for channel in channels],
        )
        return alert_id

    # delivering ---------------------------------------------------------------------------------------

    def next_delivery(self, channel: str, now: float) -> tuple[Delivery | None, float | None]:
        """The delivery to attempt now on `channel`, or None and when the next one falls due.

        Only the oldest open delivery of each subject is a candidate, so alerts about one keep their order."""
        with self.store.transaction() as db:
            rows = db.execute(
                """
                SELECT d.alert, a.agent, d.attempts, d.next_attempt
                FROM alert_deliveries d JOIN alerts a ON a.id = d.alert
                WHERE d.channel = ? AND d.status = 'pending' AND d.alert = (
                    SELECT MIN(d2.alert) FROM alert_deliveries d2 JOIN alerts a2 ON a2.id = d2.alert
                    WHERE d2.channel = d.channel AND d2.status = 'pending' AND a2.agent = a.agent)
                ORDER BY d.alert
                """,
                (channel,),
            ).fetchall()
            due = [row for row in rows if row[3] <= now]
            if not due:
                return None, min((row[3] for row in rows), default=None)
            alert, subject, attempts, _ = due[0]
            content = db.execute("SELECT content FROM alerts WHERE id = ?", (alert,)).fetchone()[0]
            started = db.execute("SELECT started FROM alert_attempts WHERE alert = ? AND channel = ?",
                                 (alert, channel)).fetchone()
        return Delivery(alert, channel, subject, attempts, AlertContent.from_json(content),
                        float(started[0]) if started else None), None

    def any_thread(self, key: str) -> str | None:
        """Any subject's thread on `key` (Slack: it tells the channel's id)."""
        with self.store.transaction() as db:
            row = db.execute("SELECT ref FROM alert_threads WHERE channel = ? LIMIT 1", (key,)).fetchone()
        return str(row[0]) if row else None

    def begin(self, delivery: Delivery, started: float) -> bool:
        """Record on disk, before the channel is called, that an attempt is under way (the first one stays): a
        restart then asks the channel whether it got through rather than posting again. False when the disk
        refuses it: the alert goes out all the same (at least once; a restart may post it again)."""
        try:
            with self.store.transaction(durable=True) as db:
                db.execute("INSERT OR IGNORE INTO alert_attempts(alert, channel, started) VALUES (?, ?, ?)",
                           (delivery.alert, delivery.channel, started))
        except StoreUnwritable as exc:
            log.warning("alert %d to %s: the attempt could not be recorded (%s); it is sent anyway, and may be "
                        "sent again if the engine restarts before it is recorded as sent", delivery.alert,
                        delivery.channel, exc.message)
            return False
        return True

    def thread(self, agent: str, key: str) -> str | None:
        with self.store.transaction() as db:
            row = db.execute("SELECT ref FROM alert_threads WHERE agent = ? AND channel = ?", (agent, key)).fetchone()
        return str(row[0]) if row else None

    def mark_sent(self, delivery: Delivery, detail: str, thread_key: str | None, thread: str | None) -> None:
        """Record a delivery as done, with the thread it started, in one transaction."""
        now = time.time()
        with self.store.transaction() as db:
            db.execute("DELETE FROM alert_attempts WHERE alert = ? AND channel = ?", (delivery.alert, delivery.channel))
            db.execute(
                "UPDATE alert_deliveries SET status = 'sent', sent_at = ?, attempts = attempts + 1, detail = ? "
                "WHERE alert = ? AND channel = ? AND status = 'pending'",
                (now, detail, delivery.alert, delivery.channel),
            )
            if thread_key and thread:
                db.execute("INSERT OR IGNORE INTO alert_threads(agent, channel, ref) VALUES (?, ?, ?)",
                           (delivery.subject, thread_key, thread))
            # The channel works again: what waits in backoff on it need not wait any longer.
            db.execute("UPDATE alert_deliveries SET next_attempt = ? WHERE channel = ? AND status = 'pending' "
                       "AND next_attempt > ?", (now, delivery.channel, now))
            self.store._append(db, _event_agent(delivery.subject), "alert_sent",  # joins this transaction
                               {"alert": delivery.alert, "channel": delivery.channel,
                                "attempts": delivery.attempts + 1})

    def mark_failed(self, delivery: Delivery, error: str, next_attempt: float, maybe_sent: bool = False) -> None:
        """Record a failed attempt; `maybe_sent`: it may have got through all the same (a timeout)."""
        with self.store.transaction() as db:
            if not maybe_sent:
                db.execute("DELETE FROM alert_attempts WHERE alert = ? AND channel = ?",
                           (delivery.alert, delivery.channel))
            db.execute(
                "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt = ? "
                "WHERE alert = ? AND channel = ? AND status = 'pending'",
                (error, next_attempt, delivery.alert, delivery.channel),
            )
            if delivery.attempts == 0:  # the first failure is news; the retries are in `alerts ls`
                self.store._append(db, _event_agent(delivery.subject), "alert_failed",  # joins this transaction
                                   {"alert": delivery.alert, "channel": delivery.channel, "error": error})

    def forget_thread(self, subject: str, key: str) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM alert_threads WHERE agent = ? AND channel = ?", (subject, key))

    def retry_now(self, now: float) -> None:
        """Make every open delivery due (at start: a restart is a good moment to try again)."""
        with self.store.transaction() as db:
            db.execute("UPDATE alert_deliveries SET next_attempt = ? WHERE status = 'pending'", (now,))

    def cancel_other_channels(self, configured: Iterable[str]) -> int:
        """Close the open deliveries of channels no longer configured (nobody would ever send them)."""
        names = list(configured)
        marks = ",".join("?" * len(names)) or "''"
        with self.store.transaction() as db:
            cursor = db.execute(
                f"UPDATE alert_deliveries SET status = 'cancelled', detail = 'channel no longer configured' "
                f"WHERE status = 'pending' AND channel NOT IN ({marks})",
                names,
            )
            db.execute("DELETE FROM alert_attempts WHERE NOT EXISTS (SELECT 1 FROM alert_deliveries d "
                       "WHERE d.alert = alert_attempts.alert AND d.channel = alert_attempts.channel "
                       "AND d.status = 'pending')")
            return cursor.rowcount

    def prune(self, now: float) -> None:
        with self.store.transaction() as db:
            db.execute(
                "DELETE FROM alerts WHERE created < ? AND NOT EXISTS (SELECT 1 FROM alert_deliveries d "
                "WHERE d.alert = alerts.id AND d.status = 'pending')",
                (now - KEEP_SECONDS,),
            )
            db.execute("DELETE FROM alert_attempts WHERE alert NOT IN (SELECT id FROM alerts)")

    # reading ------------------------------------------------------------------------------------------

    def alerts(self, agent: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest alerts (about one subject, or all), newest first, with each channel's delivery. An
        agent's alerts include those about another subject that name it (its tmux server went, with it)."""
        query = "SELECT id, created, agent, route, status, content FROM alerts"
        args: list[Any] = []
        if agent is not None:
            query += (" WHERE agent = ? OR (instr(agent, ':') > 0 AND json_valid(content) AND EXISTS "
                      "(SELECT 1 FROM json_each(content, '$.agents') WHERE value = ?))")
            args += [agent, agent]
        query += " ORDER BY id DESC LIMIT ?"
        args.append(max(1, min(limit, 1000)))
        with self.store.transaction() as db:
            rows = db.execute(query, args).fetchall()
            ids = [row[0] for row in rows]
            marks = ",".join("?" * len(ids)) or "NULL"
            deliveries: dict[int, list[dict[str, Any]]] = {}
            for alert, channel, status, attempts, next_attempt, last_error, sent_at, detail in db.execute(
                f"SELECT alert, channel, status, attempts, next_attempt, last_error, sent_at, detail "
                f"FROM alert_deliveries WHERE alert IN ({marks}) ORDER BY channel", ids):
                deliveries.setdefault(alert, []).append({
                    "channel": channel, "status": status, "attempts": attempts, "last_error": last_error,
                    "sent_at": _iso(sent_at), "next_attempt": _iso(next_attempt) if status == PENDING else None,
                    "detail": detail,
                })
        result = []
        for alert_id, created, name, route, status, text in rows:
            content = AlertContent.from_json(text)
            result.append({
                "id": alert_id, "created": _iso(created), "agent": name if subjects.is_agent(name) else None,
                "subject": name, "agents": list(content.agents or ([name] if subjects.is_agent(name) else [])),
                "route": route, "status": status,
                "title": content.title(), "actions": content.actions(),
                "items": [{"trigger": i.trigger, "status": i.status, "summary": i.summary, "since": _iso(i.since),
                           "until": _iso(i.until), "repeat": i.repeat, "count": i.count} for i in content.items],
                "deliveries": deliveries.get(alert_id, []),
            })
        return result
