"""Agents' hook events (answered at once, or read from their spools) and their reports."""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from supervisor.agents import get_profile
from supervisor.agents.screens import Verdict
from supervisor.core.model import Agent, State
from supervisor.engine import views
from supervisor.engine.approvals import (
    ask_answer,
    required,
)
from supervisor.engine.hooks import brief, read_hook, told_session, tool_summary, unjudged
from supervisor.engine.once import ran_at
from supervisor.errors import SupervisorError

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)


class HookDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def op_hook(self, event: dict[str, Any], at: float | None = None, key: str | None = None,
                _caller: Agent | None = None) -> dict[str, Any]:
        """An agent CLI's hook event. Never waits on the agent's lock: the CLI is blocked until we answer.
        `at`: when the hook ran; `key`: the event's id, also in its spooled copy if this answer comes late."""
        agent = _caller
        if agent is None:
            raise SupervisorError("hook events come from inside an agent's pane")
        if not self.engine.hooks_once.claim(key):
            return {}  # its spooled copy was read first: the hook gave up waiting for this answer
        try:
            self._apply_hook(agent, event, ran_at(at, time.time()), key)
        except BaseException:
            self.engine.hooks_once.release(key)
            raise
        name = event.get("hook_event_name")
        if name == "PreToolUse" and self.engine.config.approval.require:
            pattern = required(self.engine.config.approval.require, tool_summary(event))
            if pattern is None and unjudged(event):
                pattern = "any tool call too large to check"  # never let it through unchecked
            if pattern is not None:
                self.engine.store.append_event(agent.name, "approval_required", request=tool_summary(event),
                                               rule=pattern)
                return {"output": ask_answer(pattern)}
        if name == "PermissionRequest":
            return self.engine.approvals.answer_hook(agent.name, tool_summary(event),
                                                     self.engine.config.approval.timeout)
        return {}

    def _apply_hook(self, agent: Agent, event: dict[str, Any], at: float, key: object, decide: bool = True) -> None:
        """Record the event (with its id: that makes it applied) and let it decide the agent's state (`decide`
        false: the watcher's next look does, as for spooled events, which are all applied first: a limit told
        with the turn that came after it is then never taken for a limit that holds)."""
        reading = read_hook(event)
        self.engine.store.append_event(agent.name, "hook", **brief(event),
                                       **({"key": key} if isinstance(key, str) else {}))
        self.engine.hooks_once.recorded(key)
        live = self.engine.live.get(agent.name)
        if live is not None:
            session = told_session(get_profile(agent.profile).hooks, live.session_id, event)
            if session is not None:
                live.session_id = session  # kept in the agent's record by the watcher (`restart` resumes it)
        self.engine.usage.note_hook(agent.name, event)  # its transcript, and a turn's end: read its usage now
        if live is None or reading.state is None:
            return
        if reading.event == "UserPromptSubmit":
            live.prompted_at = max(live.prompted_at, at)  # a delivery waits for this
        if reading.state in (State.WORKING, State.WAITING) or reading.event == "Stop":
            live.worked_at = max(live.worked_at, at)  # a turn ran: a limit told before it is over (engine/limits.py)
        if reading.event == "StopFailure" and event.get("error") == "rate_limit":  # its turn ended on a limit
            self.engine.limits.noticed(live, str(event.get("last_assistant_message") or "rate limit"), at)
        if at < live.last_hook:
            return  # a late arrival (from the spool, or a slow hook process): a newer event already decided
        if event.get("notification_type") == "permission_prompt" and live.reading.verdict != Verdict.WAITING:
            return  # sent seconds after a permission dialog opens: with none on the screen, it was answered
        live.last_hook = at
        live.last_progress = max(live.last_progress, at)
        live.hook_state = live.turns.read(reading.event, reading.state)  # None: a queued prompt's turn runs
        live.hook_reason = reading.reason if live.hook_state is not None else None
        if not decide:
            return
        lock = self.engine.try_agent_lock(agent.name)
        if lock is None:
            return  # the watcher applies it on its next tick
        try:
            self.engine.watcher.decide_now(agent.name)
        finally:
            lock.release()

    def apply_spooled(self, agent: Agent, event: dict[str, Any], at: float, key: object) -> None:
        """A spooled event, recorded (its state decided by the next look, once all are applied)."""
        self._apply_hook(agent, event, at, key, decide=False)

    def ingest_spool(self) -> None:
        """Hook events `supervisor hook` spooled into agents' runtime folders, in order: while no engine ran, or
        when this one answered too late (the hook gives up after a few seconds rather than hold the agent up)."""
        self.engine.spools.ingest(self.engine.store, self.engine.hooks_once,
                                  functools.partial(self._apply_hook, decide=False))

    def ingest_spool_if_changed(self) -> None:
        """Each tick: one stat per agent's spool folder while nothing new is in them."""
        self.engine.spools.ingest(self.engine.store, self.engine.hooks_once,
                                  functools.partial(self._apply_hook, decide=False),
                           changed_only=True)

    def op_report(self, waiting_for: list[str] | None = None, _caller: Agent | None = None) -> dict[str, Any]:
        """An agent says whom it waits for (deadlock detection reads these)."""
        if _caller is None:
            raise SupervisorError("report comes from inside an agent's pane")
        with self.engine.agent_lock(_caller.name):
            agent = self.engine.get(_caller.name)
            agent.extra["waiting_for"] = sorted(set(waiting_for or []))
            self.engine.store.save_agent(agent, "report", waiting_for=agent.extra["waiting_for"])
            return views.agent_view(agent, self.engine.live.get(agent.name))
