"""The checks a host's watch makes on its slow ticks (every SLOW_CHECK_EVERY ticks, in that host's own thread, as the
local watch makes them on its slow ticks), so an agent there is held to the same rules as one here: `escape` from the
working directories its process trees came with (engine/host_escapes.py), `boundary` for a worktree off its branch
(engine/host_branches.py), and the conversation ids its CLI keeps in its own files (engine/host_sessions.py). A check
the host could not answer this time is said in the log (once until it changes) and made again at the next slow
tick; it holds up no other check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.engine.host_branches import check_host_heads
from supervisor.engine.host_escapes import HostEscapes
from supervisor.engine.host_sessions import HostSessions
from supervisor.engine.hostprocs import HostSnapshot
from supervisor.errors import SupervisorError
from supervisor.hosts.link import Link
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.watcher import Watcher

log = logging.getLogger(__name__)


class HostSlowChecks:
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.sessions = HostSessions(watcher.engine)
        self._said: dict[tuple[str, str], str] = {}  # (host, check) → the fault last logged
        self._escapes: dict[str, HostEscapes] = {}  # by host

    def run(self, host: RemoteHost, link: Link, agents: list[Agent], snapshot: HostSnapshot | None) -> None:
        """The slow checks of `host`'s live agents (`agents`, as its tick read them; `snapshot`: their trees as
        this tick read them, with working directories, when it did)."""
        engine = self.watcher.engine
        live = [agent for agent in agents if agent.name in engine.live]
        if snapshot is not None:
            escapes = self._escapes.setdefault(host.name, HostEscapes())
            self._check(host, "escape", lambda: escapes.check(self.watcher, host.name, host.layout(), live, snapshot))
        self._check(host, "branch", lambda: check_host_heads(engine, link, live))
        self._check(host, "session", lambda: self.sessions.look(host, live))

    def _check(self, host: RemoteHost, check: str, action: Callable[[], None]) -> None:
        try:
            action()
        except SupervisorError as exc:
            if self._said.get((host.name, check)) != exc.message:
                self._said[(host.name, check)] = exc.message
                log.info("host %s: its %s check is made again at its next slow tick: %s", host.name, check,
                         exc.message)
            return
        self._said.pop((host.name, check), None)
