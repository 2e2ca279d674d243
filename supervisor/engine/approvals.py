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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.agents.base import Profile
from supervisor.agents.screens import Verdict
from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.engine.delivery import wait_for
from supervisor.errors import SupervisorError

DIALOG_WAIT = 5.0  # seconds an approval waits for a CLI's own dialog to show (see `await_dialog`)


@dataclass
class Held:
    id: int
    agent: str
    request: str
    answered: threading.Event = field(default_factory=threading.Event)
    allowed: bool | None = None
    reason: str | None = None
    dropped: str | None = None  # why it was let go unanswered (its agent's pane is gone)


class Approvals:
    def __init__(self, store: Store) -> None:
        self.store = store  # its table `approvals` is the store's (supervisor/core/schema.py)
        self._held: dict[str, list[Held]] = {}
        self._lock = threading.Lock()
        with store.transaction() as db:  # requests a previous engine held died with it
            lost = db.execute("SELECT id FROM approvals WHERE status = 'pending'").fetchall()
            db.execute("UPDATE approvals SET status = 'timed_out', decided = ? WHERE status = 'pending'",
                       (time.time(),))
        self._lost = {row[0] for row in lost}

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
        if held.allowed is None and held.dropped is None:
            self._record(held.id, "timed_out", None, None)
        return held

    def answer_hook(self, agent: str, request: str, timeout: float | None) -> dict[str, Any]:
        """A PermissionRequest hook's answer, held here (the request's own thread; nothing else waits on it)
        until a human decides: empty when let go without one (timed out: the CLI shows its own dialog)."""
        held = self.hold(agent, request, timeout)
        if held.dropped is not None:
            self.store.append_event(agent, "approval_dropped", request=held.request, reason=held.dropped)
            return {}
        if held.allowed is None:
            self.store.append_event(agent, "approval_timed_out", request=held.request)
            return {}
        return {"output": permission_answer(held.allowed, held.reason)}

    def drop(self, agent: str, reason: str) -> None:
        """Let go of the agent's held requests unanswered (`dropped`, with `reason`): it ended, so no answer can
        reach it any more, and an approve must not report one delivered."""
        with self._lock:
            dropped = [held for held in self._held.get(agent) or () if held.allowed is None and held.dropped is None]
            for held in dropped:
                held.dropped = reason
        for held in dropped:
            self._record(held.id, "dropped", reason, None)
            held.answered.set()

    def pending(self, agent: str) -> Held | None:
        with self._lock:
            waiting = self._held.get(agent) or []
            return waiting[0] if waiting else None

    def decide(self, agent: str, allowed: bool, reason: str | None, by: str) -> Held | None:
        """Answer the agent's oldest held request; None when it holds none."""
        with self._lock:
            waiting = self._held.get(agent) or []
            held = next((h for h in waiting if h.allowed is None and h.dropped is None), None)
            if held is None:
                return None
            held.allowed, held.reason = allowed, reason
        self._record(held.id, "approved" if allowed else "denied", reason, by)
        held.answered.set()
        return held

    def what_became(self, agent: str, since: float) -> str | None:
        """What became of the agent's newest request, when it was opened or decided since `since` and nothing
        answers it any more: `approved already (by cli)`, or held by an engine that stopped. None otherwise."""
        with self._lock:
            if self._held.get(agent):
                return None
        with self.store.transaction() as db:
            row = db.execute("SELECT id, request, status, decided_by, created, decided, reason FROM approvals "
                             "WHERE agent = ? ORDER BY id DESC LIMIT 1", (agent,)).fetchone()
        if row is None:
            return None
        approval_id, request, status, by, created, decided, reason = row
        if max(created, decided or 0) < since:
            return None
        if status in ("approved", "denied"):
            return f"its request {request} was {status} already" + (f" (by {by})" if by else "")
        if status == "dropped":
            return f"its request {request} was dropped: {reason}"
        if approval_id in self._lost:
            return f"its request {request} was held by an engine that stopped"
        return None

    def nothing_to_answer(self, agent: Agent) -> SupervisorError:
        """Why there is nothing to approve or deny on the agent's screen, in one line: what became of its last
        request when that is known (an engine restart in between loses a held request, and a decision the
        stopped engine made may not have reached its caller)."""
        waiting = agent.state == State.WAITING
        became = self.what_became(agent.name, agent.state_since if waiting else time.time() - 600)
        if waiting:
            message = f"{agent.name} shows no dialog to answer" + (f": {became}" if became else "")
        else:
            message = f"{agent.name} is not waiting for an approval (it is {agent.state})" \
                + (f"; {became}" if became else "")
        return SupervisorError(message, hint=f"see its screen: `supervisor attach {agent.name}`" if waiting else None)

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


def dialog_on_screen(profile: Profile, screen: str, allow: bool) -> bool:
    """Whether the screen reads as waiting, or shows the option that answers (its label found)."""
    return profile.read(screen).verdict == Verdict.WAITING or profile.answer_keys(screen, allow) is not None


def await_dialog(capture: Callable[[], str], profile: Profile, allow: bool, timeout: float) -> str | None:
    """The screen once it shows a dialog to answer, within `timeout`; None when none shows. A CLI whose
    permission hook got no answer (the engine that held it stopped) draws its own dialog a moment later."""
    found: list[str] = []

    def shown() -> bool:
        found[:] = [capture()]
        return dialog_on_screen(profile, found[0], allow)

    return found[0] if wait_for(shown, timeout, interval=0.1) else None
