"""The `hosts` request: each host's state as the engine knows it (SPEC §12).

The engine keeps no connection to its hosts yet, so a request checks them there and then (supervisor/hosts/
survey.py); every agent runs on this machine until agents can start on a host. Once the engine holds a
connection per host, this answers from it instead: its state, load, latency and the agents it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.hostsconfig import LOCAL

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine


class HostsDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self) -> None:
        """Nothing runs beside the engine for hosts yet."""

    def stop(self) -> None:
        """Nothing to stop."""

    def op_hosts(self) -> list[dict[str, Any]]:
        from supervisor.hosts.survey import survey

        live = sum(1 for agent in self.engine.store.agents() if agent.state.live)
        return survey(self.engine.config, {LOCAL: live})
