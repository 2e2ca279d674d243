"""Where an agent's pane is watched from: this machine's tmux server, or its host's over the link. The watcher,
transcripts and screens ask `site_of(agent)` for the tmux and panes to use, and apply the same rules to both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent
from supervisor.engine.panes import Panes
from supervisor.hosts.remote.host import RemoteHost
from supervisor.hostsconfig import LOCAL
from supervisor.tmux.server import Tmux

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine


@dataclass(frozen=True)
class Site:
    host: str
    tmux: Tmux
    panes: Panes

    @property
    def local(self) -> bool:
        return self.host == LOCAL


def local_site(engine: Engine) -> Site:
    return Site(LOCAL, engine.tmux, engine.panes)


def host_site(host: RemoteHost) -> Site:
    """A host's site (its tmux needs the link once: HostUnreachable until it is up)."""
    return Site(host.name, host.panes.tmux, host.panes.panes)


def site_of(engine: Engine, agent: Agent) -> Site:
    if agent.host == LOCAL:
        return local_site(engine)
    host = engine.host_of(agent)
    if not isinstance(host, RemoteHost):
        return local_site(engine)
    return host_site(host)


def relay_event(engine: Engine, host: str, message: dict[str, Any]) -> None:
    """A host's pushed tmux output, handed to that host's relays (on the link's reader thread)."""
    if message.get("event") not in ("tmux", "tmux_exit"):
        return
    found = engine.host_named(host)
    if isinstance(found, RemoteHost):
        found.panes.relays.event(message)
