"""The new-session form's Host field: `local` and each host of supervisor.yaml, as the engine's `hosts` rows
describe them (free places against `max_agents`, up or down), and the start request the form makes.

The rows are a hint to the person choosing; the engine decides. The form asks the engine to start the session
there and stays open while it does: a refusal (the host is full, or cannot be reached now) is said in the form,
in the engine's own words, and the person can choose again; only a session that started closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supervisor.ui.model import LOCAL_HOST


@dataclass(frozen=True)
class Started:
    """The engine started the session: its answer (the agent's view)."""

    agent: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    """The engine refused the start, in its own words (one line, and its hint)."""

    message: str


def choices(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, host) for each host an agent may be started on, `local` first: its free places and state."""
    named = [row for row in rows if isinstance(row.get("name"), str)]
    if not any(row["name"] == LOCAL_HOST for row in named):
        named.insert(0, {"name": LOCAL_HOST, "state": "up", "agents": None, "max_agents": None})
    return [(label(row), str(row["name"])) for row in named]


def label(row: dict[str, Any]) -> str:
    """`box1 · 2 of 3 places free · up`, `local · no limit · up`, `box2 · 3 of 3 places free · down`."""
    agents, limit, state = row.get("agents"), row.get("max_agents"), str(row.get("state") or "?")
    if isinstance(limit, int):
        free = f"{max(0, limit - agents)} of {limit}" if isinstance(agents, int) else f"? of {limit}"
        places = f"{free} places free"
    else:
        places = "no limit"
    return f"{row['name']} · {places} · {state}"


def start_request(call: Callable[..., Any], params: dict[str, Any]) -> Started | Refused:
    """The engine's `start` (in a worker thread): its answer, or its refusal as the form shows it. Anything
    else (the engine gone or slow) is raised, for the dashboard's usual handling."""
    from supervisor.ui.source import RequestFailed

    try:
        return Started(call("start", params, timeout=120))
    except RequestFailed as exc:
        return Refused(exc.message + (f"\nhint: {exc.hint}" if exc.hint else ""))
