"""Which pane, exactly: a tmux pane id means something only on the server instance that gave it out.

A new tmux server numbers its panes from %0 again, so after a server died, an agent's old pane id may name
another agent's new pane. A `PaneRef` therefore names the host, the server instance (`#{pid}:#{start_time}`)
and the pane; `find` is the one test of whether a listed pane is the one a reference names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from supervisor.tmux.server import PaneInfo

LOCAL = "local"  # the machine the engine runs on (the only host so far; remote hosts over SSH come later)


@dataclass(frozen=True)
class PaneRef:
    """A pane as (host, tmux server instance, pane id): unique for as long as the server runs, never reused."""

    host: str
    server: str
    pane: str

    @classmethod
    def of(cls, info: PaneInfo, host: str = LOCAL) -> PaneRef:
        return cls(host, info.server, info.pane)


def find(ref: PaneRef | None, panes: Mapping[str, PaneInfo], host: str = LOCAL) -> PaneInfo | None:
    """The pane `ref` names among `panes` (one listing of `host`'s server), or None when it is not there: a
    reference to another host or another server instance names nothing here, whatever its pane id."""
    if ref is None or ref.host != host or not ref.server:
        return None
    info = panes.get(ref.pane)
    return info if info is not None and info.server == ref.server else None


def server_of(panes: Mapping[str, PaneInfo]) -> str | None:
    """The server instance a listing came from (None for an empty one)."""
    return next((info.server for info in panes.values()), None)
