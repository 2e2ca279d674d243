"""Typing into agents: the first task once the prompt shows, messages waiting for the next prompt, `send`,
interrupts."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from supervisor.agents import get_profile
from supervisor.agents.screens import Reading, Verdict
from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.engine import undelivered, views
from supervisor.engine.delivery import DeliveryError, DialogShown, wait_for
from supervisor.errors import SupervisorError
from supervisor.hosts.base import Typing, alive

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
READY_QUIET = 0.2  # seconds a recognised input box stays unchanged before it takes keys (see Profile.ready_settle)
UNRECOGNISED_QUIET = 5.0


class Prompter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def op_send(self, name: str, text: str) -> dict[str, Any]:
        with self.engine.agent_lock(name):
            agent = self.engine.get(name)
            if not agent.state.live or agent.pane is None:
                raise SupervisorError(f"{name} is {agent.state}; there is nothing to type into",
                                      hint=f"`supervisor restart {name}` starts it again")
            self.deliver(agent, text, "sent")
            return views.agent_view(agent, self.engine.live.get(name))

    def deliver_quietly(self, name: str, task: str) -> None:
        """The start task's thread: whatever fails is logged, never a thread dying in silence (a delivery
        failure already left the agent waiting with its task marked undelivered)."""
        try:
            self.deliver_first_prompt(name, task)
        except SupervisorError as exc:
            log.warning("%s: %s", name, exc)
        except Exception as exc:
            log.exception("%s: delivering its task failed", name)
            with contextlib.suppress(Exception), self.engine.agent_lock(name):
                agent = self.engine.get(name)
                if agent.state.live and undelivered.MARK not in agent.extra:
                    undelivered.hold(self.engine, agent, DeliveryError(f"{type(exc).__name__}: {exc}"),
                                     alive=alive(self.engine.host_of(agent), agent))

    def deliver_first_prompt(self, name: str, task: str) -> None:
        with self.engine.agent_lock(name):
            agent = self.engine.get(name)
            try:
                try:
                    dialog = self.wait_ready(agent)
                    if dialog is None:
                        self.deliver(agent, task, "task_delivered")
                        return
                except DialogShown as shown:
                    dialog = shown.dialog
                except DeliveryError as exc:
                    raise undelivered.hold(self.engine, agent, exc,
                                           alive=alive(self.engine.host_of(agent), agent)) from None
                self._hold_for_dialog(agent, task, dialog)
            finally:
                live = self.engine.live.get(name)
                if live is not None:
                    live.pending_prompt = False

    def _hold_for_dialog(self, agent: Agent, task: str, dialog: Reading) -> None:
        """A dialog before the prompt (workspace trust, a notice): a human answers it first, and the task goes
        in once the prompt shows (the watcher delivers it)."""
        agent.extra["pending_task"] = task
        agent.waiting_reason = dialog.reason
        screen = self.engine.screens.screen_tail(agent)
        with self.engine.store.transaction():
            self.engine.set_state(agent, State.WAITING, "task_pending", rule=dialog.rule, reason=dialog.reason)
            fire(self.engine.store, agent, Trigger.WAITING, f"waiting before its first prompt: {dialog.reason}",
                 screen=screen, rule=dialog.rule, reason=dialog.reason)

    def deliver_pending(self, name: str) -> None:
        """What waited for the agent's prompt (run off the watcher's thread): the first prompt that waited
        for a dialog to be answered, then the messages that arrived while it worked."""
        with self.engine.agent_lock(name):
            agent = self.engine.get(name)
            task = agent.extra.pop("pending_task", None)
            inbox = agent.extra.pop("inbox", None) or []
            if not (task or inbox) or not agent.state.live:
                return
            self.engine.store.save_agent(agent)
            try:
                if task:
                    try:
                        self.deliver(agent, str(task), "task_delivered")
                    except DialogShown as shown:  # another dialog came first: it waits for a human too
                        if inbox:
                            agent.extra["inbox"] = inbox
                        self._hold_for_dialog(agent, str(task), shown.dialog)
                        return
                if inbox:
                    if task:
                        self.wait_ready(agent)
                    try:
                        self.deliver(agent, "\n\n".join(str(item) for item in inbox), "messages_delivered")
                    except DialogShown:  # a dialog took the screen first: they wait for the next prompt
                        agent.extra["inbox"] = [*inbox, *(agent.extra.get("inbox") or [])]
                        self.engine.store.save_agent(agent, "inbox", items=len(agent.extra["inbox"]))
            except SupervisorError as exc:
                log.warning("%s: %s", name, exc)

    def tell(self, name: str, text: str) -> None:
        """Put `text` in front of the agent at its next prompt (at once when it sits at its prompt now)."""
        with self.engine.agent_lock(name):
            agent = self.engine.get(name)
            inbox = [*(agent.extra.get("inbox") or []), text]
            agent.extra["inbox"] = inbox
            self.engine.store.save_agent(agent, "inbox", items=len(inbox))
            idle = agent.state == State.IDLE
        if idle:
            threading.Thread(target=self.deliver_pending, args=(name,), daemon=True).start()

    def _dialog_on_screen(self, agent: Agent) -> Reading | None:
        reading = get_profile(agent.profile).read(self.engine.host_of(agent).capture(agent) or "")
        return reading if reading.verdict == Verdict.WAITING else None

    def wait_ready(self, agent: Agent) -> Reading | None:
        """Wait until the freshly launched CLI shows its input prompt (or, for an unknown CLI, goes quiet).
        Returns the reading of a dialog that needs a human first, if one shows instead."""
        assert agent.pane is not None
        host = self.engine.host_of(agent)
        profile = get_profile(agent.profile)
        state: dict[str, Any] = {"seen": None, "since": time.monotonic()}

        dialog: dict[str, Reading] = {}

        def ready() -> bool:
            info = host.own_pane(agent)
            if self.engine.ending_now[agent.name] or info is None or info.dead:
                return True
            screen = host.capture(agent, history=1) or ""  # a line scrolling off changes it too
            reading = profile.read(screen)
            if reading.verdict == Verdict.WAITING:
                dialog["seen"] = reading
                return True
            if screen != state["seen"]:
                state["seen"], state["since"] = screen, time.monotonic()
            quiet = time.monotonic() - state["since"]
            # Not SessionStart: a CLI reports in before its input box takes keys.
            verdict = profile.ready(screen)
            if verdict is not None:
                return verdict and quiet >= max(READY_QUIET, profile.ready_settle)
            # A screen we cannot read yet: a CLI we can read is ready only at its prompt (its banner comes
            # first), unless its screen changed beyond recognition (a new version): then long quiet will do.
            return bool(screen.strip()) and quiet >= (UNRECOGNISED_QUIET if profile.screen is not None else 0.5)

        if not wait_for(ready, READY_TIMEOUT, interval=0.1):
            raise DeliveryError(f"{agent.name} did not show its input prompt within {READY_TIMEOUT:.0f}s",
                                hint=f"`supervisor attach {agent.name}` to see why")
        if self.engine.ending_now[agent.name]:
            raise SupervisorError(f"{agent.name} was stopped before its input prompt showed")
        if "seen" in dialog and alive(host, agent):
            return dialog["seen"]
        if not alive(host, agent):
            self.engine.watcher.check_now(agent)
            current = self.engine.get(agent.name)
            raise SupervisorError(f"{agent.name} ended before it was ready: {current.reason or current.state}",
                                  hint=f"`supervisor log {agent.name}` shows its output")
        live = self.engine.live.get(agent.name)
        if live is not None:
            live.ready = True
        return None

    def deliver(self, agent: Agent, text: str, event: str) -> None:
        """Type `text` into the agent and submit it (`event`: what it was). A task that cannot be delivered
        leaves the agent waiting for a human (see `undelivered`)."""
        live = self.engine.live.get(agent.name)
        if live is not None and not (live.ready or live.adopted) and agent.state in (State.STARTING, State.IDLE) \
                and get_profile(agent.profile).screen is not None:
            # Nothing was typed into it since it was launched: its input box may not take keys yet (restarted,
            # or just past a dialog that restarted it).
            dialog = self.wait_ready(agent)
            if dialog is not None:
                raise DialogShown(dialog)
        host = self.engine.host_of(agent)
        since = time.time()
        hooked = live is not None and get_profile(agent.profile).hooks
        try:
            info = host.own_pane(agent)
            if info is None or info.dead:
                raise DeliveryError("its pane is gone", hint=f"`supervisor restart {agent.name}` starts it again")
            profile = get_profile(agent.profile)
            host.type_text(agent, info, text, Typing(
                pane_alive=lambda: alive(host, agent), repaste=agent.state != State.WORKING and profile.repaste,
                timeout=profile.echo_timeout, settle=profile.paste_settle,
                submitted=(lambda: live is not None and live.prompted_at >= since) if hooked else None,
                dialog=lambda: self._dialog_on_screen(agent)))
        except DialogShown:
            self.engine.store.append_event(agent.name, "delivery_held", text=text[:200])
            raise
        except DeliveryError as exc:
            self.engine.store.append_event(agent.name, "delivery_failed", error=str(exc), text=text[:200])
            if event == "task_delivered":
                raise undelivered.hold(self.engine, agent, exc, alive=alive(host, agent)) from None
            raise SupervisorError(f"{agent.name}: {exc}", hint=exc.hint) from None
        undelivered.release(self.engine, agent)
        if live is not None:
            live.last_output = live.last_progress = time.time()
            live.replaying = False
            if live.hook_state is not None:
                # It has a prompt now: working until its hooks say otherwise (UserPromptSubmit may lag).
                live.hook_state, live.hook_reason = State.WORKING, None
        self.engine.set_state(agent, State.WORKING, event, text=text[:200])

    def interrupt(self, agent: Agent) -> None:
        if self.engine.host_of(agent).send_keys(agent, "C-c"):
            self.engine.store.append_event(agent.name, "interrupted", why="on_stall")
