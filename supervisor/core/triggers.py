"""Triggers: conditions about one agent that a human may need to hear about (SPEC §5).

The watcher and the engine decide when a condition becomes true or clears and append a `trigger` event to
the store's log; the alert router reads the log from its own durable cursor and turns those events into
notifications. So detection never waits on a channel, and no trigger is lost when the engine restarts.

A `trigger` event's data:
    trigger   one of Trigger
    active    True when the condition starts, False when it clears ("resolved")
    summary   one line saying what happened, e.g. "waiting for approval: Bash(rm -rf build/)"
    task      the agent's task (may be None), its first TASK_KEPT characters
    task_cut  present when the task was cut: how many characters it has whole
    screen    the last lines of its screen (list of str)
    since     epoch seconds when the condition started
    ...       trigger-specific evidence (exit_code, paths, commit, cycle, rule)
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from supervisor.core.model import Agent
from supervisor.core.store import Store

TRIGGER_EVENT = "trigger"
TASK_KEPT = 64 * 1024  # of the task, in each trigger event (and so in each alert and each `changes` answer)


class Trigger(StrEnum):
    WAITING = "waiting"
    DONE = "done"
    STALLED = "stalled"
    TIMEOUT = "timeout"
    ERRORS = "errors"
    BOUNDARY = "boundary"
    EXITED = "exited"
    DEADLOCK = "deadlock"
    ESCAPE = "escape"
    MERGE = "merge"  # an automatic merge stopped: a conflict or a failing merge.check
    LIMITED = "limited"  # a usage or rate limit holds the agent until its reset
    BUDGET = "budget"  # spending crossed 80% or 100% of a budget
    TAMPER = "tamper"  # a branch moved by someone who may not move it (a ref update not made by its worktree)
    CONTEXT = "context"  # an agent's context window is nearly full (limits.context_alert); resolved when it drops
    HOST_DOWN = "host_down"  # a host of `hosts:` cannot be reached (about `host:NAME`); resolved when it is back


# Conditions that stay true until something clears them; the others are one-off occurrences.
STATEFUL = frozenset({Trigger.WAITING, Trigger.STALLED, Trigger.DEADLOCK, Trigger.LIMITED, Trigger.HOST_DOWN})


def fire(store: Store, agent: Agent, trigger: Trigger, summary: str, *, active: bool = True,
         screen: list[str] | None = None, since: float | None = None, **evidence: Any) -> int:
    """Record that `trigger` became true (or, with active=False, cleared) for `agent`."""
    task = agent.task
    if task is not None and len(task) > TASK_KEPT:
        evidence["task_cut"] = len(task)
        task = task[:TASK_KEPT]
    return store.append_event(
        agent.name, TRIGGER_EVENT, trigger=str(trigger), active=active, summary=summary, task=task,
        screen=screen or [], since=since if since is not None else time.time(), **evidence,
    )


def fire_about(store: Store, subject: str, trigger: Trigger, summary: str, agents: list[str], *,
               active: bool = True, since: float | None = None, **evidence: Any) -> int:
    """Record that `trigger` became true (or cleared) about `subject`, something that is not one agent
    (core/subjects.py: e.g. `host:box2`), naming the `agents` it concerns (maybe none). The event belongs to
    no agent: the router reads the subject from it."""
    return store.append_event(
        None, TRIGGER_EVENT, trigger=str(trigger), active=active, summary=summary, subject=subject,
        subject_summary=summary, agents=agents, since=since if since is not None else time.time(), **evidence,
    )
