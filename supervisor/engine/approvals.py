"""Permission requests held until a human answers (SPEC §8).

A Claude Code PermissionRequest hook blocks the tool call while it runs: the engine keeps that request open
until `supervisor approve/deny` (or the dashboard) decides, and answers the hook with the decision. After
`approval.timeout` it lets go without one, and the CLI shows its own dialog. Every request and its outcome
is kept in the store.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from supervisor.core.store import Store


@dataclass
class Held:
    id: int
    agent: str
    request: str
    answered: threading.Event = field(default_factory=threading.Event)
    allowed: bool | None = None
    reason: str | None = None


class Approvals:
    def __init__(self, store: Store) -> None:
        self.store = store  # its table `approvals` is the store's (supervisor/core/schema.py)
        self._held: dict[str, list[Held]] = {}
        self._lock = threading.Lock()
        with store.transaction() as db:  # requests a previous engine held died with it
            db.execute("UPDATE approvals SET status = 'timed_out', decided = ? WHERE status = 'pending'",
                       (time.time(),))

    def hold(self, agent: str, request: str, timeout: float | None) -> Held:
        """Open a request and wait for its answer (or the timeout). Returns it, decided or not."""
        with self.store.transaction() as db:
            cursor = db.execute("INSERT INTO approvals(agent, request, status, created) VALUES (?, ?, 'pending', ?)",
                                (agent, request, time.time()))
            assert cursor.lastrowid is not None
            held = Held(cursor.lastrowid, agent, request)
        with self._lock:
            self._held.setdefault(agent, []).append(held)
        try:
            held.answered.wait(timeout)
        finally:
            with self._lock:
                self._held[agent].remove(held)
        if held.allowed is None:
            self._record(held.id, "timed_out", None, None)
        return held

    def pending(self, agent: str) -> Held | None:
        with self._lock:
            waiting = self._held.get(agent) or []
            return waiting[0] if waiting else None

    def decide(self, agent: str, allowed: bool, reason: str | None, by: str) -> Held | None:
        """Answer the agent's oldest held request; None when it holds none."""
        with self._lock:
            waiting = self._held.get(agent) or []
            held = next((h for h in waiting if h.allowed is None), None)
            if held is None:
                return None
            held.allowed, held.reason = allowed, reason
        self._record(held.id, "approved" if allowed else "denied", reason, by)
        held.answered.set()
        return held

    def _record(self, approval_id: int, status: str, reason: str | None, by: str | None) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE approvals SET status = ?, reason = ?, decided_by = ?, decided = ? WHERE id = ?",
                       (status, reason, by, time.time(), approval_id))

    def history(self, agent: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = "SELECT id, agent, request, status, reason, decided_by, created, decided FROM approvals"
        args: list[Any] = []
        if agent is not None:
            query += " WHERE agent = ?"
            args.append(agent)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self.store.transaction() as db:
            rows = db.execute(query, args).fetchall()
        keys = ("id", "agent", "request", "status", "reason", "decided_by", "created", "decided")
        return [dict(zip(keys, row, strict=True)) for row in rows]


def required(patterns: tuple[str, ...], request: str) -> str | None:
    """The `approval.require` pattern (e.g. `Bash(git push*)`) that `request` matches, if any."""
    return next((p for p in patterns if fnmatch.fnmatchcase(request, p)), None)


def permission_answer(allowed: bool, reason: str | None) -> dict[str, Any]:
    """Claude Code's PermissionRequest hook output for a decision."""
    decision: dict[str, Any] = {"behavior": "allow" if allowed else "deny"}
    if not allowed:
        decision["message"] = reason or "denied by the supervisor's human"
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}}


def ask_answer(pattern: str) -> dict[str, Any]:
    """Claude Code's PreToolUse hook output that turns a tool call into a permission request."""
    return {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask",
                                   "permissionDecisionReason": f"supervisor requires approval for {pattern}"}}
