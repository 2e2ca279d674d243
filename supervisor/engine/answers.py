"""`approve` and `deny`: a request held by the agent's hook, else the dialog on its screen."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from supervisor.agents import get_profile
from supervisor.agents.dialogs import offers
from supervisor.agents.screens import Verdict
from supervisor.core.model import State
from supervisor.engine import answering
from supervisor.engine.approvals import (
    DIALOG_WAIT,
    await_dialog,
)
from supervisor.engine.delivery import wait_for
from supervisor.errors import SupervisorError, UsageError

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)


def _answerer(by: str) -> str:
    """Who answered, as the event log says it: `cli` or `dashboard` (a Slack reply is named by the engine)."""
    if by not in ("cli", "dashboard"):
        raise UsageError(f"by must be cli or dashboard, not {by!r}")
    return by


class Answers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def op_approve(self, name: str, reason: str | None = None, always: bool = False, by: str = "cli") -> dict[str, Any]:
        return self.answer(name, True, reason, always=always, by=_answerer(by))

    def op_deny(self, name: str, reason: str | None = None, by: str = "cli") -> dict[str, Any]:
        return self.answer(name, False, reason, by=_answerer(by))

    def op_approvals(self, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return self.engine.approvals.history(name, limit)

    def answer(self, name: str, allowed: bool, reason: str | None, by: str = "cli",
               always: bool = False) -> dict[str, Any]:
        """Answer what the agent waits for: its held hook request, else the dialog on its screen. `always`: the
        human allows more than this one call (the dialog's "always" / "for this session" option)."""
        agent = self.engine.get(name)
        verb = "approved" if allowed else "denied"
        if always and self.engine.approvals.pending(name) is not None:
            raise SupervisorError(f"{name}'s request is held by its hook, which allows one call at a time",
                                  hint=f"`supervisor approve {name}` allows this call; answer it in the pane "
                                       f"(`supervisor attach {name}`) to allow it for the session")
        held = self.engine.approvals.decide(name, allowed, reason, by=by)
        if held is not None:
            self.engine.store.append_event(name, verb, request=held.request, reason=reason, via="hook", by=by)
            return {"name": name, "answered": verb, "request": held.request, "via": "hook"}
        with self.engine.agent_lock(name):
            agent = self.engine.get(name)
            if agent.state == State.UNREACHABLE:
                raise SupervisorError(f"{name} is unreachable: host {agent.host} is down, so nothing of it can be "
                                      "answered now", hint=f"its dialog shows again once host {agent.host} is back")
            profile = get_profile(agent.profile)
            host = self.engine.host_of(agent)
            screen = host.capture(agent) if agent.state.live else ""
            if screen is None:
                raise SupervisorError(f"{name}'s pane is gone: there is no dialog to answer",
                                      hint=f"`supervisor restart {name}` starts it again")
            # The dialog may be on screen a moment before the watcher's next tick says `waiting`: what the
            # screen shows now decides.
            if profile.read(screen).verdict != Verdict.WAITING:
                if agent.state != State.WAITING:
                    raise self.engine.approvals.nothing_to_answer(agent)
                if profile.answer_keys(screen, allowed) is None:
                    # Waiting as last seen, and no dialog on the screen (yet): a request an engine held before a
                    # restart comes back as the CLI's own dialog; a state read before the restart may be stale.
                    found = await_dialog(lambda: host.capture(agent) or "", profile, allowed, DIALOG_WAIT)
                    if found is None:
                        raise self.engine.approvals.nothing_to_answer(agent)
                    screen = found
            how = answering.plan(profile, screen, allowed, always=always)
            if how is None and always:
                raise SupervisorError(f"{name}'s dialog has no option that allows it always or for the session",
                                      hint=f"`supervisor approve {name}` allows this one call")
            if how is None:  # it stays waiting, with its question
                raise SupervisorError(f"cannot tell which option of {name}'s dialog means {verb!r}: it offers "
                                      f"{offers(screen)}", hint=f"answer it in the pane: `supervisor attach {name}`")
            failed = answering.carry_out(how, lambda *keys: host.send_keys(agent, *keys),
                                         lambda: host.capture(agent) or "")
            if failed is not None:
                raise SupervisorError(f"{name}'s dialog cannot be answered: {failed}",
                                      hint=f"`supervisor attach {name}`")
            keys = " ".join([*how.moves, how.key, *how.then])
            if not wait_for(lambda: profile.answer_taken(screen, host.capture(agent) or ""), 5.0):
                raise SupervisorError(f"{name}'s dialog did not take the answer", hint=f"`supervisor attach {name}`")
            self.engine.store.append_event(name, verb, request=agent.waiting_reason, reason=reason, via="screen",
                                    keys=keys, by=by, **({"always": True} if always else {}))
            if not allowed and reason:  # the agent hears why, as its next instruction
                self.engine.prompter.wait_ready(agent)
                self.engine.prompter.deliver(agent, reason, "sent")
            return {"name": name, "answered": verb, "request": agent.waiting_reason, "via": "screen"}
