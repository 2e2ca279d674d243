"""How the command line words what it shows, the same on this machine and in an agent's pane on a host (the host
program's client): a duration in short, an age, a table. Standard library only."""

from __future__ import annotations

import time
from datetime import datetime


def format_duration(seconds: float) -> str:
    """Compact human form: `45s`, `12m`, `1h30m`, `2d3h`."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m{secs}s" if secs and minutes < 10 else f"{minutes}m"


def age(iso: str | None) -> str:
    """How long ago an ISO 8601 time was (`-` for none)."""
    if not iso:
        return "-"
    then = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    return format_duration(time.time() - then)


def table(rows: list[list[str]]) -> str:
    """Rows in columns two spaces apart; the last column as it is (not padded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
