"""One request that acts on many agents: `stop`, `restart`, `approve`, `deny`, `send` and `rm` given several
names, `--all`, `--state S` or `--host H` (the `each` request).

Each agent is handled by the same request a single name uses (`op_stop`, …), so its locks and refusals are
the ones a single name gets; a refusal of one is that one's result, and the others still act. The selection
is made here, against the store as it is now, so a name is acted on once: given twice, it is one; for `stop`
and `rm`, which take an agent with its helpers, a helper whose parent is selected too goes with it. A name
that does not exist refuses the whole request before anything is done: a list with a typo in it is not what
the user meant, and half of a `stop` or `rm` cannot be taken back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent, State, validate_name
from supervisor.engine import views
from supervisor.engine.desk import Desk
from supervisor.engine.params import check_params
from supervisor.engine.server_ended import RESTORABLE
from supervisor.errors import SupervisorError, UsageError
from supervisor.hosts import placement
from supervisor.suggest import did_you_mean

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

TREE_VERBS = frozenset({"stop", "rm"})  # these act on the agent with all its helpers
STOP_WORKERS = 8  # stops wait out each agent's grace period: many at once, not one after another


def _stoppable(agent: Agent) -> bool:
    return agent.state.live or agent.state == State.QUEUED or (
        agent.state == State.EXITED and bool(agent.extra.get("restart_at") or agent.extra.get(RESTORABLE)))


# What `--all` selects for each verb: every agent the verb can act on.
APPLIES: dict[str, Callable[[Agent], bool]] = {
    "stop": _stoppable,
    "restart": lambda a: a.state != State.QUEUED,  # a queued one starts when its plan says so
    "approve": lambda a: a.state == State.WAITING,
    "deny": lambda a: a.state == State.WAITING,
    "send": lambda a: a.state.live and a.pane is not None,
    "rm": lambda a: True,
}
VERBS = tuple(APPLIES)


def unknown_agent(name: str, known: list[str]) -> UsageError:
    """`no agent named 'autth'`, with the closest existing name as the hint."""
    return UsageError(f"no agent named {name!r}", hint=did_you_mean(name, known) or "`supervisor ls` lists the agents")


def select(agents: list[Agent], verb: str, names: list[str], every: bool, states: list[str],
           hosts: list[str] | None = None) -> list[Agent]:
    """The agents to act on, in tree order, each once: the named ones, and those `every`, `states` and/or
    `hosts` pick (`every`: those the verb applies to; `states`: those in one of the states; `hosts`: those on
    one of the hosts, and, without `states`, those of them the verb applies to; together: every condition)."""
    hosts = list(hosts or [])
    by_name = {agent.name: agent for agent in agents}
    for name in names:
        validate_name(name)
    missing = [name for name in dict.fromkeys(names) if name not in by_name]
    if missing:
        error = unknown_agent(missing[0], list(by_name))
        if len(missing) > 1:
            error.message = f"no agents named {', '.join(map(repr, missing))}"
        error.hint = f"{error.hint}; nothing was done" if error.hint else "nothing was done"
        raise error
    wanted = set()
    for state in states:
        if state not in {s.value for s in State}:
            raise UsageError(f"no state {state!r}", hint=did_you_mean(state, [s.value for s in State])
                             or f"states: {', '.join(s.value for s in State)}")
    chosen = set(names)
    every = every or bool(hosts and not states)  # `--host H`: all of H's that the verb applies to
    if every or states:
        for agent in agents:
            if (not every or APPLIES[verb](agent)) and (not states or agent.state in states) and \
                    (not hosts or agent.host in hosts):
                wanted.add(agent.name)
    chosen |= wanted
    return [agent for agent in views.tree_order(agents) if agent.name in chosen]


class BulkDesk(Desk):
    """The `each` request (a service without a thread of its own)."""

    def op_each(self, method: str, names: list[str] | None = None, every: bool = False,
                states: list[str] | None = None, params: dict[str, Any] | None = None,
                hosts: list[str] | None = None) -> dict[str, Any]:
        """Do `method` to each selected agent; per agent: `ok` and its `result`, or its `error` and `hint`
        (and `with`: the parent it was stopped or removed with)."""
        if method not in APPLIES:
            raise UsageError(f"each: {method!r} is not one of {', '.join(VERBS)}")
        if not names and not every and not states and not hosts:
            raise UsageError("name the agents, or give --all, --state or --host")
        extra = dict(params or {})
        handler = self.engine.handler(method)
        check_params(method, handler, {"name": "x", **extra})  # before anything is done
        agents = self.engine.store.agents()
        for host in hosts or []:  # a host that is not there is a typo, not "nothing on it"
            placement.check_host(self.engine.config, host, {agent.host for agent in agents})
        chosen = select(agents, method, list(names or []), every, list(states or []), list(hosts or []))
        if method == "stop":
            return {"method": method, "results": self._stops(chosen, extra)}
        results: list[dict[str, Any]] = []
        done: set[str] = set()
        for agent in chosen:
            parent = self._done_ancestor(agent.name, done) if method in TREE_VERBS else None
            if parent is not None:
                results.append({"name": agent.name, "ok": True, "with": parent})
                continue
            outcome = self._one(handler, method, agent.name, extra)
            results.append(outcome)
            if outcome["ok"]:
                done.add(agent.name)
        return {"method": method, "results": results}

    def _stops(self, chosen: list[Agent], extra: dict[str, Any]) -> list[dict[str, Any]]:
        """Stops, each tree at once (a helper selected with its parent goes with it): parallel, as each waits
        out its own grace period; the trees do not overlap, so no agent is stopped twice."""
        names = {agent.name for agent in chosen}
        roots = [agent.name for agent in chosen if self._ancestor_in(agent.name, names) is None]
        handler = self.engine.op_stop
        with ThreadPoolExecutor(max_workers=min(STOP_WORKERS, max(len(roots), 1))) as pool:
            outcomes = dict(zip(roots, pool.map(lambda name: self._one(handler, "stop", name, extra), roots),
                                strict=True))
        results = []
        for agent in chosen:
            if agent.name in outcomes:
                results.append(outcomes[agent.name])
                continue
            parent = self._ancestor_in(agent.name, names)
            assert parent is not None
            ok = bool(outcomes.get(parent, {}).get("ok"))
            results.append({"name": agent.name, "ok": True, "with": parent} if ok else
                           self._one(handler, "stop", agent.name, extra))
        return results

    @staticmethod
    def _ancestor_in(name: str, names: set[str]) -> str | None:
        parts = name.split(".")
        return next((".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in names), None)

    def _done_ancestor(self, name: str, done: set[str]) -> str | None:
        return self._ancestor_in(name, done)

    @staticmethod
    def _one(handler: Callable[..., Any], method: str, name: str, extra: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"name": name, "ok": True, "result": handler(name=name, **extra)}
        except SupervisorError as exc:
            return {"name": name, "ok": False, "error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
        except Exception as exc:  # a fault in one is reported as that one's; the others still act
            log.exception("%s %s failed", method, name)
            return {"name": name, "ok": False, "error": f"internal error: {exc}", "hint": "see the engine's log",
                    "exit_code": 1}
