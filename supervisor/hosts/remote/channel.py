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

    # Placeholders until the host client lands (the remote channel's part): the pane's launch already asks
    # them, so the agent's environment and its CLI's hook command come from here alone.

    def client_env(self, agent: Agent) -> dict[str, str]:
        """What the agent's environment on the host needs for the host client (PATH with its `supervisor` shim
        first). PLACEHOLDER: nothing yet."""
        return {}

    def client_command(self) -> list[str]:
        """The words that run the host client (`[...words, "hook"]` is the CLI's hook command there).
        PLACEHOLDER: a command that does nothing, so a CLI's hooks run and report nothing yet."""
        return ["true"]
