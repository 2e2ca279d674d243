"""What a host kept of its panes' output while the engine could not reach it, brought home (SPEC §12, §13).

The engine watches an agent's pane on a host as it watches a local one, and its transcript comes home within a
tick. While the host is out of reach the host keeps a copy of each pane's transcript on its own disk instead
(supervisor/hostside/keeper.py; the engine asks for its keeper each time the host's link comes up). The host
deletes none of it on its own: the engine takes it, then tells the host to drop it.

- The pane still there: before its history is read again (the first look after the link came up, by the tick,
  the re-adoption or an operation), the copy's rows the transcript lacks are added, and the transcript goes on
  from the copy's end. A full history (its limit reached) drops its oldest tenth each time it refills, so its size
  says little of what was printed during a long cut: the copy does. Until the copy is taken (the host answers
  slowly, the link drops again), the history is not read either, and what the copy holds waits on the host.
- The pane gone (the host's tmux server died, or the host rebooted, before the engine was back): the copy closes
  the transcript instead of the last screen the engine saw: the rows the transcript lacks, then the pane's last
  screen.

The copy's rows are counted as tmux counts its history (the host records where they start), so those the
transcript holds are left out by their number. The copy comes in parts (spoolfiles.CHUNK bytes of rows each), each
within the link's line limit and the call's timeout; a take that fails leaves the copy on the host. When the link
comes up, copies of panes that no transcript follows any more (not an agent's, an agent removed, a run closed
meanwhile) are swept there.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent
from supervisor.engine.panes import pane_ref
from supervisor.errors import SupervisorError
from supervisor.hosts.link import Link
from supervisor.hosts.remote.host import RemoteHost
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT
from supervisor.tmux.server import PaneInfo

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

MAX_PARTS = 64  # parts of one copy at most (the host hands 8 MiB of rows in parts of 512 KiB)


class KeptCopyError(SupervisorError):
    """A host's answer about a kept copy that cannot be used."""


@dataclass
class Copy:
    """What a host kept of a pane: its rows from history row `start` to a history of `end` rows, its last
    screen, and the size of its rows file when taken (dropped only if still that)."""

    start: int
    end: int
    rows: list[str]
    screen: list[str]
    size: int


# A look at a host agent asks for its keeper at most once a tick per host until one runs (a round trip, in the
# watch loop; not once per agent looked at).
ASK_EVERY = 1.0


class HostTranscripts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._owed: set[str] = set()  # agents whose pane's copy is taken before their history is read again
        # Hosts whose keeper was asked for once this repository's folder was there (at a host's first connection
        # it may not be yet: the first agent started there makes it, and the keeper is asked for again then).
        self._keeping: set[str] = set()
        self._asked: dict[str, float] = {}  # host -> when its keeper was last asked for from a look (monotonic)
        self._lock = threading.Lock()
        engine.hostlinks.on_up.append(self.on_up)

    def on_up(self, host: str, link: Link) -> None:
        """The host is reachable: the keeper of this repository's panes there runs and knows the engine is here;
        its agents' copies are owed to their transcripts; copies no transcript follows are swept there."""
        found = self.engine.host_named(host)
        if not isinstance(found, RemoteHost):
            return
        agents = [agent for agent in self.engine.store.agents() if agent.host == host]
        with self._lock:
            self._owed |= {agent.name for agent in agents if pane_ref(agent) is not None}
        follow = []
        for agent in agents:
            cursor = self.engine.transcripts.cursor(agent.name)
            if cursor is not None and not cursor.ended and cursor.server is not None:
                follow.append([cursor.server, cursor.pane])
        try:
            root = found.layout().root
            self._keeping.discard(host)
            kept = link.call("transcripts_keep", root=root, socket=found.layout().tmux_socket, timeout=CALL_TIMEOUT)
            if isinstance(kept, dict) and kept.get("keeper") != "no folder":
                self._keeping.add(host)
            said = kept.get("said") if isinstance(kept, dict) else None
            if said:
                log.warning("host %s: the keeper of its panes' output said: %s", host, said)
            link.call("transcripts_sweep", root=root, follow=follow, timeout=CALL_TIMEOUT)
        except SupervisorError as exc:
            log.warning("host %s: its panes' output is not kept there while it is out of reach: %s", host, exc)

    def catch_up(self, agent: Agent, info: PaneInfo) -> bool:
        """Before the agent's pane's history is read: what its host kept of it while the engine was away, added
        to its transcript first. False when that is owed and cannot be taken now (its history is not read then:
        the copy holds what the history may have lost)."""
        if agent.host and agent.host not in self._keeping \
                and time.monotonic() - self._asked.get(agent.host, float("-inf")) >= ASK_EVERY:
            self._asked[agent.host] = time.monotonic()
            self._ask_keeper(agent.host)
        if agent.name not in self._owed:
            return True
        with self._lock:  # one taker: another waits, then reads the history from where the copy ended
            if agent.name not in self._owed:
                return True
            done = self._catch_up(agent, info)
            if done:
                self._owed.discard(agent.name)
            return done

    def _ask_keeper(self, host: str) -> None:
        """The keeper of this repository's panes on `host`, asked for now that an agent of it is watched there."""
        found = self.engine.host_named(host)
        if not isinstance(found, RemoteHost):
            return
        try:
            kept = found.link().call("transcripts_keep", root=found.layout().root,
                                     socket=found.layout().tmux_socket, timeout=CALL_TIMEOUT)
        except SupervisorError as exc:
            log.info("host %s: its panes' output is not kept there yet: %s", host, exc)
            return
        if isinstance(kept, dict) and kept.get("keeper") != "no folder":
            self._keeping.add(host)

    def _catch_up(self, agent: Agent, info: PaneInfo) -> bool:
        host = self.engine.host_named(agent.host)
        cursor = self.engine.transcripts.cursor(agent.name)
        if not isinstance(host, RemoteHost) or cursor is None or cursor.ended \
                or (cursor.server, cursor.pane) != (info.server, info.pane):
            return True
        try:
            link = host.link()
            root = host.layout().root
            copy = take_copy(link, root, info.server or "", info.pane)
        except SupervisorError as exc:
            log.info("%s: what its host kept of its pane cannot be taken yet (%s): its history is read once it is",
                     agent.name, exc)
            return False
        if copy is None:
            return True
        rows = rows_beyond(copy, cursor.lines)
        if rows:
            self.engine.transcripts.add_kept(agent.name, info.server or "", info.pane, rows, copy.end)
        self._drop(link, root, info.server or "", info.pane, copy, agent.name)
        return True

    def take(self, agent: Agent) -> None:
        """The agent's pane is gone (the caller holds its lock, and ends its run next): what its host kept of it
        while the engine was away closes its transcript. Nothing when the host kept nothing, or cannot say now
        (the last screen the engine saw closes it then, as for a local pane; the copy stays on the host)."""
        host = self.engine.host_named(agent.host)
        ref = pane_ref(agent)
        cursor = self.engine.transcripts.cursor(agent.name)
        if not isinstance(host, RemoteHost) or ref is None or cursor is None or cursor.ended \
                or (cursor.server, cursor.pane) != (ref.server, ref.pane):
            return
        with self._lock:
            self._owed.discard(agent.name)
            try:
                link = host.link()
                root = host.layout().root
                copy = take_copy(link, root, ref.server, ref.pane)
            except SupervisorError as exc:
                log.warning("%s: what its host kept of its pane cannot be taken (%s): its last screen closes its "
                            "transcript, and the host keeps the copy", agent.name, exc)
                return
            if copy is None:
                return
            self.engine.transcripts.end(agent.name, ref.pane, None, 0, lines_beyond(copy, cursor.lines))
            self._drop(link, root, ref.server, ref.pane, copy, agent.name)

    def _drop(self, link: Link, root: str, server: str, pane: str, copy: Copy, name: str) -> None:
        try:
            link.call("transcript_drop", root=root, server=server, pane=pane, end=copy.end, size=copy.size,
                      timeout=CALL_TIMEOUT)
        except SupervisorError as exc:  # kept there: continued by the next absence, swept when nothing follows it
            log.info("%s: its host keeps what it kept of its pane (%s)", name, exc)


