"""Agents whose panes went with the tmux server: ended together, marked restorable, told once.

The watcher finds them one by one as it judges each agent (its pane is gone, and the server running now, if
any, is not the one the pane was on) and hands them here; at the end of the tick they are ended in one
transaction with one `exited` trigger about the server (`tmux:` here, `tmux:HOST` on a host) that names them
all, so a reader never sees them ended without the alert, and the human hears of it once per server, not once
per agent.

A server is ended only once its process is (supervisor/tmux/instance.py): when the socket alone is gone (a
cleaner of /tmp removed it) the server and its agents run on, so nothing is ended; the server is told to make
its socket again, and the engine's log says so once per server. Each tick also keeps a running server's
`_engine` session and socket file (`tend`).

Each is `exited` with the reason `tmux server ended`, its waiting reason and held approvals dropped, and
marked restorable (`extra["restorable"]`: `supervisor restore` brings such agents back). An agent that ended
by itself, was stopped, or whose window alone was closed is not; a launch, a stop or a removal clears the mark.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from supervisor.core import subjects
from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.panes import pane_ref
from supervisor.hostsconfig import LOCAL
from supervisor.tmux.server import PaneInfo

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

REASON = "tmux server ended"
RESTORABLE = "restorable"  # agent.extra key: its pane went with the tmux server, and nothing started it since
SUMMARY = "the tmux server{where} ended and took its agents with it: `supervisor restore --all` brings them back"


class ServerEnded:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._found: dict[str, int] = {}  # agent -> its record's version when found
        self._guard = threading.Lock()
        self._told: set[str] = set()  # servers whose lost socket was said

    def tend(self, panes: Mapping[str, PaneInfo]) -> None:
        """Each tick, after the listing: a running server keeps its `_engine` session and its socket file (the
        watcher's own connection outlives the file, but every other command needs it)."""
        tmux = self.engine.tmux
        if tmux.listed_server is None:
            return
        tmux.keep_engine_session(panes)
        if not tmux.socket.exists():
            self._socket_lost(tmux.listed_server)

    def socket_gone(self, agent: Agent) -> None:
        """The agent's server runs, but does not answer at its socket: it is told to make it again."""
        ref = pane_ref(agent)
        if ref is not None:
            self._socket_lost(ref.server)

    def _socket_lost(self, server: str) -> None:
        with self._guard:
            first = server not in self._told
            self._told.add(server)
        if first:
            log.warning("the tmux server %s runs but its socket %s is gone: it is told to make it again (SIGUSR1)",
                        server.split(":")[0], self.engine.tmux.socket)
            self.engine.store.append_event(None, "tmux_socket_gone", server=server)
        self.engine.tmux.recreate_socket(server, wait=False)

    def found(self, agent: Agent) -> None:
        """The agent's pane went with the server (the caller holds its lock): ended at the next `settle`."""
        with self._guard:
            self._found[agent.name] = self.engine.store.version(agent.name)

    def settle(self) -> None:
        """End every agent found since the last call, together, and tell it once. One that is busy (an
        operation holds it) or changed since it was found is left for the next tick to judge again."""
        engine = self.engine
        with self._guard:
            found, self._found = self._found, {}
        locks = []
        agents: list[Agent] = []
        try:
            for name, version in sorted(found.items()):
                lock = engine.try_agent_lock(name)
                if lock is None:
                    continue
                locks.append(lock)
                agent = engine.store.get_agent(name) if engine.store.version(name) == version else None
                if agent is not None and agent.state.live:
                    agents.append(agent)
            if agents:
                self._end(agents)
        finally:
            for lock in locks:
                lock.release()

    def _end(self, agents: list[Agent]) -> None:
        """End `agents`, and tell it once for each host's server (their agents' hosts: one tick may find the
        server here and one on a host gone)."""
        engine = self.engine
        for agent in agents:
            engine.approvals.drop(agent.name, REASON)
        by_host: dict[str, list[Agent]] = {}
        for agent in agents:
            by_host.setdefault(agent.host, []).append(agent)
        with engine.store.transaction():
            for host, ended in by_host.items():
                for agent in ended:
                    agent.reason = REASON
                    agent.exit_code = None
                    agent.extra[RESTORABLE] = True
                    engine.set_state(agent, State.EXITED, "exited", reason=REASON, restorable=True)
                names = ", ".join(agent.name for agent in ended)
                here = host == LOCAL
                where = "" if here else f" on host {host}"
                fire(engine.store, ended[0], Trigger.EXITED, f"{REASON}{where}: {names}",
                     subject=subjects.TMUX + ("" if here else host), subject_summary=SUMMARY.format(where=where),
                     agents=[agent.name for agent in ended])
