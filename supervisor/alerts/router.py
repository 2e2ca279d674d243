"""The alert router: trigger events in, grouped alerts out (Alertmanager's model, SPEC §8).

- An alert is identified by (subject, trigger). The subject is the agent, unless the trigger event names
  another (core/subjects.py): the agents whose panes went with supervisor's tmux server are one alert about
  `tmux:`, naming them all (the trigger event lists them), not one `exited` each.
- A condition (waiting, stalled, deadlock) that fires again while it holds is a duplicate; a one-off trigger
  (done, exited, ...) is a new occurrence each time it fires.
- Items about one agent are collected for `group_wait` from the first one, then written as one message; those
  about another subject, for `group_wait` after the last one.
- A condition still true `repeat_after` after the human was told is told again; when it clears after the human
  was told, a "resolved" follow-up goes out. One that clears before anyone was told is never sent.
- Routing: triggers not in `notify_on` stay quiet; a helper's `done` goes to its parent (an alert with route
  `parent` and no human channel), not to the human, unless `alerts.helper_done: human`.
- Silences hold items back; a condition held back by a silence is told when the silence ends, if still true.
- A subject past its pace (`alerts.max_per_hour`: alerts/pace.py) keeps its items pending until the pace
  allows its next message.

Everything the router knows is in the store, and each step is one transaction that also advances the event
cursor, so a kill -9 at any point neither loses nor repeats an alert.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from supervisor.alerts import pace, silences
from supervisor.alerts.content import FIRING, RESOLVED, AlertContent, Item, build
from supervisor.alerts.outbox import Outbox, get_cursor, set_cursor
from supervisor.config import ALERT_TRIGGERS, AlertsConfig
from supervisor.core import subjects
from supervisor.core.model import ENDED_STATES, parent_of
from supervisor.core.store import Store
from supervisor.core.triggers import STATEFUL, TRIGGER_EVENT

BATCH = 500
ROUTE_HUMAN = "human"
ROUTE_PARENT = "parent"
_ENDED = frozenset(str(state) for state in ENDED_STATES)
_STATEFUL = tuple(str(trigger) for trigger in STATEFUL)
# The events `consume` may apply, as SQL: any other is read past undecoded. A JSON object with a "state" key
# (the store writes it with json.dumps' separators) holds `"state": `; what else holds it is decoded and skipped.
_MAYBE_APPLIED = (f"(kind IN ('{TRIGGER_EVENT}', 'removed', 'created') "
                  """OR (agent IS NOT NULL AND data LIKE '%"state": %'))""")
# Trigger evidence worth showing in a message; the rest (matching rules, reasons already in the summary) is noise.
_EVIDENCE_SHOWN = frozenset({"exit_code", "paths", "commit", "cycle", "pid", "cwd"})


@dataclass(frozen=True)
class Settings:
    """What the router needs from `alerts:` in supervisor.yaml (re-read when the config changes)."""

    repo: str
    notify_on: frozenset[str]
    repeat_after: float | None
    group_wait: float
    channels: tuple[str, ...]
    secrets: tuple[str, ...]
    helper_done_to_human: bool = False
    max_per_hour: int = 30

    @classmethod
    def from_config(cls, config: AlertsConfig, repo: str, channels: tuple[str, ...]) -> Settings:
        secrets = [config.slack.token, config.slack.webhook_url] if config.slack else []
        secrets += [config.email.password] if config.email else []
        return cls(repo=repo, notify_on=frozenset(config.notify_on), repeat_after=config.repeat_after,
                   group_wait=config.group_wait, channels=channels,
                   secrets=tuple(secret for secret in secrets if secret),
                   helper_done_to_human=config.helper_done == "human", max_per_hour=config.max_per_hour)


@dataclass(frozen=True)
class Step:
    cursor: int  # the newest event id considered
    queued: int  # alerts written to the outbox in this step
    next_due: float | None  # when something falls due without a new event (group, repeat, silence end)


@dataclass
class _Condition:
    firing: bool
    occurrence: int
    since: float
    told: bool
    held: bool


class Router:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._paced: set[str] = set()  # subjects held back by their pace, said once each time
        # Each pending subject's pace (pace.next_allowed), read once: only this router writes alerts, and it
        # forgets a subject's when it writes one about it. With `_per_hour`, the max it was read for.
        self._allowed: dict[str, float] = {}
        self._per_hour = 0
        self._applied = 0  # events the last `consume` applied (most events are no alert's business)
        self._last: tuple[Settings, float | None] | None = None  # the last whole step's settings and next due time

    def step(self, settings: Settings, now: float, *, forced: bool = True) -> Step:
        """Apply the new events, then queue what fell due and write the groups that waited enough. Unless
        `forced` (something besides the events changed: a silence, say), a step whose events were none of the
        alerts' business (a state change, a screen, ...) before the next due time only advances the cursor:
        what was pending and due is as the last step left it. The whole step is one transaction (with the
        cursor): a kill at any point leaves it all done or none of it."""
        with self.store.transaction():  # one transaction: the steps below join it
            cursor = self.consume(now)
            # Nothing besides the events changed and nothing fell due by time since the last whole step: no
            # reminder or silence end is due, so `timers` would find nothing (next_due covers what it queues).
            quiet = not forced and self._last is not None and self._last[0] == settings \
                and (self._last[1] is None or now < self._last[1])
            if quiet and not self._applied:
                assert self._last is not None
                return Step(cursor, 0, self._last[1])
            if not quiet:
                self.timers(settings, now)
            queued = self.flush(settings, now)
            due = self.next_due(settings)
        self._last = (settings, due)
        return Step(cursor, queued, due)

    # events -------------------------------------------------------------------------------------------

    @staticmethod
    def wanted(agent: str | None, kind: str, data: dict[str, Any]) -> bool:
        """Whether an event (as written: `Store.listen_events`) may be the alerts' business: what `consume`
        applies is among these (a trigger; an agent created, removed, or in an ended state)."""
        if kind == TRIGGER_EVENT:
            return True
        if agent is None:
            return False
        state = data.get("state")
        return kind in ("removed", "created") or (state is not None and str(state) in _ENDED)

    def consume(self, now: float) -> int:
        """Apply every event after the cursor, in batches, each batch in one transaction with the cursor."""
        self._applied = 0
        while True:
            with self.store.transaction() as db:
                cursor = get_cursor(db)
                newest = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])
                rows = db.execute("SELECT id, ts, agent, kind, data FROM events WHERE id > ? AND id <= ? "
                                  f"AND {_MAYBE_APPLIED} ORDER BY id LIMIT ?", (cursor, newest, BATCH)).fetchall()
                for _id, ts, agent, kind, data in rows:
                    if agent is not None:
                        self._applied += self._apply(db, float(ts), str(agent), str(kind), json.loads(data))
                    elif kind == TRIGGER_EVENT:  # about a subject that is no agent (a host), maybe naming none
                        details = json.loads(data)
                        subject = _subject("", details)
                        if subject and isinstance(details.get("trigger"), str):
                            self._trigger(db, float(ts), subject, details)
                            self._applied += 1
                cursor = int(rows[-1][0]) if len(rows) == BATCH else max(cursor, newest)
                set_cursor(db, cursor)
            if len(rows) < BATCH:
                return cursor

    def _apply(self, db: sqlite3.Connection, ts: float, agent: str, kind: str, data: dict[str, Any]) -> bool:
        """Apply one event about an agent; whether it was any alert's business."""
        if kind == TRIGGER_EVENT and isinstance(data.get("trigger"), str):
            self._trigger(db, ts, agent, data)
        elif kind in ("removed", "created"):  # gone, or a new agent reusing the name: start from nothing
            db.execute("DELETE FROM alert_conditions WHERE agent = ?", (agent,))
            db.execute("DELETE FROM alert_pending WHERE agent = ?", (agent,))
            db.execute("DELETE FROM alert_threads WHERE agent = ?", (agent,))
        elif data.get("state") in _ENDED:
            # An ended agent no longer waits or stalls: its conditions clear quietly (the exit has its own alert).
            marks = ",".join("?" * len(_STATEFUL))
            db.execute(f"UPDATE alert_conditions SET firing = 0, told = 0, held = 0 "
                       f"WHERE agent = ? AND trigger IN ({marks})", (agent, *_STATEFUL))
            db.execute(f"DELETE FROM alert_pending WHERE agent = ? AND status = 'firing' AND trigger IN ({marks})",
                       (agent, *_STATEFUL))
        else:
            return False
        return True

    def _trigger(self, db: sqlite3.Connection, ts: float, name: str, data: dict[str, Any]) -> None:
        trigger = data["trigger"]
        active = bool(data.get("active", True))
        since = float(data.get("since") or ts)
        agent = _subject(name, data)  # from here on, what the alert is about (the `agent` columns hold it)
        condition = _condition(db, agent, trigger)
        pending = db.execute("SELECT status, repeat, count, queued, since, data FROM alert_pending "
                             "WHERE agent = ? AND trigger = ?", (agent, trigger)).fetchone()
        if not subjects.is_agent(agent):  # every agent the subject concerns, so far (an event may name several)
            named = json.loads(pending[5]).get("agents", []) if pending is not None else []
            given = [str(other) for other in data.get("agents") or () if isinstance(other, str)]
            data = {**data, "agents": sorted({*named, *given, *([name] if subjects.is_agent(name) else [])})}
        evidence = json.dumps(data, sort_keys=True, default=str)
        if active:
            if trigger in _STATEFUL and condition is not None and condition.firing:  # a duplicate: newer evidence only
                db.execute("UPDATE alert_conditions SET data = ? WHERE agent = ? AND trigger = ?",
                           (evidence, agent, trigger))
                db.execute("UPDATE alert_pending SET data = ? WHERE agent = ? AND trigger = ? AND status = 'firing'",
                           (evidence, agent, trigger))
                return
            occurrence = condition.occurrence + 1 if condition is not None else 1
            db.execute("INSERT OR REPLACE INTO alert_conditions(agent, trigger, firing, occurrence, since, told, "
                       "told_at, held, data) VALUES (?, ?, 1, ?, ?, 0, NULL, 0, ?)",
                       (agent, trigger, occurrence, since, evidence))
            merging = pending is not None and pending[0] == FIRING and not pending[1]
            count = pending[2] + 1 if merging else 1
            # A subject's group waits for the last of its agents (a server takes them all within a tick or
            # two, maybe across an engine restart); an agent's waits from its first item.
            queued = pending[3] if pending is not None and subjects.is_agent(agent) else ts
            first_since = min(pending[4], since) if merging else since
            _put_pending(db, agent, trigger, FIRING, 0, count, queued, first_since, None, evidence)
            return
        if condition is None or not condition.firing:
            return  # clearing something that never fired (or already cleared)
        if condition.told:
            db.execute("UPDATE alert_conditions SET firing = 0, held = 0, data = ? WHERE agent = ? AND trigger = ?",
                       (evidence, agent, trigger))
            queued = pending[3] if pending is not None else ts
            _put_pending(db, agent, trigger, RESOLVED, 0, 1, queued, condition.since, ts, evidence)
        else:  # nobody was told: nothing to resolve
            db.execute("UPDATE alert_conditions SET firing = 0, held = 0, data = ? WHERE agent = ? AND trigger = ?",
                       (evidence, agent, trigger))
            db.execute("DELETE FROM alert_pending WHERE agent = ? AND trigger = ?", (agent, trigger))

    # time ---------------------------------------------------------------------------------------------

    def timers(self, settings: Settings, now: float) -> None:
        """Queue reminders for conditions still true after repeat_after, and held ones whose silence ended."""
        with self.store.transaction() as db:
            silences.expire(db, now)
            active = silences.active(db, now)
            marks = ",".join("?" * len(_STATEFUL))
            not_pending = ("NOT EXISTS (SELECT 1 FROM alert_pending p "
                           "WHERE p.agent = c.agent AND p.trigger = c.trigger)")
            if settings.repeat_after is not None:
                due = db.execute(
                    f"SELECT agent, trigger, since, data FROM alert_conditions c WHERE firing = 1 AND told = 1 "
                    f"AND trigger IN ({marks}) AND told_at + ? <= ? AND {not_pending}",
                    (*_STATEFUL, settings.repeat_after, now)).fetchall()
                for agent, trigger, since, data in due:
                    repeat = max(1, int((now - since) // settings.repeat_after))
                    _put_pending(db, agent, trigger, FIRING, repeat, 1, now, since, None, data)
            held = db.execute(f"SELECT agent, trigger, since, data FROM alert_conditions c "
                              f"WHERE firing = 1 AND held = 1 AND {not_pending}").fetchall()
            for agent, trigger, since, data in held:
                if not any(silence.matches(agent, trigger) for silence in active):
                    _put_pending(db, agent, trigger, FIRING, 0, 1, now, since, None, data)

    def next_due(self, settings: Settings) -> float | None:
        with self.store.transaction() as db:
            times: list[float] = []
            pending = db.execute("SELECT agent, MIN(queued) FROM alert_pending GROUP BY agent").fetchall()
            for subject, queued in pending:
                times.append(max(float(queued) + settings.group_wait, self._allowed_at(db, subject, settings)))
            self._allowed = {subject: self._allowed[subject] for subject, _ in pending if subject in self._allowed}
            if settings.repeat_after is not None:
                marks = ",".join("?" * len(_STATEFUL))
                row = db.execute(f"SELECT MIN(told_at) FROM alert_conditions WHERE firing = 1 AND told = 1 "
                                 f"AND trigger IN ({marks})", _STATEFUL).fetchone()
                if row[0] is not None:
                    times.append(float(row[0]) + settings.repeat_after)
            expiry = silences.next_expiry(db)
            if expiry is not None:
                times.append(expiry)
        return min(times) if times else None

    # groups -------------------------------------------------------------------------------------------

    def flush(self, settings: Settings, now: float) -> int:
        """Write one alert per subject whose group has waited group_wait; how many alerts were written."""
        written = 0
        with self.store.transaction() as db:
            agents = [row[0] for row in db.execute(
                "SELECT agent FROM alert_pending GROUP BY agent HAVING MIN(queued) + ? <= ? ORDER BY MIN(queued)",
                (settings.group_wait, now))]
            for agent in agents:
                allowed = self._allowed_at(db, agent, settings)
                paced = allowed if allowed > now else None
                if paced is None:
                    self._paced.discard(agent)
                    written += self._flush_subject(db, agent, settings, now)
                elif agent not in self._paced:  # said once per hold, in the log `supervisor events` reads
                    self._paced.add(agent)
                    self.store._append(db, _event_agent(agent), "alerts_paced",  # same transaction
                                       {"subject": agent, "max_per_hour": settings.max_per_hour,
                                        "next_at": round(paced, 3)})
        return written

    def _allowed_at(self, db: sqlite3.Connection, subject: str, settings: Settings) -> float:
        """When the pace allows the next alert about `subject` (0.0: any time), read from the outbox once."""
        if settings.max_per_hour != self._per_hour:
            self._allowed.clear()
            self._per_hour = settings.max_per_hour
        allowed = self._allowed.get(subject)
        if allowed is None:
            allowed = self._allowed[subject] = pace.next_allowed(db, subject, settings.max_per_hour)
        return allowed

    def _flush_subject(self, db: sqlite3.Connection, agent: str, settings: Settings, now: float) -> int:
        self._allowed.pop(agent, None)  # an alert about it is written now (or, rolled back, read again)
        rows = db.execute("SELECT trigger, status, repeat, count, since, until, data FROM alert_pending "
                          "WHERE agent = ? ORDER BY queued, trigger", (agent,)).fetchall()
        db.execute("DELETE FROM alert_pending WHERE agent = ?", (agent,))
        active = silences.active(db, now)
        routed: dict[str, list[Item]] = {ROUTE_HUMAN: [], ROUTE_PARENT: []}
        evidence: dict[str, dict[str, Any]] = {}
        agents: dict[str, None] = {}  # the agents a non-agent subject's alert names, in order
        for trigger, status, repeat, count, since, until, data in rows:
            route = self.route(agent, trigger, settings)
            if route is None:
                continue  # not notified: the condition stays untold
            if route == ROUTE_HUMAN and any(silence.matches(agent, trigger) for silence in active):
                if status == RESOLVED:
                    _set(db, agent, trigger, "told = 0")
                elif repeat:
                    _set(db, agent, trigger, "told_at = ?", now)
                elif trigger in _STATEFUL:
                    _set(db, agent, trigger, "held = 1")
                continue
            if status == FIRING:
                _set(db, agent, trigger, "told = 1, told_at = ?, held = 0", now)
            else:
                _set(db, agent, trigger, "told = 0")
            details = json.loads(data)
            extra = {key: value for key, value in details.items()
                     if key in _EVIDENCE_SHOWN and _small(value)}
            summary = details.get("summary") or trigger
            if not subjects.is_agent(agent):
                agents.update(dict.fromkeys(str(name) for name in details.get("agents") or ()))
                summary = details.get("subject_summary") or summary
            routed[route].append(Item(trigger=trigger, status=status, summary=str(summary),
                                      since=float(since), until=until, repeat=int(repeat), count=int(count),
                                      evidence=extra))
            merged = evidence.setdefault(route, {})
            for key in ("task", "screen") if subjects.is_agent(agent) else ():  # one agent's, not a subject's
                if details.get(key):  # the newest item that has them speaks for the group
                    merged[key] = details[key]
                    if key == "task":
                        merged["task_cut"] = details.get("task_cut")  # how long it is whole, when cut
        written = 0
        for route, items in routed.items():
            if not items:
                continue
            items.sort(key=lambda item: item.status != FIRING)  # firing first, resolved after (stable)
            status = FIRING if items[0].status == FIRING else RESOLVED
            triggers = [item.trigger for item in items]
            channels = settings.channels if route == ROUTE_HUMAN else ()
            details = evidence[route]

            def compose(alert_id: int, items: list[Item] = items, details: dict[str, Any] = details) -> AlertContent:
                return build(alert_id, settings.repo, agent, items, details, now, settings.secrets, tuple(agents))

            alert_id = Outbox.add(db, compose, agent, route, triggers, status, channels, now)
            recipient = {"to": parent_of(agent)} if route == ROUTE_PARENT else {"channels": list(channels)}
            about = {} if subjects.is_agent(agent) else {"subject": agent, "agents": list(agents)}
            self.store._append(db, _event_agent(agent), "alert",  # same transaction
                               {"alert": alert_id, "triggers": triggers, "status": status, "route": route,
                                **recipient, **about})
            written += 1
        return written

    @staticmethod
    def route(agent: str, trigger: str, settings: Settings) -> str | None:
        """Who hears about `trigger` of subject `agent`: the human, the agent's parent, or nobody (None)."""
        if trigger == "done" and subjects.is_agent(agent) and parent_of(agent) is not None \
                and not settings.helper_done_to_human:
            return ROUTE_PARENT
        if trigger in ALERT_TRIGGERS and trigger not in settings.notify_on:
            return None
        return ROUTE_HUMAN


def _subject(agent: str, data: dict[str, Any]) -> str:
    """What a trigger event is about: the subject it names (never an agent's name: that would let one agent's
    event speak for another), else its agent."""
    named = data.get("subject")
    return named if isinstance(named, str) and named and not subjects.is_agent(named) else agent


def _event_agent(subject: str) -> str | None:
    """The `agent` of an event about `subject`: the log's agent column names agents only."""
    return subject if subjects.is_agent(subject) else None


def _condition(db: sqlite3.Connection, agent: str, trigger: str) -> _Condition | None:
    row = db.execute("SELECT firing, occurrence, since, told, held FROM alert_conditions "
                     "WHERE agent = ? AND trigger = ?", (agent, trigger)).fetchone()
    if row is None:
        return None
    return _Condition(bool(row[0]), int(row[1]), float(row[2]), bool(row[3]), bool(row[4]))


def _put_pending(db: sqlite3.Connection, agent: str, trigger: str, status: str, repeat: int, count: int,
                 queued: float, since: float, until: float | None, data: str) -> None:
    db.execute("INSERT OR REPLACE INTO alert_pending(agent, trigger, status, repeat, count, queued, since, until, "
               "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (agent, trigger, status, repeat, count, queued, since, until, data))


def _set(db: sqlite3.Connection, agent: str, trigger: str, assignments: str, *values: Any) -> None:
    db.execute(f"UPDATE alert_conditions SET {assignments} WHERE agent = ? AND trigger = ?",
               (*values, agent, trigger))


def _small(value: Any) -> bool:
    """Evidence worth carrying into the message (exit codes, paths, rules), not screens or blobs."""
    return isinstance(value, int | float | bool) or (isinstance(value, str) and len(value) <= 300) or (
        isinstance(value, list) and len(value) <= 20 and all(isinstance(v, str | int) for v in value))
