"""Budgets, enforced (SPEC §14): the `budget` trigger at 80% and 100%, and `budget.on_budget: stop` at 100%.

The usage service knows what is spent; its listener (engine/spending.py) calls `budget_check` whenever the spend
of an agent's tree changes (and `repository_budget_check` for the repository's day). Each threshold fires once
per budget: what was crossed is stored with the agent (`extra["budget"]`) or in the store's meta table (the
repository's day), so a new engine, or a spend told again, never alerts twice. A budget that changes
(supervisor.yaml edited) starts its thresholds afresh.

Which budget applies to a tree: a session's is the narrower of `budget.per_session_tree` and its SESSION.md's
`Budget:`; a helper's is its own SESSION.md's (its subtree, within its parent's: core/roles.py checks that).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING

from supervisor.core import subjects
from supervisor.core.budget import Budget, Crossing, Spent, crossed
from supervisor.core.model import Agent
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.helpers import contract_of

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

KEY = "budget"


def budget_of(engine: Engine, agent: Agent) -> Budget | None:
    """The budget of the tree rooted at `agent`, or None when it has none."""
    own = contract_of(agent, engine.paths.root).budget
    if agent.level > 1:
        return own
    config = engine.config.budget.per_session_tree
    return own.within(config) if own is not None else config


def budget_check(engine: Engine, root: str, spent: Spent) -> list[Crossing]:
    """What the tree rooted at `root` has spent, told by the usage service: fire `budget` for each threshold
    newly crossed, and stop the tree at 100% when `on_budget: stop`. Returns the crossings (none when nothing is
    new). Call it without holding another agent's lock."""
    with engine.agent_lock(root):
        agent = engine.store.get_agent(root)
        if agent is None:
            return []
        budget = budget_of(engine, agent)
        if budget is None:
            return []
        record = agent.extra.get(KEY) or {}
        already = record.get("crossed", []) if record.get("of") == str(budget) else []
        found = crossed(spent, budget, already)
        if not found:
            return []
        agent.extra[KEY] = {"of": str(budget), "crossed": [*already, *(c.key for c in found)]}
        stop = _stops(engine, found)
        what = "its session tree" if agent.level == 1 else "its tree"
        with engine.store.transaction():
            engine.store.save_agent(agent, "budget", budget=str(budget), crossed=[c.key for c in found])
            for crossing in found:
                then = " — stopping it (budget.on_budget: stop)" if stop and crossing.percent == 100 else ""
                fire(engine.store, agent, Trigger.BUDGET, f"{what} {crossing.describe()} of its budget{then}",
                     budget=str(budget), measure=crossing.measure, percent=crossing.percent, spent=crossing.spent)
    if stop:
        _stop(engine, [root], f"stopped at its budget ({budget})")
    return found


def repository_budget_check(engine: Engine, spent: Spent, about: str, day: str | None = None) -> list[Crossing]:
    """What all agents of the repository spent in `day` (YYYY-MM-DD, local; today by default), told by the usage
    service: the same as `budget_check` against `budget.per_repository_per_day`; at 100% with `on_budget: stop`,
    every live session tree is stopped. `about`: the agent whose spending moved it (the alert's is the
    repository's, naming that agent)."""
    budget = engine.config.budget.per_repository_per_day
    agent = engine.store.get_agent(about)
    if budget is None or agent is None:
        return []
    day = day or time.strftime("%Y-%m-%d")
    key = f"budget:repo:{day}"
    with _REPOSITORY:
        record = json.loads(engine.store.get_meta(key) or "{}")
        already = record.get("crossed", []) if record.get("of") == str(budget) else []
        found = crossed(spent, budget, already)
        if not found:
            return []
        stop = _stops(engine, found)
        with engine.store.transaction():
            engine.store.set_meta(key, json.dumps({"of": str(budget), "crossed": [*already, *(c.key for c in found)]}))
            for crossing in found:
                then = " — stopping every agent (budget.on_budget: stop)" if stop and crossing.percent == 100 else ""
                summary = f"the repository {crossing.describe()} of its budget for {day}{then}"
                fire(engine.store, agent, Trigger.BUDGET, summary, subject=subjects.REPO, subject_summary=summary,
                     budget=str(budget), measure=crossing.measure, percent=crossing.percent, spent=crossing.spent)
    if stop:
        sessions = [a.name for a in engine.store.agents() if a.level == 1 and a.state.live]
        _stop(engine, sessions, f"stopped at the repository's budget for {day} ({budget})")
    return found


_REPOSITORY = threading.Lock()  # one check of the repository's day at a time: each threshold is told once


def _stops(engine: Engine, found: list[Crossing]) -> bool:
    return engine.config.budget.on_budget == "stop" and any(c.percent == 100 for c in found)


def _stop(engine: Engine, roots: list[str], reason: str) -> None:
    """Stop each tree off the caller's thread (a stop waits for processes to end)."""
    def run() -> None:
        for root in roots:
            try:
                engine.stop_tree(root, reason)
            except Exception:
                log.exception("%s: the stop at its budget failed", root)
                engine.store.append_event(root, "budget_stop_failed", reason=reason)

    threading.Thread(target=run, daemon=True, name="budget-stop").start()

