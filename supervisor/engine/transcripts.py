"""Pane transcripts: tmux appends each pane's raw output to a file; the engine caps its size.

Rotation is copy-then-truncate: the writer (`cat >> file`, opened with O_APPEND) keeps its descriptor and
simply continues at the new end, so no output after the copy is lost and the pipe is never re-created.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

# CSI, OSC, and other escape sequences, then lone control characters other than tab and newline.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    r"|\x1b[PX^_][^\x1b]*\x1b\\"  # DCS, SOS, PM, APC
    r"|\x1b[@-Z\\-_]"  # two-character sequences
    r"|[\x00-\x08\x0b-\x1f\x7f]"
)


def strip_ansi(text: str) -> str:
    """Readable text of raw terminal output: escape sequences removed, and a line rewritten after a
    carriage return (a progress spinner) shown as its last version."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        visible = [segment for segment in (_ANSI.sub("", part) for part in line.split("\r")) if segment.strip()]
        lines.append(visible[-1] if visible else "")
    return "\n".join(lines)


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class TranscriptSizes:
    """Transcript sizes through descriptors kept open: the watcher asks for every agent's each tick, and an
    fstat costs no walk of the path. Rotation truncates in place (same file); a transcript deleted and made
    anew (an agent removed, then started again under its name) is opened again."""

    def __init__(self) -> None:
        self._open: dict[Path, int] = {}

    def size(self, path: Path) -> int:
        fd = self._open.get(path)
        if fd is not None:
            try:
                status = os.fstat(fd)
                if status.st_nlink > 0:
                    return status.st_size
            except OSError:
                pass
            os.close(self._open.pop(path))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return 0
        self._open[path] = fd
        return os.fstat(fd).st_size

    def keep_only(self, paths: Iterable[Path]) -> None:
        """Close the descriptors of transcripts other than `paths` (their agents ended)."""
        kept = set(paths)
        for path in [path for path in self._open if path not in kept]:
            os.close(self._open.pop(path))

    def close(self) -> None:
        self.keep_only(())


def rotate_if_needed(path: Path, max_bytes: int, size: int | None = None) -> bool:
    """Keep `path` under `max_bytes`: its content moves to `path.1` (replacing the older one). `size`: its
    size when the caller has just read it."""
    if (size_of(path) if size is None else size) <= max_bytes:
        return False
    shutil.copyfile(path, path.with_name(path.name + ".1"))
    with open(path, "r+b") as handle:
        handle.truncate(0)
    return True


def read_transcript(path: Path, *, include_rotated: bool = True) -> bytes:
    parts = []
    rotated = path.with_name(path.name + ".1")
    if include_rotated and rotated.exists():
        parts.append(rotated.read_bytes())
    if path.exists():
        parts.append(path.read_bytes())
    return b"".join(parts)


def tail_lines(text: str, count: int) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines[-count:]


def last_words(path: Path, count: int = 12, window: int = 8192) -> list[str]:
    """The last readable lines of a transcript (what a dead pane printed before it ended)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, size_of(path) - window))
            data = handle.read()
    except FileNotFoundError:
        return []
    return [line for line in tail_lines(strip_ansi(data.decode(errors="replace")), count) if line.strip()]