def take_copy(link: Link, root: str, server: str, pane: str) -> Copy | None:
    """What the host kept of the pane, taken in parts; None when it kept nothing. KeptCopyError when an answer
    is not what a host program sends, or the copy was cut back between two parts."""
    first = link.call("transcript_take", root=root, server=server, pane=pane, timeout=CALL_TIMEOUT)
    if first is None:
        return None
    copy = _first_part(first)
    rows, file, offset = _part(first)
    copy.rows = rows
    for _ in range(MAX_PARTS):
        if offset is None:
            return copy
        part = link.call("transcript_take", root=root, server=server, pane=pane, offset=offset,
                         timeout=CALL_TIMEOUT)
        more, again, after = _part(part)
        if again != file:
            raise KeptCopyError("the host's copy was cut back while it was taken")
        if after is not None and after <= offset:
            raise KeptCopyError(f"the host's copy did not go on after byte {offset}")
        copy.rows += more
        offset = after
    raise KeptCopyError(f"the host's copy came in more than {MAX_PARTS} parts")


def _first_part(part: Any) -> Copy:
    if not isinstance(part, dict):
        raise KeptCopyError("the host sent what a host program never sends for a copy")
    start, end, screen, size = part.get("start"), part.get("end"), part.get("screen"), part.get("size")
    if not isinstance(start, int) or not isinstance(end, int) or not isinstance(size, int) \
            or not isinstance(screen, list) or not all(isinstance(line, str) for line in screen):
        raise KeptCopyError("the host sent what a host program never sends for a copy")
    return Copy(start, end, [], screen, size)


def _part(part: Any) -> tuple[list[str], str, int | None]:
    if not isinstance(part, dict):
        raise KeptCopyError("the host's copy is gone while it was taken")
    rows, file, after = part.get("rows"), part.get("file"), part.get("next")
    if not isinstance(rows, list) or not all(isinstance(row, str) for row in rows) or not isinstance(file, str) \
            or not (after is None or isinstance(after, int)):
        raise KeptCopyError("the host sent what a host program never sends for a copy")
    return rows, file, after


def rows_beyond(copy: Copy, written: int) -> list[str]:
    """Of a live pane's copy, the rows after the first `written` of its history: all of them when it starts after
    the transcript's end (rows scrolled by before the host began keeping them), none when the transcript is past
    its end already."""
    if written < copy.start:
        return list(copy.rows)
    return copy.rows[written - copy.start:]


def lines_beyond(copy: Copy, written: int) -> list[str]:
    """Of a gone pane's copy, the rows after the first `written` of its history, then its last screen."""
    # A copy that starts after the transcript's end (rows scrolled by before the host began keeping them) or
    # before a history that was cleared since: all of it, rather than lose any.
    start, rows = copy.start, copy.rows
    new = rows[written - start:] if start <= written <= start + len(rows) else rows
    return [*new, *copy.screen]
