"""Agents on a host the engine cannot reach (SPEC §12): what a host going down and coming back does to them.

Down: every live agent on the host becomes `unreachable`, its state kept as `last_state` (it runs on there,
as far as anyone knows), and one `host_down` alert about `host:NAME` names them all — one per drop, not one
per agent. Back: each is judged again from its pane there and what its hooks spooled meanwhile (readopt.py),
starting from its `last_state`, or returns to it when nothing can be read there yet; and the alert gets its
"resolved" follow-up.

The state changes here are not judgements of the agent (`Engine.set_state`'s): an agent out of reach did not
leave `waiting` or `limited`, so their conditions and reasons stay as they were, to hold again on its return.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire_about

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

SUBJECT = "host:"  # + the host's name: what its alerts are about (core/subjects.py)
DOWN_MARK = "host_down:"  # + the host's name: a meta key while its host_down alert is owed a "resolved"
BACK_TO = State.WORKING  # an unreachable agent with no last state (never expected): unsure, so working


def host_down(engine: Engine, host: str, error: str) -> list[str]:
    """`host` cannot be reached (`error`: why, in one line): its live agents become unreachable and one
    host_down trigger names them (a second while it is still firing is the same alert). Their names."""

    def away(agent: Agent) -> None:
        if agent.state != State.UNREACHABLE:
            agent.last_state = agent.state
            _move(engine, agent, State.UNREACHABLE, reason=f"host {host} is down: {error}",
                  last_state=str(agent.last_state))

    names = _each(engine, host, lambda agent: agent.state.live, away)
    store = engine.store
    with store.transaction():
        store.append_event(None, "host_down", host=host, error=error, agents=names)
        fire_about(store, SUBJECT + host, Trigger.HOST_DOWN, f"{error} ({_count(names)})", names, host=host,
                   error=error)
        store.set_meta(DOWN_MARK + host, str(time.time()))
    return names


def host_up(engine: Engine, host: str, judge: Callable[[Agent, State], bool] | None = None) -> list[str]:
    """`host` answers again: each unreachable agent is judged again from what is true there now (`judge`, from
    its last state; supervisor/engine/readopt.py), or returns to its last state when it cannot be; a host_down
    alert that fired is resolved. Their names."""

    def back(agent: Agent) -> None:
        state = agent.last_state or BACK_TO
        agent.last_state = None
        if judge is not None and judge(agent, state):
            fresh = engine.store.get_agent(agent.name)
            if fresh is None or fresh.state != State.UNREACHABLE:
                return  # judged, and recorded so
            agent.state = State.UNREACHABLE  # judged to be as it was: recorded below
        _move(engine, agent, state, reason=f"host {host} is back")
        engine.watcher.decide_now(agent.name)  # from what its hooks told, spooled ones included

    names = _each(engine, host, lambda agent: agent.state == State.UNREACHABLE, back)
    store = engine.store
    with store.transaction():
        store.append_event(None, "host_up", host=host, agents=names)
        _resolve(engine, host, f"reachable again ({_count(names)})", names)
    return names


def forgotten(engine: Engine, host: str) -> None:
    """`host` left supervisor.yaml: a host_down alert about it would never be resolved by its return."""
    _resolve(engine, host, "no longer in supervisor.yaml", [])


def _resolve(engine: Engine, host: str, summary: str, names: list[str]) -> None:
    store = engine.store
    with store.transaction() as db:
        if store.get_meta(DOWN_MARK + host) is not None:
            fire_about(store, SUBJECT + host, Trigger.HOST_DOWN, summary, names, active=False, host=host)
            db.execute("DELETE FROM meta WHERE key = ?", (DOWN_MARK + host,))


def _each(engine: Engine, host: str, wanted: Callable[[Agent], bool], change: Callable[[Agent], None]) -> list[str]:
    """`change` each agent on `host` that is `wanted`, read again under its lock; the names of those."""
    names = []
    for candidate in engine.store.agents():
        if candidate.host != host or not wanted(candidate):
            continue
        with engine.agent_lock(candidate.name):
            agent = engine.store.get_agent(candidate.name)
            if agent is not None and agent.host == host and wanted(agent):
                change(agent)
                names.append(agent.name)
    return names


def _move(engine: Engine, agent: Agent, state: State, **data: Any) -> None:
    """The agent in `state`, recorded with a `state` event (the caller holds its lock)."""
    previous = agent.state
    agent.state = state
    agent.state_since = time.time()
    engine.store.save_agent(agent, "state", previous=str(previous), state=str(state), host=agent.host, **data)


def _count(names: list[str]) -> str:
    if not names:
        return "no agents on it"
    return f"{len(names)} agent{'s' if len(names) > 1 else ''}: {', '.join(names)}"
