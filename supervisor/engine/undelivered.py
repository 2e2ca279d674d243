"""An agent whose task could not be typed into it waits for a human, with the reason.

Left alone it would sit at its prompt without its task, and look `idle` (and, after any output, report a
finished turn it never had). It is `waiting` instead, with a `waiting` alert, until a text is delivered to it
(`supervisor send`), its hooks or screen show it working (a human typed the task), or it is restarted. The
mark is kept in the agent's record, so a new engine keeps it waiting too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.delivery import DeliveryError
from supervisor.errors import SupervisorError

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

MARK = "undelivered"  # in agent.extra: why its task is not in it
WEAK = frozenset({"activity", "no idle marker"})  # the watcher's rules that do not show a turn under way


def hold(engine: Engine, agent: Agent, error: DeliveryError, *, alive: bool) -> SupervisorError:
    """Make the agent wait for a human (unless it ended meanwhile); the error its start reports."""
    reason = f"its task could not be delivered: {error.message}"
    if alive:
        agent.extra[MARK] = reason
        agent.waiting_reason = reason
        screen = engine.screen_tail(agent)
        with engine.store.transaction():
            engine.set_state(agent, State.WAITING, "task_undelivered", rule=MARK, reason=reason)
            fire(engine.store, agent, Trigger.WAITING, f"waiting: {reason}", screen=screen, rule=MARK,
                 reason=reason)
    return SupervisorError(f"{agent.name}: {reason}",
                           hint=f"it waits for you: `supervisor send {agent.name} - < FILE` types the task again, "
                                f"`supervisor attach {agent.name}` shows why")


def release(engine: Engine, agent: Agent) -> None:
    """A text was delivered: an agent that waited for its task waits no more (the caller saves the agent)."""
    if agent.extra.pop(MARK, None) is None:
        return
    agent.waiting_reason = None
    fire(engine.store, agent, Trigger.WAITING, "no longer waiting", active=False)


def still_waiting(agent: Agent, new: State, rule: str | None) -> str | None:
    """For the watcher: the reason to keep the agent waiting instead of `new`, or None. It stops waiting once
    its hooks or its screen say it works (a human typed the task); output alone says nothing (what was typed
    may have been echoed), nor does a dialog, which is waiting with a reason of its own."""
    reason = agent.extra.get(MARK)
    if reason is None or new == State.WAITING:
        return None
    if new == State.WORKING and rule not in WEAK:
        del agent.extra[MARK]  # saved with the change of state that follows
        return None
    return str(reason)
