"""The domain vocabulary: agent states, agent records, events, names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from supervisor.errors import UsageError

SESSION_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


class State(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    WORKING = "working"
    IDLE = "idle"
    WAITING = "waiting"
    STALLED = "stalled"
    EXITED = "exited"
    FAILED = "failed"
    KILLED = "killed"
    STOPPED = "stopped"
    LIMITED = "limited"  # hit a usage or rate limit: `waiting_reason` says until when
    UNREACHABLE = "unreachable"  # on a host the engine cannot reach now: `last_state` keeps what it was

    @property
    def live(self) -> bool:
        """A process is (or should be) running for the agent."""
        return self in LIVE_STATES

    @property
    def ended(self) -> bool:
        return self in ENDED_STATES


LIVE_STATES = frozenset({State.STARTING, State.WORKING, State.IDLE, State.WAITING, State.STALLED, State.LIMITED,
                         State.UNREACHABLE})
ENDED_STATES = frozenset({State.EXITED, State.FAILED, State.KILLED, State.STOPPED})


def validate_name(name: str) -> str:
    """Check a full agent name: `session`, `session.helper` or `session.helper.sub`."""
    parts = name.split(".")
    if len(parts) > 3 or not all(SESSION_NAME.fullmatch(part) for part in parts):
        raise UsageError(
            f"invalid agent name {name!r}",
            hint="names are 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit; "
            "a helper's full name is PARENT.NAME",
        )
    return name


def parent_of(name: str) -> str | None:
    return name.rsplit(".", 1)[0] if "." in name else None


def root_of(name: str) -> str:
    """The session an agent belongs to (itself for a session)."""
    return name.split(".", 1)[0]


def level_of(name: str) -> int:
    return name.count(".") + 1


@dataclass
class Agent:
    """An agent as the store keeps it. Live measurements (CPU, memory) are the engine's, not stored."""

    name: str
    profile: str
    command: str
    worktree: str
    branch: str
    base: str  # the commit the branch was created from
    target: str  # the branch its work merges into (the base branch for a session)
    state: State = State.STARTING
    state_since: float = 0.0
    task: str | None = None
    role: str | None = None
    pane: str | None = None
    pid: int | None = None
    started_at: float = 0.0
    last_activity_at: float | None = None
    waiting_reason: str | None = None
    exit_code: int | None = None
    reason: str | None = None  # why it failed, was killed or stopped
    port: int | None = None
    restarts: int = 0
    host: str = "local"  # the machine it runs on (`local`: the engine's own); its helpers run there too
    last_state: State | None = None  # while `unreachable`: the state it was last known in (None otherwise)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def parent(self) -> str | None:
        return parent_of(self.name)

    @property
    def level(self) -> int:
        return level_of(self.name)


def describe_conflicts(conflicts: list[dict[str, Any]], files: int = 3) -> str:
    """The conflict radar's findings on one line: `conflicts with auth (src/app.py), main (a.py, b.py, c.py
    and 2 more)`; each conflict is {"with": agent or branch, "files": [...]}, as `ls --json` shows them."""
    if not conflicts:
        return "no conflicts any more"
    parts = []
    for conflict in conflicts:
        paths = [str(path) for path in conflict.get("files") or []]
        shown = ", ".join(paths[:files]) + (f" and {len(paths) - files} more" if len(paths) > files else "")
        parts.append(f"{conflict.get('with')} ({shown})")
    return "conflicts with " + ", ".join(parts)


@dataclass(frozen=True)
class Event:
    id: int
    ts: float
    agent: str | None
    kind: str
    data: dict[str, Any]
