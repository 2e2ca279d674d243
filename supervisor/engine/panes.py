"""Agents' panes, each reached through the `PaneRef` its record holds, never through a bare pane id.

Everything that touches an agent's pane (launch and respawn, delivery, stop, screens, attach, approvals, the
watcher) asks `Panes.own` first: is the agent's pane there, on the server that runs now? A reference to
another server instance (one that died: pane ids start again at %0 on the next) is a pane that is gone, even
when the same id now names another agent's pane.

The record keeps the reference where older records already had its parts: the pane id in `Agent.pane`, the
server instance in `extra["tmux_server"]`, and the host in `Agent.host`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from supervisor.core.model import Agent, root_of
from supervisor.core.store import Store
from supervisor.tmux.panes import LOCAL, PaneRef, server_of
from supervisor.tmux.server import Created, PaneInfo, Tmux, TmuxError

SERVER_KEY = "tmux_server"
WINDOW_CLOSED = "its window was closed"
TMUX_ENDED = "the tmux server ended"
SOCKET_GONE = "its tmux server runs, but its socket is gone"


def pane_ref(agent: Agent) -> PaneRef | None:
    """The pane the agent's record names, or None (never launched, or a record from before servers were
    recorded: its pane cannot be told from another's)."""
    server = agent.extra.get(SERVER_KEY)
    if not agent.pane or not isinstance(server, str) or not server:
        return None
    return PaneRef(agent.host or LOCAL, server, agent.pane)


def place(agent: Agent, ref: PaneRef) -> None:
    """Record that the agent runs in `ref`."""
    agent.pane = ref.pane
    agent.extra[SERVER_KEY] = ref.server
    agent.host = ref.host


class Panes:
    """The engine's way to its agents' panes on its tmux server."""

    def __init__(self, tmux: Tmux, store: Store, host: str = LOCAL) -> None:
        self.tmux = tmux
        self.store = store
        self.host = host

    def own(self, agent: Agent, panes: Mapping[str, PaneInfo] | None = None) -> PaneInfo | None:
        """The agent's own pane (dead or alive) as listed in `panes` (listed now when not given), or None
        when it is gone: closed, or on a server instance that is not the one running now. (`find` of its
        `pane_ref`, without making the reference: the watch tick asks for every agent's pane several times.)"""
        listed = self.tmux.list_panes() if panes is None else panes
        server = agent.extra.get(SERVER_KEY)
        if not agent.pane or not isinstance(server, str) or not server or (agent.host or LOCAL) != self.host:
            return None
        info = listed.get(agent.pane)
        return info if info is not None and info.server == server else None

    def alive(self, agent: Agent, panes: Mapping[str, PaneInfo] | None = None) -> bool:
        info = self.own(agent, panes)
        return info is not None and not info.dead

    def why_gone(self, agent: Agent, panes: Mapping[str, PaneInfo]) -> str:
        """Why the agent's pane is not in `panes`: its window was closed (its server runs on), the server
        ended, or nothing is known (`SOCKET_GONE`: the server it was on runs, but does not answer at the socket)."""
        ref = pane_ref(agent)
        current = server_of(panes) or self.tmux.listed_server
        if ref is not None and current is not None and ref.server == current:
            return WINDOW_CLOSED
        if ref is not None and self.tmux.transport.still_runs(ref.server, self.tmux.socket):
            return SOCKET_GONE
        return TMUX_ENDED

    def capture(self, agent: Agent, *, history: int = 0, ansi: bool = False) -> str | None:
        """The agent's own pane's screen (and `history` lines above it); None when the pane is gone."""
        info = self.own(agent)
        if info is None:
            return None
        try:
            return self.tmux.capture(info.pane, history=history, ansi=ansi)
        except TmuxError:
            return None

    def attached(self, agent: Agent) -> bool:
        """Whether a person's terminal is attached to the agent's tmux session (`supervisor attach`, a plain
        `tmux attach`): a client not in control mode (those are programs: the engine's, the dashboard's)."""
        info = self.own(agent)
        if info is None:
            return False
        lines = self.tmux.query("list-clients", "-F", "#{client_control_mode}\t#{session_name}")
        return any(line == f"0\t{info.session}" for line in lines)

    def send_keys(self, agent: Agent, *keys: str) -> bool:
        """Send key names to the agent's own live pane; False when it is gone or dead."""
        info = self.own(agent)
        if info is None or info.dead:
            return False
        try:
            self.tmux.send_keys(info.pane, *keys)
        except TmuxError:
            return False
        return True

    def open(self, agent: Agent, command: str, env: dict[str, str],
             panes: Mapping[str, PaneInfo]) -> tuple[PaneRef, int]:
        """A new pane for the agent in its session's tmux session, and its process: a helper's beside its
        parent's own pane (a new window of the session when there is no room), a session's in a tmux session
        of its own name. `panes`: the server's panes listed just before."""
        created = self._create(agent, command, env, panes)
        return PaneRef(self.host, created.server, created.pane), created.pid

    def _create(self, agent: Agent, command: str, env: dict[str, str],
                panes: Mapping[str, PaneInfo]) -> Created:
        session = root_of(agent.name)
        cwd = Path(agent.worktree)
        if agent.parent is not None:
            parent = self.store.get_agent(agent.parent)
            beside = self.own(parent, panes) if parent is not None else None
            if beside is not None and beside.session == session:
                created = self.tmux.split(beside.pane, cwd, command, env)
                if created is not None:
                    return created
        if self.tmux.has_session(session):
            others = {info.pane for other in self.store.agents()
                      if other.name != agent.name and other.state.live and (info := self.own(other, panes))}
            if any(info.session == session for pane, info in panes.items() if pane in others):
                return self.tmux.new_window(session, cwd, command, env)
            self.tmux.kill_session(session)  # only dead panes of earlier runs are left in it
        return self.tmux.new_session(session, cwd, command, env)
