"""The task board (SPEC §9): jobs that a swarm of fresh sessions claims one at a time, kept in the store.

A task is `open`, `claimed` or `done`. A claim is one BEGIN IMMEDIATE transaction that turns the oldest open
task into a claimed one, so two claimants never get the same task, whichever process or thread asks. A
claim records its holder: an agent's name and its incarnation (the `started_at` of the process that
claimed), or nobody for the human. A claim whose agent is gone, ended, stalled, or started again since is
stale (`stale_reason`) and goes back to the board. Every change appends its event in the same transaction.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.errors import SupervisorError, UsageError

OPEN = "open"
CLAIMED = "claimed"
DONE = "done"
STATES = (OPEN, CLAIMED, DONE)

MAX_TEXT = 64 * 1024
MAX_BATCH = 10_000


_COLUMNS = "id, text, state, holder, incarnation, added_by, created, claimed, done, updated, claims, released"


@dataclass(frozen=True)
class Task:
    id: int
    text: str
    state: str
    holder: str | None
    incarnation: float | None
    added_by: str | None
    created: float
    claimed: float | None
    done: float | None
    updated: float
    claims: int
    released: str | None


@dataclass(frozen=True)
class Actor:
    """Who asks: an agent in one incarnation, or the human (no agent)."""

    agent: str | None = None
    incarnation: float | None = None

    @classmethod
    def of(cls, agent: Agent | None) -> Actor:
        return cls() if agent is None else cls(agent.name, agent.started_at)

    @property
    def label(self) -> str:
        """How events name it."""
        return self.agent or "human"


HUMAN = Actor()


def holder_label(task: Task) -> str:
    return task.holder or "the human"


def stale_reason(name: str, incarnation: float | None, agent: Agent | None) -> str | None:
    """Why an agent's claim no longer stands (None while it does): the agent is gone, ended, stalled, or is
    a new incarnation (restarted since it claimed: its fresh context knows nothing of the claim)."""
    if agent is None:
        return f"{name} is gone"
    if incarnation is not None and agent.started_at != incarnation:
        return f"{name} was started again"
    if agent.state.ended:
        return f"{name} {agent.state}"
    if agent.state == State.STALLED:
        return f"{name} stalled"
    return None


def _summary(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 120 else line[:119] + "…"


class TaskBoard:
    """The tasks table of the engine's database, and every change to it."""

    def __init__(self, store: Store) -> None:
        self.store = store  # its table `tasks` is the store's (supervisor/core/schema.py)

    # reading ------------------------------------------------------------------------------------------

    def tasks(self, state: str | None = None) -> list[Task]:
        if state is not None and state not in STATES:
            raise UsageError(f"unknown task state {state!r}", hint=f"one of: {', '.join(STATES)}")
        query = f"SELECT {_COLUMNS} FROM tasks" + (" WHERE state = ?" if state else "") + " ORDER BY id"
        with self.store.transaction() as db:
            rows = db.execute(query, (state,) if state else ()).fetchall()
        return [Task(*row) for row in rows]

    def agent_claims(self) -> list[Task]:
        """The tasks agents hold (the human's claims never go stale)."""
        with self.store.transaction() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE state = ? AND holder IS NOT NULL ORDER BY id",
                              (CLAIMED,)).fetchall()
        return [Task(*row) for row in rows]

    # changing -----------------------------------------------------------------------------------------

    def add(self, texts: list[str], actor: Actor = HUMAN) -> list[Task]:
        """Add tasks in order, all or none."""
        if not texts:
            raise UsageError("no task to add")
        if len(texts) > MAX_BATCH:
            raise UsageError(f"at most {MAX_BATCH} tasks at once")
        cleaned = [text.strip() for text in texts]
        for text in cleaned:
            if not text:
                raise UsageError("a task needs a text")
            if len(text.encode()) > MAX_TEXT:
                raise UsageError(f"a task is longer than {MAX_TEXT // 1024} KiB; write a file and give its path")
        now = time.time()
        added: list[Task] = []
        with self.store.transaction() as db:
            for text in cleaned:
                cursor = db.execute("INSERT INTO tasks(text, state, added_by, created, updated) VALUES (?, ?, ?, ?, ?)",
                                    (text, OPEN, actor.agent, now, now))
                assert cursor.lastrowid is not None
                task = self._get(db, cursor.lastrowid)
                self._event(db, actor.agent, "task_added", task, by=actor.label)
                added.append(task)
        return added

    def claim(self, actor: Actor = HUMAN) -> Task | None:
        """The oldest open task, now claimed by `actor`; None when none is open."""
        now = time.time()
        with self.store.transaction() as db:  # BEGIN IMMEDIATE: one claimant at a time, across processes too
            row = db.execute("SELECT id FROM tasks WHERE state = ? ORDER BY id LIMIT 1", (OPEN,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE tasks SET state = ?, holder = ?, incarnation = ?, claimed = ?, updated = ?, "
                       "claims = claims + 1 WHERE id = ?", (CLAIMED, actor.agent, actor.incarnation, now, now, row[0]))
            task = self._get(db, row[0])
            self._event(db, actor.agent, "task_claimed", task, by=actor.label)
            return task

    def done(self, task_id: int, actor: Actor = HUMAN) -> Task:
        """Mark the task done. An agent finishes its own claim, or an open task (one released from it while
        it was stalled, say: the work is done all the same), never another's; the human finishes any."""
        now = time.time()
        with self.store.transaction() as db:
            task = self._get(db, task_id)
            if task.state == DONE:
                raise SupervisorError(f"task {task_id} is already done (by {holder_label(task)})")
            if task.state == CLAIMED and actor.agent is not None and task.holder != actor.agent:
                raise SupervisorError(f"task {task_id} is claimed by {holder_label(task)}, not by {actor.agent}",
                                      hint="an agent finishes only the tasks it claimed")
            db.execute("UPDATE tasks SET state = ?, holder = ?, incarnation = NULL, done = ?, updated = ? WHERE id = ?",
                       (DONE, actor.agent, now, now, task_id))
            finished = self._get(db, task_id)
            self._event(db, actor.agent, "task_done", finished, by=actor.label)
            return finished

    def release(self, task_id: int, actor: Actor = HUMAN) -> Task:
        """Put a claimed task back on the board: an agent its own claim, the human any claim."""
        with self.store.transaction() as db:
            task = self._get(db, task_id)
            if task.state != CLAIMED:
                raise SupervisorError(f"task {task_id} is not claimed (it is {task.state})")
            if actor.agent is not None and task.holder != actor.agent:
                raise SupervisorError(f"task {task_id} is claimed by {holder_label(task)}, not by {actor.agent}",
                                      hint="an agent releases only its own claims")
            return self._reopen(db, task, f"released by {actor.agent or 'the human'}", actor.agent)

    def release_stale(self, task: Task, reason: str) -> Task | None:
        """Put back an agent's claim found stale, unless it changed since it was read (None then)."""
        with self.store.transaction() as db:
            current = self._get(db, task.id)
            if (current.state, current.holder, current.incarnation) != (CLAIMED, task.holder, task.incarnation):
                return None
            return self._reopen(db, current, reason, task.holder)

    # ----------------------------------------------------------------------------------------------------

    def _reopen(self, db: sqlite3.Connection, task: Task, reason: str, event_agent: str | None) -> Task:
        db.execute("UPDATE tasks SET state = ?, holder = NULL, incarnation = NULL, claimed = NULL, updated = ?, "
                   "released = ? WHERE id = ?", (OPEN, time.time(), reason, task.id))
        reopened = self._get(db, task.id)
        self._event(db, event_agent, "task_released", reopened, holder=task.holder or "human", reason=reason)
        return reopened

    def _get(self, db: sqlite3.Connection, task_id: int) -> Task:
        row = db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise UsageError(f"no task {task_id}", hint="`supervisor task ls` lists the tasks")
        return Task(*row)

    def _event(self, db: sqlite3.Connection, agent: str | None, kind: str, task: Task, **data: Any) -> None:
        # The event joins the change's transaction: the log never misses nor invents a change.
        self.store._append(db, agent, kind, {"task": task.id, "text": _summary(task.text), **data})
