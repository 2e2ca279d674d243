"""Each agent's own socket on a host, served by the host program: what its CLI's hooks and `supervisor`
commands send there comes home as that agent's requests, in order, and the answers go back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.core.model import Agent

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost


class Channel:
    def __init__(self, host: RemoteHost) -> None:
        self.host = host

    def open(self, agent: Agent) -> None:
        """The agent's socket on the host, listening (before its CLI can call it)."""
