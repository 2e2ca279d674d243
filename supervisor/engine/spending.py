"""What new usage sets off (SPEC §14): each affected tree's spending checked against its budget, the repository's
day against its own, and the context alert. The usage service calls `SpendingWatch` from its own thread after a
pass that read new records, with the names of the agents whose usage changed: never from the watch loop, and
never holding one agent's lock while it takes another's (each check takes the lock of the agent it writes).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from supervisor.core.budget import Spent
from supervisor.core.model import level_of, root_of
from supervisor.engine import context_alert
from supervisor.engine.budgets import budget_check, budget_of, repository_budget_check
from supervisor.usage import totals

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)


def trees_of(changed: set[str]) -> list[str]:
    """The trees whose spending moved: each agent's session tree, and the subtree of each helper on its way up
    (itself included), which counts when that helper has a budget of its own."""
    roots = set()
    for name in changed:
        roots.add(root_of(name))
        parts = name.split(".")
        roots.update(".".join(parts[:depth]) for depth in range(2, len(parts) + 1))
    return sorted(roots, key=lambda root: (level_of(root), root))


class SpendingWatch:
    """The usage service's listener: budgets, then the context alert."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, changed: set[str]) -> None:
        for step in (self.check_trees, self.check_repository, self.check_context):
            try:
                step(changed)
            except Exception:  # one failed check must not keep the others from running
                log.exception("usage: %s failed for %s", step.__name__, sorted(changed))
                self.engine.store.append_event(None, "spending_check_failed", check=step.__name__,
                                               agents=sorted(changed))

    def check_trees(self, changed: set[str]) -> None:
        engine = self.engine
        for root in trees_of(changed):
            agent = engine.store.get_agent(root)
            if agent is None or budget_of(engine, agent) is None:
                continue  # no budget: its spending is not even summed
            usage = totals.of_tree(engine.usage.ledger, engine.usage.prices(), root)
            budget_check(engine, root, Spent.of_usage(usage.view()))

    def check_repository(self, changed: set[str]) -> None:
        engine = self.engine
        if engine.config.budget.per_repository_per_day is None or not changed:
            return
        start = totals.day_start()
        usage = totals.of_repository(engine.usage.ledger, engine.usage.prices(), start)
        about = next((name for name in sorted(changed) if engine.store.get_agent(name) is not None), None)
        if about is not None:
            day = datetime.fromtimestamp(start).strftime("%Y-%m-%d")
            repository_budget_check(engine, Spent.of_usage(usage.view()), about, day)

    def check_context(self, changed: set[str]) -> None:
        usage = self.engine.usage.per_agent()
        for name in sorted(changed):
            if name in usage:
                context_alert.check(self.engine, name, usage[name])
