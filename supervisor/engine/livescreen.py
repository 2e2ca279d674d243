"""The live screen beside an agent's transcript: what the agent shows that the transcript does not hold yet.

The transcript (NAME.log) is append-only and holds committed lines: the rows that scrolled off the pane into
tmux's history, and each run's last screen. The rest of what the agent shows is still on its screen. Each time
the watcher's capture of a pane (the one it makes anyway to read the agent's state) shows a change, the engine
writes what the screen shows beyond the transcript to NAME.log.live, over the one before, in one write. Its first
line tells where the screen follows the transcript (the pane's history row its first line has, the transcript
file, its inode, and the size it follows) and how long the screen's text is, and its checksum: a reader that
comes upon a write under way reads again, and never takes half of one. (A new file renamed over the old one would
do the same at ten times the cost: 0.1 ms a write, with a quarter of 100 agents printing every second.)

`supervisor log` prints the transcript, then the live lines it does not hold. The engine, when it finds a pane or
its tmux server gone, commits those lines as the run's last screen: whether it watched the pane itself or was
started after the engine that did was killed. A tmux server, a machine or an engine that dies loses at most what
the pane printed within the last tick.

The transcript may have grown since its live screen was written (the engine commits rows, then writes the screen:
a reader may come in between, or the engine be killed there). The rows committed since were the screen's top
lines, and are found there by their text, without spaces (the transcript's rows are screen rows, and a long live
line is one line however many rows it wraps to).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from supervisor.engine.cursors import cursor_path, load_cursor
from supervisor.engine.ownfiles import read_regular
from supervisor.engine.screentext import bare, find_end

LIVE_CAP = 4 << 20  # bytes of a live screen read at most: a screen is some kilobytes (a bigger file is not one)


@dataclass(frozen=True)
class LiveScreen:
    server: str
    pane: str
    profile: str  # the agent's profile, whose volatile text (a spinner, a timer) `log -f` does not repeat
    row: int  # the pane's history row its first line has (the rows before it are in the transcript)
    inode: int  # the transcript file the lines follow, and its size in bytes when they were written
    size: int
    lines: tuple[str, ...]


def live_path(transcript: Path) -> Path:
    return transcript.with_name(transcript.name + ".live")


def encode(screen: LiveScreen) -> bytes:
    body = ("\n".join(screen.lines) + "\n" if screen.lines else "").encode(errors="replace")
    # The header as json.dumps writes it, its strings' part (the same for a run's every screen) written once.
    numbers = f'"row": {screen.row}, "inode": {screen.inode}, "size": {screen.size}, "bytes": {len(body)}, ' \
              f'"crc": {zlib.crc32(body)}}}'
    return f"{_names(screen.server, screen.pane, screen.profile)}{numbers}\n".encode() + body


@functools.lru_cache(maxsize=1024)
def _names(server: str, pane: str, profile: str) -> str:
    return json.dumps({"server": server, "pane": pane, "profile": profile})[:-1] + ", "


def decode(data: bytes) -> LiveScreen | None:
    """The live screen in `data`; None when it is not a whole one."""
    head, _, body = data.partition(b"\n")
    try:
        fields = json.loads(head)
        body = body[:int(fields["bytes"])]
        if len(body) != int(fields["bytes"]) or zlib.crc32(body) != int(fields["crc"]):
            return None
        lines = body.decode(errors="replace").split("\n")
        return LiveScreen(str(fields["server"]), str(fields["pane"]), str(fields.get("profile", "")),
                          int(fields["row"]), int(fields["inode"]), int(fields["size"]), tuple(lines[:-1]))
    except (ValueError, KeyError, TypeError):
        return None


def write_live(fd: int, data: bytes, before: int) -> None:
    """Write a live screen (`encode`) over the one the open file holds (`before` bytes long)."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], done)
    if len(data) < before:
        os.ftruncate(fd, len(data))


