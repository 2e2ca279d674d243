"""Text as a pane shows it: escape sequences removed, and compared across wrappings.

Shared by the transcripts (which find where they end again after a resize), the live screen beside them (which
tells the lines the transcript holds already from those it does not) and `log -f` (which prints each line once).
"""

from __future__ import annotations

import re

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
    """Text as compared across wrappings: no escape sequences, no whitespace."""
    return _WHITESPACE.sub("", strip_ansi(text))


def find_end(rows: list[str], key: str, *, at_start: bool = False) -> int | None:
    """How many of `rows` (texts without spaces) hold `key` at their end, found last (or at their start);
    None when not found. A row where `key` ends before the row does counts as not written: taken again whole."""
    if not key:
        return None
    text = "".join(rows)
    found = (0 if text.startswith(key) else -1) if at_start else text.rfind(key)
    if found < 0:
        return None
    end, reach = found + len(key), 0
    for count, row in enumerate(rows, start=1):
        reach += len(row)
        if reach >= end:
            return count if reach == end else count - 1
    return len(rows)
