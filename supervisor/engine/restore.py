"""`supervisor restore`: agents whose panes went with the tmux server (killed, or the machine rebooted) come back.

Each comes back in its own worktree, on its branch, under its contract, with its port block, a helper beside its
parent (parents first), its CLI resumed in its own conversation by the id recorded of it, or started afresh with
its task when the CLI cannot resume (`Engine.start_again`). The watcher marks an agent `restorable` when its pane
goes with the tmux server; `restore --all` takes exactly those (checked again under each one's lock: two
restores at once bring each back once), a launch or a `stop` clears the mark. An agent that ended by
itself is brought back only when named. `limits.restore` says what happens when the engine starts: `auto`
restores every restorable agent, `ask` leaves the offer to the dashboard, `never` offers nothing.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent, State, validate_name
from supervisor.engine import views
from supervisor.engine.delivery import wait_for
from supervisor.errors import SupervisorError, UsageError
from supervisor.hosts import placement
from supervisor.hosts.base import alive

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

SETTLE_SECONDS = 30.0  # how long a restore waits for each agent to leave `starting` before it answers
MARK = "restorable"  # in Agent.extra: its pane went with the tmux server; `restore --all` brings it back


def restorable(agents: list[Agent]) -> list[Agent]:
    """The agents marked restorable that are not running, parents before their helpers."""
    return [a for a in views.tree_order(agents) if a.extra.get(MARK) and not a.state.live]


class RestoreDesk:
    """The `restore` and `restorable` requests, and `limits.restore: auto` at the engine's start (a service)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.engine.config.limits.restore == "auto" and restorable(self.engine.store.agents()):
            self._thread = threading.Thread(target=self._restore_all, name="restore", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Nothing to stop: a restore under way ends with its launches (each under its agent's lock)."""

    def _restore_all(self) -> None:
        try:
            result = self._restore(None, every=True, hosts=None, automatic=True)
        except Exception:
            log.exception("restoring the agents at start failed")
            return
        for failure in result["failed"]:
            log.warning("%s: not restored: %s", failure["name"], failure["error"])

    def op_restorable(self) -> dict[str, Any]:
        """What `limits.restore` says, and the agents `restore --all` would bring back (parents first)."""
        return {"mode": self.engine.config.limits.restore,
                "agents": [a.name for a in restorable(self.engine.store.agents())]}

    def op_restore(self, names: list[str] | None = None, every: bool = False,
                   hosts: list[str] | None = None) -> dict[str, Any]:
        """Bring back the named agents, or `every` restorable one; parents before helpers. A name whose pane is
        alive, or that never started, refuses the whole request before anything starts. An agent that cannot be
        brought back (its parent did not come back, its worktree is gone, it ended again as it started) is
        listed under `failed` with why. With `every`, an agent another request brought back meanwhile (or that
        is no longer marked) is passed over without a word; with `every` and `names` both, only those of the
        named that are still restorable (what a dashboard offered). `hosts`: only the agents on those hosts
        (alone: every restorable one there)."""
        return self._restore(names, every, hosts, automatic=False)

    def _restore(self, names: list[str] | None, every: bool, hosts: list[str] | None, *,
                 automatic: bool) -> dict[str, Any]:
        """`op_restore`; `automatic`: `limits.restore: auto` asked, within the cap on automatic restarts."""
        if hosts:
            agents = self.engine.store.agents()
            for host in hosts:
                placement.check_host(self.engine.config, host, {agent.host for agent in agents})
            every = every or not names
        if not names and not every:
            raise UsageError("name the agents to restore, or --all for every one whose pane went with the tmux "
                             "server")
        for name in names or []:
            validate_name(name)
        if every:
            chosen = [a for a in restorable(self.engine.store.agents()) if not names or a.name in names]
        else:
            chosen = views.tree_order([self.engine.get(name) for name in dict.fromkeys(names or [])])
        chosen = [agent for agent in chosen if not hosts or agent.host in hosts]
        if not every:
            for agent in chosen:
                self._refusal(agent)
        launched: list[tuple[str, bool]] = []
        failed = []
        for agent in chosen:
            try:
                resumed = self._restore_one(agent.name, marked_only=every, automatic=automatic)
            except SupervisorError as exc:
                failed.append({"name": agent.name, "error": exc.message, "hint": exc.hint})
                continue
            if resumed is not None:
                launched.append((agent.name, resumed))
        restored = []
        for name, resumed in launched:
            try:
                restored.append(self._settled(name, resumed))
            except SupervisorError as exc:
                failed.append({"name": name, "error": exc.message, "hint": exc.hint})
        return {"restored": restored, "failed": failed}

    def _refusal(self, agent: Agent) -> None:
        """Raise when the agent is no case for a restore: its pane is alive, or it never started."""
        name = agent.name
        if alive(self.engine.host_of(agent), agent):
            raise SupervisorError(f"{name}'s pane is alive: there is nothing to restore",
                                  hint=f"`supervisor restart {name}` starts it again")
        if agent.state == State.QUEUED:
            raise SupervisorError(f"{name} has not started yet (queued): its plan starts it")

    def _restore_one(self, name: str, *, marked_only: bool, automatic: bool = False) -> bool | None:
        """Launch the agent again (under its lock); whether its conversation was resumed. None: `marked_only`
        and it is no longer a case (another restore, or a stop, came first)."""
        engine = self.engine
        with engine.agent_lock(name):
            agent = engine.get(name)
            if agent.state.live and not alive(engine.host_of(agent), agent):
                engine.watcher.check_now(agent)  # gone since the last tick: its ending is recorded first
                agent = engine.get(name)
            if marked_only and (not agent.extra.get(MARK) or agent.state.live or alive(engine.host_of(agent), agent)):
                return None
            self._refusal(agent)
            contract = agent.extra.get("contract")
            host = engine.host_of(agent)
            if isinstance(contract, str) and host.worktree_exists(agent):
                host.write_session(agent, contract)  # the contract it runs under, as stored, and its guard
            resumed = engine.start_again(agent, "restored", automatic=automatic)
            agent = engine.get(name)
            if agent.state == State.FAILED:
                raise SupervisorError(f"{name} failed to start: {agent.reason}",
                                      hint=f"`supervisor show {name}` has the details")
            session = agent.extra.get("session_id") if resumed else None
            engine.store.append_event(name, "restored", resumed=resumed, session_id=session)
            return resumed

    def _settled(self, name: str, resumed: bool) -> dict[str, Any]:
        """The agent once it has left `starting` (or SETTLE_SECONDS passed: then it is reported `starting`);
        raises when it ended instead (a CLI that would not resume its conversation exits at once)."""
        engine = self.engine
        wait_for(lambda: engine.get(name).state != State.STARTING, SETTLE_SECONDS, interval=0.2)
        agent = engine.get(name)
        if not agent.state.live:
            raise SupervisorError(f"{name} ended as it started again: {agent.reason or agent.state}",
                                  hint=f"`supervisor log {name}` shows what it printed")
        session = agent.extra.get("session_id") if resumed else None
        view = views.agent_view(agent, engine.live.get(name))
        return {**view, "resumed": resumed, "session_id": session}