def read_live(path: Path, tries: int = 5) -> LiveScreen | None:
    """The live screen at `path`; None when there is none (or it cannot be read)."""
    for _ in range(tries):
        try:
            data = read_regular(path, LIVE_CAP)
        except OSError:
            return None
        screen = decode(data)
        if screen is not None or not data:
            return screen
        time.sleep(0.005)  # being written: read again
    return None


def current_live(transcript: Path) -> LiveScreen | None:
    """The live screen beside `transcript`, unless its run is over (or another run is on): one whose removal
    failed (a read-only folder) says nothing more."""
    live = read_live(live_path(transcript))
    cursor = load_cursor(cursor_path(transcript))
    if live is None or cursor is None:
        return live
    return None if cursor.ended or (cursor.server, cursor.pane) != (live.server, live.pane) else live


def drop_live(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def committed_since(transcript: Path, inode: int, size: int, read: tuple[int, int] | None = None) -> bytes | None:
    """What the transcript gained after it was `size` bytes long in the file `inode` (moved to NAME.log.1 by a
    rotation since, maybe); None when that cannot be told (the file was removed or cut). `read`: the file
    (inode) and size a reader has read up to; what was written after does not count."""
    try:
        now = os.stat(transcript)
        end = read[1] if read is not None and read[0] == now.st_ino else None
        if now.st_ino == inode:
            return _read_range(transcript, size, end) if (now.st_size if end is None else end) >= size else None
        rotated = transcript.with_name(transcript.name + ".1")
        if os.stat(rotated).st_ino == inode:
            if read is not None and read[0] == inode:  # the reader has not come to the new file yet
                return _read_range(rotated, size, read[1])
            return _read_range(rotated, size, None) + _read_range(transcript, 0, end)
    except OSError:
        pass
    return None


def _read_range(path: Path, start: int, end: int | None) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read() if end is None else handle.read(max(0, end - start))


def beyond(screen: LiveScreen | None, transcript: Path, read: tuple[int, int] | None = None) -> list[str]:
    """The live screen's lines that the transcript does not hold now (or, with `read`, up to where a reader
    has read it: the file's inode and size)."""
    if screen is None:
        return []
    lines = list(screen.lines)
    since = committed_since(transcript, screen.inode, screen.size, read)
    if not since:  # nothing committed since (or unknown: better twice than lost)
        return lines
    key = bare(since.decode(errors="replace"))
    shown = [bare(line) for line in lines]
    if key.startswith("".join(shown)):
        return []  # all of it, and more: the run's end was committed
    found = find_end(shown, key, at_start=True)
    if found is None:
        return lines
    # Blank rows add nothing to the key: those the transcript ends with are the blank lines after the match.
    rows = since.decode(errors="replace").split("\n")[:-1]
    blank = len(rows) - len(list(itertools.dropwhile(lambda row: not bare(row), reversed(rows))))
    while blank and found < len(shown) and not shown[found]:
        found, blank = found + 1, blank - 1
    return lines[found:]


def shown(transcript: Path) -> bytes:
    """Everything the agent showed: its transcript (the older file first, after a rotation), then the lines of
    its live screen that the transcript does not hold."""
    live = current_live(transcript)  # first: the transcript it follows can only have grown since
    data, read = read_whole(transcript)
    return data + "".join(f"{line}\n" for line in beyond(live, transcript, read)).encode(errors="replace")


def read_whole(transcript: Path) -> tuple[bytes, tuple[int, int]]:
    """The transcript, the older file first after a rotation, and the file (inode) and size read of the newer."""
    parts = []
    with contextlib.suppress(FileNotFoundError):
        parts.append(transcript.with_name(transcript.name + ".1").read_bytes())
    try:
        with open(transcript, "rb") as handle:
            data = handle.read()
            read = (os.fstat(handle.fileno()).st_ino, len(data))
    except FileNotFoundError:
        data, read = b"", (0, 0)
    return b"".join(parts) + data, read
