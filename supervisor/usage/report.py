"""`supervisor usage` and the usage lines of `show`: what the engine's usage request answers, as text."""

from __future__ import annotations

import time
from typing import Any


def tokens(count: int | None) -> str:
    """12, 4.5k, 1.2M."""
    if count is None:
        return "-"
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def cost(usage: dict[str, Any]) -> str:
    """$1.23; `-` when nothing was recorded or no token has a price; a `+` when some tokens of a model with no
    price are not in it."""
    value = usage.get("cost_usd")
    if value is None or not _total(usage):
        return "-"
    text = f"${value:.2f}" if value >= 0.01 or not value else f"${value:.4f}"
    return text + ("+" if usage.get("unpriced_tokens") else "")


def context(usage: dict[str, Any]) -> str:
    percent = usage.get("context_percent")
    return "-" if percent is None else f"{percent:.0f}%"


def _total(usage: dict[str, Any]) -> int:
    return sum(int(usage.get(key) or 0) for key in
               ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"))


def summed(views: list[dict[str, Any]]) -> dict[str, Any]:
    """Usage views added up (a tree, the repository): tokens and cost; a cost only where some token had one."""
    keys = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "unpriced_tokens")
    total: dict[str, Any] = {key: sum(int(v.get(key) or 0) for v in views) for key in keys}
    costs = [float(v["cost_usd"]) for v in views if v.get("cost_usd") is not None]
    total["cost_usd"] = round(sum(costs), 6) if costs else (None if _total(total) else 0.0)
    return total


def show_lines(usage: dict[str, Any]) -> list[str]:
    """What `show` prints about an agent's usage."""
    if not _total(usage):
        return []
    lines = [f"{'usage:':<17} {tokens(usage['input_tokens'])} in, {tokens(usage['output_tokens'])} out, "
             f"{tokens(usage['cache_read_tokens'])} cache read, {tokens(usage['cache_write_tokens'])} cache written",
             f"{'cost:':<17} {cost(usage)}" + (f" ({tokens(usage['unpriced_tokens'])} tokens of a model with no price:"
                                                " set it under prices: in supervisor.yaml)"
                                                if usage.get("unpriced_tokens") else "")]
    if usage.get("model"):
        lines.append(f"{'model:':<17} {usage['model']}")
    if usage.get("context_percent") is not None:
        lines.append(f"{'context:':<17} {context(usage)} of its window in use")
    return lines


def table(answer: dict[str, Any]) -> str:
    """`supervisor usage` as a table, with the total last."""
    heading = {"agent": "AGENT", "tree": "TREE", "plan": "PLAN", "day": "DAY"}[answer["by"]]
    rows = [[heading, "IN", "OUT", "CACHE R", "CACHE W", "COST", "CONTEXT", "MODEL"]]
    for row in answer["rows"]:
        label = row["key"] + (" (removed)" if row.get("removed") else "")
        rows.append([label, tokens(row["input_tokens"]), tokens(row["output_tokens"]),
                     tokens(row["cache_read_tokens"]), tokens(row["cache_write_tokens"]), cost(row), context(row),
                     row.get("model") or "-"])
    total = answer["total"]
    rows.append(["total", tokens(total["input_tokens"]), tokens(total["output_tokens"]),
                 tokens(total["cache_read_tokens"]), tokens(total["cache_write_tokens"]), cost(total), "", ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) if i < 7 else cell
                       for i, cell in enumerate(r)).rstrip() for r in rows]
    since = f" since {answer['since']}" if answer.get("since") else ""
    note = "" if answer["rows"] else f"no usage recorded{since} yet\n"
    return note + "\n".join(lines)


def since_time(text: str | None) -> float | None:
    """`--since 1d` as a time; raises ValueError for what is not a duration."""
    from supervisor.core.durations import parse_duration

    return None if text is None else time.time() - parse_duration(text)
