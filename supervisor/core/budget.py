"""Budgets (SPEC §14): what a session tree, a helper's subtree or the repository may spend, and which of its
thresholds a spend has crossed. Pure: no store, no engine.

A budget caps cost (`$20`), tokens (`2M tokens`), or both (`$20, 2M tokens`): each is a measure of its own, and
each of its thresholds (80% and 100%) is crossed once. Tokens count everything the CLI reports for a message:
input, output, cache reads and cache writes (as `supervisor usage` totals them).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

THRESHOLDS = (80, 100)  # percent of a budget: a `budget` alert at each, once; `on_budget: stop` at 100
COST, TOKENS = "cost", "tokens"

_COST = re.compile(r"\$\s*(?P<number>\d+(?:\.\d+)?)|(?P<number2>\d+(?:\.\d+)?)\s*(?:\$|usd|dollars?)", re.IGNORECASE)
_TOKENS = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<scale>[kmb])?\s*tokens?", re.IGNORECASE)
_SCALES = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
SHAPE = "write $20, 2M tokens, or both: $20, 2M tokens"


@dataclass(frozen=True)
class Budget:
    cost_usd: float | None = None
    tokens: int | None = None

    def __str__(self) -> str:
        parts = []
        if self.cost_usd is not None:
            parts.append(f"${self.cost_usd:g}")
        if self.tokens is not None:
            parts.append(f"{_count(self.tokens)} tokens")
        return ", ".join(parts) or "none"

    def limits(self) -> dict[str, float]:
        """Each measure this budget caps, and its cap."""
        caps = {COST: self.cost_usd, TOKENS: self.tokens}
        return {measure: float(cap) for measure, cap in caps.items() if cap is not None}

    def widens(self, outer: Budget) -> str | None:
        """What this budget allows beyond `outer` (a helper's against its parent's), or None when it narrows it.
        A measure this budget leaves out is `outer`'s."""
        for measure, cap in self.limits().items():
            bound = outer.limits().get(measure)
            if bound is not None and cap > bound:
                return f"{_shown(measure, cap)} is more than {_shown(measure, bound)}"
        return None

    def within(self, outer: Budget | None) -> Budget:
        """The narrower of the two, measure by measure."""
        if outer is None:
            return self
        cost = min((c for c in (self.cost_usd, outer.cost_usd) if c is not None), default=None)
        tokens = min((t for t in (self.tokens, outer.tokens) if t is not None), default=None)
        return Budget(cost, tokens)

    def as_dict(self) -> dict[str, Any]:
        return {"cost_usd": self.cost_usd, "tokens": self.tokens}


@dataclass(frozen=True)
class Spent:
    """What has been spent so far (against one budget): dollars and tokens."""

    cost_usd: float = 0.0
    tokens: int = 0

    @classmethod
    def of_usage(cls, usage: Mapping[str, Any]) -> Spent:
        """From a `usage` mapping as `ls --json` shows it (input/output/cache tokens, cost_usd)."""
        keys = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        return cls(float(usage.get("cost_usd") or 0.0), sum(int(usage.get(key) or 0) for key in keys))

    def of(self, measure: str) -> float:
        return self.cost_usd if measure == COST else float(self.tokens)


@dataclass(frozen=True)
class Crossing:
    """One threshold of one measure, crossed: `cost` at 80 (%), spent 16.4 of 20."""

    measure: str
    percent: int
    spent: float
    cap: float

    @property
    def key(self) -> str:
        """What is stored so that it is crossed once: `cost:80`."""
        return f"{self.measure}:{self.percent}"

    def describe(self) -> str:
        return f"spent {_shown(self.measure, self.spent)} of {_shown(self.measure, self.cap)} ({self.percent}%)"


def crossed(spent: Spent, budget: Budget, already: Collection[str] = ()) -> list[Crossing]:
    """The thresholds `spent` has reached that are not in `already` (keys of earlier crossings), lowest first."""
    found = []
    for measure, cap in budget.limits().items():
        for percent in THRESHOLDS:
            crossing = Crossing(measure, percent, spent.of(measure), cap)
            if crossing.key not in already and spent.of(measure) >= cap * percent / 100:
                found.append(crossing)
    return sorted(found, key=lambda c: c.percent)


def parse_budget(text: str) -> Budget:
    """`$20`, `2M tokens`, `500k tokens`, `$12.50, 1.5M tokens` → Budget; ValueError saying what is wrong."""
    cost: float | None = None
    tokens: int | None = None
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise ValueError(f"a budget is empty ({SHAPE})")
    for item in items:
        money, count = _COST.fullmatch(item), _TOKENS.fullmatch(item)
        if money is not None and cost is None:
            cost = float(money.group("number") or money.group("number2"))
            if cost <= 0:
                raise ValueError(f"a budget of {item} allows nothing: give more than $0")
        elif count is not None and tokens is None:
            tokens = int(float(count.group("number")) * _SCALES[(count.group("scale") or "").lower()])
            if tokens <= 0:
                raise ValueError(f"a budget of {item} allows nothing: give more than 0 tokens")
        elif money is not None or count is not None:
            raise ValueError(f"{item!r}: a budget gives each of cost and tokens once")
        else:
            raise ValueError(f"not a budget: {item!r} ({SHAPE})")
    return Budget(cost, tokens)


def _count(tokens: float) -> str:
    for suffix, scale in (("B", 1_000_000_000), ("M", 1_000_000), ("k", 1_000)):
        if tokens >= scale and tokens % (scale // 100 or 1) == 0:
            return f"{tokens / scale:g}{suffix}"
    return str(int(tokens)) if tokens == int(tokens) else f"{tokens:g}"


def _shown(measure: str, amount: float) -> str:
    return f"${amount:,.2f}" if measure == COST else f"{_count(amount)} tokens"
