"""`supervisor log -f`: an agent followed as it works, each line it shows printed once.

The follow view reads what `supervisor log` reads (supervisor.engine.livescreen): the transcript's committed rows
as they are appended, and the live screen's lines beyond them, each time the engine rewrites it (at most once a
tick, when its capture shows the screen changed). It is an append-only log of what appeared, by this rule:

- A line of the live screen is printed when it appears, unless a line with the same content was printed and is
  still on the screen. A TUI redrawing its rows, an input box that moves down as the conversation above it grows,
  a line rewritten in place with the same text: each is printed once. The content of a line is its text without
  whitespace and without what the watcher sees as animation rather than change (ScreenRules.volatile: the
  profile's own patterns, and the common ones, COMMON_VOLATILE: spinner glyphs, elapsed-time counters, token
  counts). A spinner turning over the same words is printed once, even where its counter is progress for the
  watcher (the demo agent's). A line rewritten with other words (a line typed into an input box) is printed
  again, each version a look caught.
- A committed row is not printed when it is a line printed from the screen that has now scrolled off (or was
  committed as the run's last screen): matched by content from the screen's top, in order, a long line's rows
  together. Other committed rows
  (output that scrolled by between two looks) are printed as they come.
- A line printed from the screen stays printed if it is erased before it scrolls off (a spinner replaced by its
  result, a dialog answered): the transcript itself keeps only what scrolled off and each run's last screen. A
  line that appears above lines already printed (above an input box at the bottom) is printed after them.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from supervisor.agents import get_profile
from supervisor.agents.screens import COMMON_VOLATILE
from supervisor.engine.livescreen import LiveScreen, beyond, current_live, read_whole
from supervisor.engine.screentext import strip_ansi
from supervisor.errors import SupervisorError

_WHITESPACE = re.compile(r"\s+")


class Follower:
    """What to print next of one agent's transcript and live screen."""

    def __init__(self, transcript: Path) -> None:
        self.transcript = transcript
        self.inode = 0  # the transcript file read, and how far
        self.position = 0
        self._partial = b""  # the start of a row whose end is not written yet
        self._open: list[str] = []  # the contents of the live lines printed, as the screen last showed them
        self._wrapped: tuple[str, str] | None = None  # a printed long line, and the content of its rows committed
        self._profile: str | None = None
        self._volatile: tuple[re.Pattern[str], ...] = COMMON_VOLATILE

    def start(self) -> str:
        """Everything shown so far, as `supervisor log` prints it."""
        live = current_live(self.transcript)
        data, (self.inode, self.position) = read_whole(self.transcript)
        text = data.decode(errors="replace")
        rest = beyond(live, self.transcript, (self.inode, self.position))
        self._use(live)
        self._open = [self.content(line) for line in rest]
        return text + "".join(f"{line}\n" for line in rest)

    def poll(self) -> str:
        """What appeared since the last call."""
        live = current_live(self.transcript)  # first: the transcript it follows can only have grown since
        lines = self._committed(self._rows())
        self._use(live)
        lines += self._shown(beyond(live, self.transcript, (self.inode, self.position)))
        return "".join(f"{line}\n" for line in lines)

    def content(self, line: str) -> str:
        """A line's text as compared: no whitespace, nothing the profile calls volatile."""
        text = strip_ansi(line)
        for pattern in self._volatile:
            text = pattern.sub("", text)
        return _WHITESPACE.sub("", text)

    def _use(self, live: LiveScreen | None) -> None:
        if live is None or live.profile == self._profile:
            return
        self._profile = live.profile
        try:
            rules = get_profile(live.profile).screen
        except SupervisorError:  # a profile this version does not know
            rules = None
        own = rules.volatile if rules is not None else ()
        self._volatile = (*own, *(pattern for pattern in COMMON_VOLATILE if pattern not in own))

    def _rows(self) -> list[str]:
        """The rows appended to the transcript since the last call (the rest of the older file first, when it
        was rotated meanwhile)."""
        data = b""
        try:
            now = os.stat(self.transcript)
        except FileNotFoundError:
            return []
        if now.st_ino != self.inode or now.st_size < self.position:
            rotated = self.transcript.with_name(self.transcript.name + ".1")
            try:
                if os.stat(rotated).st_ino == self.inode:
                    with open(rotated, "rb") as handle:
                        handle.seek(self.position)
                        data = handle.read()
            except FileNotFoundError:
                pass
            self.inode, self.position = now.st_ino, 0
        with open(self.transcript, "rb") as handle:
            handle.seek(self.position)
            new = handle.read()
            self.position += len(new)
        data = self._partial + data + new
        whole, _, self._partial = data.rpartition(b"\n")
        return whole.decode(errors="replace").split("\n") if whole or data.startswith(b"\n") else []

    def _committed(self, rows: list[str]) -> list[str]:
        """Of the rows committed, those not printed from the screen before: the screen's top lines, in order (a
        long line's rows together). From the first row that is not the next of them on, each is printed: a row
        that scrolled by is not taken for a line with the same text further down the screen (a box's border)."""
        for index, row in enumerate(rows):
            content = self.content(row)
            if self._wrapped is not None:
                whole, got = self._wrapped
                if content and whole.startswith(got + content):
                    got += content
                    self._wrapped = None if got == whole else (whole, got)
                    continue
                self._wrapped = None
            head = self._open[0] if self._open else None
            if head is not None and head == content:
                self._open.pop(0)
                continue
            if head is not None and content and head.startswith(content):  # the first row of a long line
                self._open.pop(0)
                self._wrapped = (head, content)
                continue
            return rows[index:]
        return []

    def _shown(self, lines: list[str]) -> list[str]:
        """Of the live lines, those whose content is not printed and still on the screen already."""
        printed = Counter(self._open)
        out, contents = [], []
        for index, line in enumerate(lines):
            content = self.content(line)
            if index == 0 and self._wrapped is not None and content \
                    and self._wrapped[0].startswith(self._wrapped[1] + content):
                continue  # the end of a long line printed whole, whose first rows scrolled off
            if printed[content] > 0:
                printed[content] -= 1
            else:
                out.append(line)
            contents.append(content)
        self._open = contents
        return out
