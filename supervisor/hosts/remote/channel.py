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

    # STUB (until the host client lands with this module's owner): the shell words that run the client of
    # supervisor on the host. The commit guard's hook on the host runs `<these words> guard`; until the client
    # exists it only says so (the guard is advice: the engine's audit at home checks every commit anyway).
    def client_command(self) -> list[str]:
        return ["sh", "-c", 'echo "supervisor: no commit guard on this host yet; the engine audits every commit" >&2',
                "supervisor-guard-stub"]
