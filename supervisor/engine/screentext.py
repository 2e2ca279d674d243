"""Text as a pane shows it: escape sequences removed, and compared across wrappings.

Shared by the transcripts (which find where they end again after a resize), the live screen beside them (which
tells the lines the transcript holds already from those it does not) and `log -f` (which prints each line once).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# CSI, OSC, and other escape sequences, then lone control characters other than tab and newline.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    r"|\x1b[PX^_][^\x1b]*\x1b\\"  # DCS, SOS, PM, APC
    r"|\x1b[@-Z\\-_]"  # two-character sequences
    r"|[\x00-\x08\x0b-\x1f\x7f]"
)
_WHITESPACE = re.compile(r"\s+")


def strip_ansi(text: str) -> str:
    """Readable text of terminal output: escape sequences removed, and a line rewritten after a carriage
    return (a progress spinner) shown as its last version."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        visible = [segment for segment in (_ANSI.sub("", part) for part in line.split("\r")) if segment.strip()]
        lines.append(visible[-1] if visible else "")
    return "\n".join(lines)


def bare(text: str) -> str:
    """Text as compared across wrappings: no escape sequences, no whitespace. Line by line (each line's own is
    remembered), which is the same: escapes and carriage returns act within a line, and no whitespace is kept."""
    if "\n" in text:
        return "".join(map(bare, text.split("\n")))
    if len(text) <= _CACHED_LINE:
        return _bare_line(text)
    return _WHITESPACE.sub("", strip_ansi(text))


_CACHED_LINE = 1024  # longest line whose bare text is remembered


@functools.lru_cache(maxsize=32768)
def _bare_line(line: str) -> str:
    """`bare` of one screen line, remembered: each look compares the same screen lines again (a live screen's
    lines against the next one's), so most are asked for many times."""
    if "\r" in line:
        return _WHITESPACE.sub("", strip_ansi(line))
    return "".join(_ANSI.sub("", line).split())  # one segment: strip_ansi keeps it, or "" when it is all blank


def find_end(rows: Iterable[str], key: str, *, at_start: bool = False) -> int | None:
    """How many of `rows` (texts without spaces) hold `key` at their end, found last (or at their start);
    None when not found. A row where `key` ends before the row does counts as not written: taken again whole.
    At the start, rows are taken only until they are as long as `key` (a live screen's rows against the few
    lines committed since: the rest need not be made bare)."""
    if not key:
        return None
    if at_start:
        taken, reach = [], 0
        for row in rows:
            taken.append(row)
            reach += len(row)
            if reach >= len(key):
                break
        if not "".join(taken).startswith(key):
            return None
        return len(taken) if reach == len(key) else len(taken) - 1
    rows = list(rows)
    text = "".join(rows)
    found = text.rfind(key)
    if found < 0:
        return None
    end, reach = found + len(key), 0
    for count, row in enumerate(rows, start=1):
        reach += len(row)
        if reach >= end:
            return count if reach == end else count - 1
    return len(rows)


def same_line(old: str, new: str) -> bool:
    """Whether two lines (texts without spaces) are one line at two looks: the same, one typed on further, or
    a long line whose first rows scrolled off."""
    return old == new or bool(old and new and (old.startswith(new) or new.startswith(old) or old.endswith(new)))


def wiped(old: list[str], new: list[str]) -> list[str]:
    """Of the lines of the live screen before (`old`, those the transcript does not hold), the ones the screen
    now (`new`) does not go on with: none when it starts with old's first line; the ones above the line it starts
    with (a full-screen program that scrolled its own region); else all of them (the screen was wiped)."""
    if not old:
        return []
    top = bare(new[0]) if new else None
    if top is None:
        return old
    if same_line(bare(old[0]), top):
        return []  # the usual answer, from two lines: the screen goes on where it was
    keys = [bare(line) for line in old]
    return old[:keys.index(top)] if top and top in keys else old
