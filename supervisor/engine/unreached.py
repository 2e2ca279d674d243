"""Stopping and removing agents whose host cannot be reached now (down, or no longer in supervisor.yaml).

`stop`: the agent is recorded stopped (or killed) at once, with `stop_pending` in its record and the reason
saying that its processes on the host are ended once the host is back; when its host comes up again (the
engine's `on_up` hooks) they are ended as a stop ends them, and the pending mark goes. `rm --force`: the record
is forgotten here (its private ref of fetched commits too), and the answer says what was left on the host: its
worktree and branch, its CLI folder, and whatever of it still runs there.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from supervisor.core.model import Agent, State
from supervisor.errors import SupervisorError
from supervisor.git import worktrees
from supervisor.git.agent_refs import branch_ref, is_remote
from supervisor.git.worktrees import GitError
from supervisor.hosts.link import Link, LinkError
from supervisor.hosts.remote.host import HostUnreachable, RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

PENDING = "stop_pending"  # in an agent's record: its stop waits for its host ({"kill": bool, "at": epoch})
UNREACHED = (HostUnreachable, LinkError)


def unreached(engine: Engine, agent: Agent) -> str | None:
    """Why the agent's host cannot be reached now; None when it can (or the agent is local)."""
    if not is_remote(agent):
        return None
    try:
        host = engine.host_of(agent)
    except SupervisorError:
        return f"host {agent.host} is no longer in supervisor.yaml"
    if isinstance(host, RemoteHost):
        try:
            host.link()
        except HostUnreachable:
            return f"host {agent.host} is unreachable"
    return None


def stop_later(engine: Engine, agent: Agent, kill: bool, reason: str, why: str) -> None:
    """Record the agent stopped (killed), its processes on its host to be ended once it is back (the caller
    holds its lock)."""
    agent.extra[PENDING] = {"kill": kill, "at": time.time()}
    agent.reason = f"{reason}; {why}: what runs of it there is ended once it is back"
    engine.approvals.drop(agent.name, reason)
    engine.set_state(agent, State.KILLED if kill else State.STOPPED, "killed" if kill else "stopped",
                     reason=agent.reason, pending=True)


def left_behind(agent: Agent, why: str) -> str:
    """What `rm --force` leaves on an unreached host, in one line."""
    return (f"{why}: left there: its worktree {agent.worktree} (branch {agent.branch}), its CLI folder, and "
            "whatever of it still runs")


def forget(engine: Engine, agent: Agent) -> None:
    """The host steps of a removal skipped: its fetched commits' private ref goes here (the caller forgets the
    record)."""
    try:
        worktrees.run_git(engine.paths.root, "update-ref", "-d", branch_ref(agent))
    except GitError as exc:
        log.warning("%s: its fetched commits' ref stays: %s", agent.name, exc.message)


class PendingStops:
    """Carries out the stops recorded while their host was down, once it is back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.hostlinks.on_up.append(self.on_up)

    def on_up(self, host: str, link: Link) -> None:
        names = [agent.name for agent in self.engine.store.agents() if agent.host == host and PENDING in agent.extra]
        if names:  # off the host's watch thread: a stop's grace holds up no other news of the host
            threading.Thread(target=self.carry_out_all, args=(names,), daemon=True,
                             name=f"pending-stops-{host}").start()

    def carry_out_all(self, names: list[str]) -> None:
        for name in names:
            self.carry_out(name)

    def carry_out(self, name: str) -> None:
        engine = self.engine
        with engine.ending(name):
            agent = engine.store.get_agent(name)
            if agent is None or PENDING not in agent.extra:
                return
            if agent.state.live:  # started again meanwhile: that launch ended whatever was left
                agent.extra.pop(PENDING)
                engine.store.save_agent(agent)
                return
            kill = bool((agent.extra.get(PENDING) or {}).get("kill"))
            try:
                engine.endings.end(agent, grace=0.0 if kill else engine.config.limits.stop_grace,
                                   why="its stop waited for its host")
            except SupervisorError as exc:
                log.warning("%s: its pending stop on host %s failed: %s", name, agent.host, exc.message)
                return  # kept: tried again when the host is next back
            agent.extra.pop(PENDING)
            engine.store.save_agent(agent, "stop_carried_out", host=agent.host)
