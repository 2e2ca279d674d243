"""The client API's view of agents and events: the stable JSON schema of `ls --json` and `show --json`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent, Event, State
from supervisor.engine.server_ended import RESTORABLE
from supervisor.hosts.base import ISOLATED
from supervisor.usage.totals import NONE, Usage

if TYPE_CHECKING:
    from supervisor.engine.branches import Readiness
    from supervisor.engine.watcher import Live


def iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


TASK_LISTED = 4096  # characters of an agent's task in `ls` and the dashboard's refreshes


def agent_view(agent: Agent, live: Live | None, readiness: Readiness | None = None,
               newest: tuple[str, float, dict[str, Any]] | None = None, usage: Usage | None = None) -> dict[str, Any]:
    """`newest`: the agent's newest event (Store.newest_event); `usage`: its tokens, cost and context."""
    last_activity = agent.last_activity_at
    if live is not None and live.last_output:
        last_activity = max(last_activity or 0.0, live.last_output)
    return {
        "name": agent.name,
        "parent": agent.parent,
        "level": agent.level,
        "role": agent.role,
        "state": str(agent.state),
        "state_since": iso(agent.state_since),
        # While `unreachable` (its host is down): the state it was last known in; null otherwise.
        "last_state": None if agent.last_state is None else str(agent.last_state),
        "task": None if agent.task is None else agent.task[:TASK_LISTED],
        "task_cut": agent.task is not None and len(agent.task) > TASK_LISTED,  # `show --json` has it whole
        "host": agent.host,  # the machine it runs on: `local`, or a host of supervisor.yaml's `hosts:`
        "worktree": agent.worktree,
        "branch": agent.branch,
        "base": agent.base,
        "target": agent.target,
        "pane": agent.pane,
        "pid": agent.pid if agent.state.live else None,
        "started_at": iso(agent.started_at),
        "last_activity_at": iso(last_activity),
        "cpu_percent": round(live.cpu_percent, 1) if live is not None and agent.state.live else None,
        "rss_bytes": live.rss_bytes if live is not None and agent.state.live else None,
        "waiting_reason": agent.waiting_reason,
        # A usage or rate limit holding it: its kind, the reset its CLI printed (null: none given), its words.
        "limit": _limit(agent),
        "last_event": None if newest is None else {"kind": newest[0], "at": iso(newest[1]), **newest[2]},
        "exit_code": agent.exit_code,
        "reason": agent.reason,
        # Its pane went with the tmux server and nothing started it since: `supervisor restore` brings it back.
        "restorable": bool(agent.extra.get(RESTORABLE)),
        # Stopped while its host could not be reached: what runs of it there is ended once the host is back.
        "stop_pending": bool(agent.extra.get("stop_pending")),
        # What its last launch got: `sandbox` or `none` (null: not launched by an engine that says).
        "isolation": agent.extra.get(ISOLATED),
        "boundary_violations": len(agent.extra.get("violations") or []),
        # The conflict radar's findings: [{"with": agent or target branch, "branch": ..., "files": [...]}].
        "conflicts": list(agent.extra.get("conflicts") or []),
        **_merging(agent),
        # Commits its branch has that its target lacks (counted once it finished: else null), and whether it
        # is ready to merge: finished, its helpers too, commits to merge, all audited clean, not merged yet.
        "ahead": readiness.ahead if readiness is not None else None,
        "ready_to_merge": readiness.ready if readiness is not None else False,
        # Tokens, cost and context from its CLI's own records (SPEC §14): see supervisor/usage/totals.py.
        "usage": (usage or NONE).view(),
    }


def _limit(agent: Agent) -> dict[str, Any] | None:
    record = agent.extra.get("limit")
    if not record or agent.state != State.LIMITED:
        return None
    return {"kind": record.get("kind"), "reset_at": iso(record.get("reset_at")), "line": record.get("line")}


def _merging(agent: Agent) -> dict[str, Any]:
    """Where its work stands: merged (the target's commit), a plan's order, best-of-N, the last check."""
    plan = agent.extra.get("plan") or {}
    check = agent.extra.get("check")
    return {
        "merged": agent.extra.get("merged"),
        "plan": plan.get("file"),
        "after": plan.get("after") or [],
        "auto_merge": plan.get("merge") == "auto",
        "merge_note": agent.extra.get("merge_note"),
        "best_of": agent.extra.get("best_of"),
        "check": None if not check else {key: check.get(key) for key in
                                         ("command", "passed", "exit_code", "seconds", "branch_tip")},
    }


def event_view(event: Event) -> dict[str, Any]:
    return {"id": event.id, "ts": iso(event.ts), "agent": event.agent, "kind": event.kind, **event.data}


def tree_order(agents: list[Agent]) -> list[Agent]:
    """Sessions by name, each followed by its helpers (depth first)."""
    by_parent: dict[str | None, list[Agent]] = {}
    names = {a.name for a in agents}
    for agent in agents:
        parent = agent.parent if agent.parent in names else None
        by_parent.setdefault(parent, []).append(agent)
    ordered: list[Agent] = []

    def visit(parent: str | None) -> None:
        for agent in sorted(by_parent.get(parent, []), key=lambda a: a.name):
            ordered.append(agent)
            visit(agent.name)

    visit(None)
    return ordered
