"""What agents' panes show: screens, and their transcripts brought up to date or closed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent, State
from supervisor.engine.sites import site_of
from supervisor.engine.transcripts import tail_lines
from supervisor.errors import SupervisorError
from supervisor.tmux.server import PaneInfo, Scrolled

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

RESYNC_ROWS = 2000  # of history searched for where a transcript ends, after a pane was resized
_LOOKS = 3  # looks at one pane, when rows scrolled off faster than a look took them (`look_at`)


class Screens:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def end_transcript(self, agent: Agent) -> None:
        """Close the transcript of the agent's run: the history lines it lacks, then the last screen. Done
        once per run, by whoever sees the end first (the watcher, a stop, a restart)."""
        if agent.pane is None or self.engine.transcripts.ended(agent.name):
            return
        info = self.engine.host_of(agent).own_pane(agent)
        if info is None:  # gone before the watcher saw it go: what its host kept of it, if it is on one and that
            self.engine.host_transcripts.take(agent)  # kept any, else its live screen as last written, closes it
            self.engine.transcripts.end(agent.name, agent.pane, None, 0, None)
            return
        screen, scrolled = self.look_at(agent, info)
        if screen is not None:
            self.engine.transcripts.end(agent.name, info.pane, scrolled, info.history_limit, screen.splitlines(),
                                 info.history)

    def resync_transcript(self, agent: Agent, info: PaneInfo) -> None:
        """Before a look: when the pane's size changed since the transcript's last look (a user attached from
        another terminal), its history's rows moved; the transcript finds its place again by their text."""
        if not self.engine.transcripts.resized(agent.name, info.server, info.pane, info.size):
            self.engine.transcripts.sized(agent.name, info.pane, info.size)
            return
        try:
            grid = site_of(self.engine, agent).tmux.grid(info.pane, RESYNC_ROWS)
        except SupervisorError:  # TmuxError, or its host out of reach
            return
        if grid is not None:
            self.engine.transcripts.resync(agent.name, info.pane, grid, info.size)

    def look_at(self, agent: Agent, info: PaneInfo) -> tuple[str | None, Scrolled | None]:
        """One pane's screen and the history lines its transcript lacks, taken together (None: gone)."""
        due = 0
        if self.engine.host_transcripts.catch_up(agent, info):  # what its host kept, if owed, comes first
            self.resync_transcript(agent, info)
            due = self.engine.transcripts.due(agent.name, info.server, info.pane, info.history, info.history_limit)
        tmux = site_of(self.engine, agent).tmux
        for _ in range(_LOOKS):
            try:
                screens, scrolled = tmux.look([info.pane], {info.pane: due} if due else {})
            except SupervisorError:  # TmuxError, or its host out of reach
                return None, None
            taken = scrolled.get(info.pane)
            if taken is None:
                break
            # More rows scrolled off since the listing than the look took to spare (a run's end and `log` take
            # what they are given): looked at again for all of them.
            lacking = self.engine.transcripts.due(agent.name, info.server, info.pane, taken.size, info.history_limit)
            if lacking <= len(taken.rows):
                break
            due = lacking
        return screens.get(info.pane), taken

    def screen_tail(self, agent: Agent, count: int = 15) -> list[str]:
        """The last non-blank lines of the agent's screen (evidence for events and alerts). The watcher's
        last capture serves when there is one: the screen has not changed since (its output did not grow)."""
        live = self.engine.live.get(agent.name)
        lines = tail_lines(live.screen, count * 2) if live is not None and live.screen is not None else \
            self.last_screen(agent, count * 2)
        return [line for line in lines if line.strip()][-count:]

    def last_screen(self, agent: Agent, count: int) -> list[str]:
        if agent.state == State.UNREACHABLE:
            return []  # its host is out of reach: no screen to read now (`show` says the rest)
        return tail_lines(self.engine.host_of(agent).capture(agent) or "", count)

    def op_unwritten(self, name: str) -> dict[str, Any]:
        """Bring the agent's live screen up to this moment (`supervisor log` then reads the files): the lines
        that scrolled off its screen since the watcher last looked, and the screen itself. Nothing is committed
        here: the watcher counts the errors among the lines it commits."""
        agent = self.engine.get(name)
        info = None if self.engine.transcripts.ended(name) else self.engine.host_of(agent).own_pane(agent)
        if info is not None:
            screen, taken = self.look_at(agent, info)
            if screen is not None:
                self.engine.transcripts.show(name, info.pane, info.history, screen, agent.profile, taken,
                                             info.history_limit)
        return {"name": name}

    def op_screen(self, name: str, history: int = 0, ansi: bool = False) -> dict[str, Any]:
        """The agent's pane as it is now (with `history` lines of scrollback, colours with `ansi`)."""
        agent = self.engine.get(name)
        text = self.engine.host_of(agent).capture(agent, history=history, ansi=ansi)
        return {"name": name, "text": text or "", "available": text is not None}
