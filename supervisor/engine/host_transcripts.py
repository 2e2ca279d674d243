"""What a host kept of its panes' output while the engine could not reach it, brought home (SPEC §12, §13).

The engine watches an agent's pane on a host as it watches a local one, and its transcript comes home within a
tick. While the host is out of reach the host keeps each pane's transcript on its own disk instead
(supervisor/hostside/keeper.py, started here each time the host's link comes up). When the engine is back and
the pane is still there, its tmux history holds all it printed meanwhile, and the transcript goes on from there.
When the pane is gone (the host's tmux server died, or the host rebooted, before the engine was back), what the
host kept closes the transcript instead of the last screen the engine saw: the rows the transcript lacks (the
host counts them as tmux does, so those the transcript holds are left out by their number), then the pane's
last screen. The host then forgets them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent
from supervisor.engine.panes import pane_ref
from supervisor.errors import SupervisorError
from supervisor.hosts.link import Link
from supervisor.hosts.remote.host import RemoteHost
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)


class HostTranscripts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.hostlinks.on_up.append(self.on_up)

    def on_up(self, host: str, link: Link) -> None:
        """The host is reachable: the keeper of this repository's panes there runs, and knows the engine is here."""
        found = self.engine.host_named(host)
        if not isinstance(found, RemoteHost):
            return
        try:
            layout = found.layout()
            link.call("transcripts_keep", root=layout.root, socket=layout.tmux_socket, timeout=CALL_TIMEOUT)
        except SupervisorError as exc:
            log.warning("host %s: its panes' output is not kept there while it is out of reach: %s", host, exc)

    def take(self, agent: Agent) -> None:
        """The agent's pane is gone (the caller holds its lock, and ends its run next): what its host kept of it
        while the engine was away closes its transcript. Nothing when the host kept nothing, or cannot say now
        (the last screen the engine saw closes it then, as for a local pane)."""
        host = self.engine.host_named(agent.host)
        ref = pane_ref(agent)
        cursor = self.engine.transcripts.cursor(agent.name)
        if not isinstance(host, RemoteHost) or ref is None or cursor is None or cursor.ended \
                or (cursor.server, cursor.pane) != (ref.server, ref.pane):
            return
        try:
            link = host.link()
            root = host.layout().root
            kept = link.call("transcript_take", root=root, server=ref.server, pane=ref.pane, timeout=CALL_TIMEOUT)
        except SupervisorError as exc:
            log.info("%s: what its host kept of its pane cannot be read (%s): its last screen closes its "
                     "transcript", agent.name, exc)
            return
        lines = lines_beyond(kept, cursor.lines)
        if lines is None:
            return
        self.engine.transcripts.end(agent.name, ref.pane, None, 0, lines)
        try:
            link.call("transcript_drop", root=root, server=ref.server, pane=ref.pane, timeout=CALL_TIMEOUT)
        except SupervisorError as exc:  # taken again only by a run that never ended: not this one
            log.info("%s: its host keeps what it kept of its pane (%s)", agent.name, exc)


def lines_beyond(kept: Any, written: int) -> list[str] | None:
    """Of what the host kept (`start`: the history row its first row has, `rows`, `screen`), the rows after the
    first `written` of the history, then the screen; None when it kept nothing (or sent what it never sends)."""
    if not isinstance(kept, dict):
        return None
    start, rows, screen = kept.get("start"), kept.get("rows"), kept.get("screen")
    if not isinstance(start, int) or not isinstance(rows, list) or not isinstance(screen, list) \
            or not all(isinstance(line, str) for line in [*rows, *screen]):
        return None
    # A spool that starts after the transcript's end (rows scrolled by before the host began keeping them) or
    # before a history that was cleared since: all of it, rather than lose any.
    new = rows[written - start:] if start <= written <= start + len(rows) else rows
    return [*new, *screen]
