"""An agent's pane on a host: the repository's tmux server there, driven over the link."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.errors import SupervisorError
from supervisor.hosts.base import Launched, Typing
from supervisor.hosts.isolation import NONE
from supervisor.tmux.server import PaneInfo

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost


class RemotePanes:
    def __init__(self, host: RemoteHost) -> None:
        self.host = host

    def isolation_of(self, agent: Agent) -> str:
        return NONE

    def close(self, agent: Agent) -> None:
        """Close its pane (its tmux session, for a session)."""

    def prepare_launch(self, agent: Agent) -> str:
        raise SupervisorError(f"agents on host {self.host.name} cannot be launched yet")

    def missing_program(self, agent: Agent, command: str) -> str | None:
        return None

    def own_pane(self, agent: Agent) -> PaneInfo | None:
        return None

    def launch(self, agent: Agent, command: str, env: Mapping[str, str], into: PaneInfo | None) -> Launched:
        raise SupervisorError(f"agents on host {self.host.name} cannot be launched yet")

    def end(self, agent: Agent, pane: PaneInfo | None, grace: float, since: float) -> list[int]:
        return []

    def end_state_holders(self, agent: Agent, grace: float) -> list[int]:
        return []

    def capture(self, agent: Agent, *, history: int = 0, ansi: bool = False) -> str | None:
        return None

    def send_keys(self, agent: Agent, *keys: str) -> bool:
        return False

    def type_text(self, agent: Agent, pane: PaneInfo, text: str, typing: Typing) -> None:
        raise SupervisorError(f"text cannot be typed on host {self.host.name} yet")

    def attach_info(self, agent: Agent) -> dict[str, str] | None:
        return None
