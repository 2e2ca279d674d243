"""Usage totals: per agent, per session tree, per plan, per day and for the repository.

This is the interface for budgets and alerts: `Usage` (tokens, cost, model, context), `per_agent` and `per_tree`
from the store (through a `Ledger`) and the prices in force. The engine's `UsageService` keeps the per-agent
figures current and calls its listeners with the names of agents whose usage changed.

Cost is the price table's (with `prices:` over it) times the tokens of each model. Tokens of a model without a
price are counted, never priced: `cost_usd` leaves them out (`unpriced_tokens` says how many), and is None when
no token has a price at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from supervisor.core.model import root_of
from supervisor.usage.ledger import Ledger, Sum
from supervisor.usage.prices import Prices
from supervisor.usage.records import Context

GROUPINGS = ("agent", "tree", "plan", "day")


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = 0.0
    unpriced_tokens: int = 0  # tokens of models without a price: counted, not in cost_usd
    model: str | None = None  # the newest response's model
    last_at: float | None = None  # the newest response's time
    context_tokens: int | None = None
    context_window: int | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def context_percent(self) -> float | None:
        if self.context_tokens is None or not self.context_window:
            return None
        return round(100.0 * self.context_tokens / self.context_window, 1)

    def __add__(self, other: Usage) -> Usage:
        """Both together (a tree, a plan): tokens and cost add up; context is an agent's own, so none."""
        newer = self if (self.last_at or 0) >= (other.last_at or 0) else other
        costs = [c for c in (self.cost_usd, other.cost_usd) if c is not None]
        priced = (self.cost_usd is not None and self.tokens) or (other.cost_usd is not None and other.tokens)
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_tokens + other.cache_read_tokens,
                     self.cache_write_tokens + other.cache_write_tokens,
                     sum(costs) if priced or not (self.tokens or other.tokens) else None,
                     self.unpriced_tokens + other.unpriced_tokens, newer.model, newer.last_at)

    def view(self) -> dict[str, Any]:
        """The `usage` of `ls --json` / `show --json` (and of `supervisor usage --json`)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "unpriced_tokens": self.unpriced_tokens,
            "model": self.model,
            "context_percent": self.context_percent,
        }


NONE = Usage()


def folded(sums: Iterable[Sum], prices: Prices) -> Usage:
    """The usage of these sums together, priced."""
    total = NONE
    for s in sums:
        price = prices.get(s.model)
        tokens = s.input + s.output + s.cache_read + s.cache_write
        cost = price.cost(s.input, s.output, s.cache_read, s.cache_write) if price is not None else None
        total = total + Usage(s.input, s.output, s.cache_read, s.cache_write, cost if tokens else 0.0,
                              0 if price is not None else tokens, s.model, s.last)
    return total


def with_context(usage: Usage, context: Context | None, prices: Prices) -> Usage:
    if context is None:
        return usage
    window = context.window or prices.window(context.model)
    return replace(usage, context_tokens=context.tokens, context_window=window,
                   model=usage.model if usage.last_at and usage.last_at > context.ts else context.model or usage.model)


def per_agent(ledger: Ledger, prices: Prices, agents: list[str] | None = None,
              since: float | None = None) -> dict[str, Usage]:
    """Each agent's usage (of `agents`, None: every agent with records; since `since`), with its context."""
    by_agent: dict[str, list[Sum]] = {}
    for s in ledger.sums(agents, since):
        by_agent.setdefault(s.agent, []).append(s)
    contexts = ledger.contexts(agents)
    if since is not None:
        contexts = {}  # the context is now's, not a period's
    names = set(by_agent) | {name for name in contexts if agents is None or name in agents}
    return {name: with_context(folded(by_agent.get(name, []), prices), contexts.get(name), prices) for name in names}


def per_tree(agents: Mapping[str, Usage]) -> dict[str, Usage]:
    """Each session tree's usage (a session and all its helpers), by the session's name."""
    trees: dict[str, Usage] = {}
    for name, usage in agents.items():
        root = root_of(name)
        trees[root] = trees.get(root, NONE) + usage
    return trees


def of_tree(ledger: Ledger, prices: Prices, root: str) -> Usage:
    """What the tree rooted at `root` (a session, or a helper and its own helpers) has spent: what its budget
    is checked against (helpers removed since it was created included)."""
    return folded(ledger.tree_sums(root), prices)


def of_repository(ledger: Ledger, prices: Prices, since: float) -> Usage:
    """What every agent of the repository spent since `since`, removed agents included (a day's budget)."""
    return folded(ledger.sums(None, since, removed=True), prices)


def total(usages: Iterable[Usage]) -> Usage:
    result = NONE
    for usage in usages:
        result = result + usage
    return result


def grouped(ledger: Ledger, prices: Prices, by: str, since: float | None = None,
            plans: Mapping[str, str | None] | None = None) -> list[tuple[str, float | None, Usage]]:
    """`supervisor usage --by`: (label, removed, usage) rows, removed agents' spending included. By agent, each
    removed agent is a row of its own (`removed`: when it was removed), apart from a later agent of its name;
    `removed` is None for every other row. `plans`: each agent's plan file (agents outside a plan are `-`)."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}")
    groups: dict[tuple[str, float | None], list[Sum]] = {}
    for s in ledger.sums(None, since, removed=True, by_day=by == "day"):
        if by == "agent":
            label = s.agent
        elif by == "tree":
            label = root_of(s.agent)
        elif by == "plan":
            label = (plans or {}).get(s.agent) or "-"
        else:
            label = s.day or "-"
        groups.setdefault((label, s.removed if by == "agent" else None), []).append(s)
    rows = [(label, removed, folded(sums, prices)) for (label, removed), sums in groups.items()]
    return sorted(rows, key=lambda row: (row[0], row[1] is None, row[1] or 0.0))


def day_start(days_ago: int = 0) -> float:
    """Local midnight `days_ago` days back (the start of `--by day` rows and of a daily budget)."""
    now = datetime.now().astimezone()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp() - days_ago * 86400
