"""Where a transcript stands in its pane's history: which server and pane it follows, how many of the pane's history
rows it holds, whether its run has ended. Kept beside the transcript (NAME.log.pos, one fixed-size record written
over in place), so an engine that comes back after a crash continues where the last one stopped, and a reader
tells a live screen of the current run from one left behind.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from supervisor.engine.ownfiles import read_regular
from supervisor.hostside.history import new_lines

CURSOR_SIZE = 255  # bytes of a cursor record: written over in place, padded with spaces


@dataclass
class Cursor:
    """How far an agent's transcript has taken its pane's history."""

    server: str
    pane: str
    lines: int  # of the pane's history, already in the transcript (more than it holds: rows on its screen too)
    ended: bool = False  # its last screen is written: nothing more comes from this run
    seen: int = -1  # the history's size at the last look (-1, as a new cursor or an older record: `lines`)
    size: str = ""  # the pane's size at the last look ("WxH"), which its history's rows were wrapped to

    def __post_init__(self) -> None:
        if self.seen < 0:
            self.seen = self.lines

    def new(self, history: int, limit: int) -> int:
        """How many of `history` rows the transcript lacks."""
        if history >= self.seen:
            return max(0, history - self.lines)
        return new_lines(self.lines, history, limit)

    def ahead(self, history: int) -> int:
        """How many rows beyond a history of `history` rows are written already: the screen's top rows, which a
        taller screen took back from it (see `Transcripts.resync`)."""
        return max(0, self.lines - history)

    def took(self, history: int) -> None:
        """Every row of a history of `history` rows is written now (or, ahead after a resize, will be)."""
        self.lines = max(self.lines, history) if history >= self.seen else history
        self.seen = history


    def record(self) -> bytes:
        """The record as it is written: padded to CURSOR_SIZE, then a newline. The text `json.dumps` makes of
        the fields, its strings' part (the same for a run's every record: it is written each tick its pane
        printed) encoded once."""
        text = f'{_names(self.server, self.pane)}"lines": {self.lines}, ' \
               f'"ended": {"true" if self.ended else "false"}, "seen": {self.seen}, "size": {_text(self.size)}}}'
        return text.encode().ljust(CURSOR_SIZE) + b"\n"


@functools.lru_cache(maxsize=1024)
def _names(server: str, pane: str) -> str:
    return f'{{"server": {json.dumps(server)}, "pane": {json.dumps(pane)}, '


@functools.lru_cache(maxsize=1024)
def _text(value: str) -> str:
    return json.dumps(value)


def cursor_path(transcript: Path) -> Path:
    return transcript.with_name(transcript.name + ".pos")


def load_cursor(path: Path) -> Cursor | None:
    """The cursor recorded at `path`; None when there is none (or it cannot be read)."""
    try:
        data = json.loads(read_regular(path, 4 * CURSOR_SIZE))
        return Cursor(str(data["server"]), str(data["pane"]), int(data["lines"]), bool(data["ended"]),
                      int(data.get("seen", -1)), str(data.get("size", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
