"""Which files an agent's CLI writes its records to, and reading them incrementally.

Every file is read from where the last read stopped, complete lines only (a line still being written waits for
the next read). A file that was replaced (another inode) or truncated (shorter than the position) is read again
from its start: readers key each response the same way every time, so nothing is counted twice.

Folders are listed again only when their mtime moved (or moved only just: see Finder); a pass over unchanged files
costs one stat each. Only regular files are read, never through a symlink, and never blocking (a FIFO is passed
over): the files are in the agent's own folder, so the agent can put anything there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Any

from supervisor.files import open_regular
from supervisor.usage import aider, claude, codex, gemini
from supervisor.usage.records import Reader

MAX_CHUNK = 8 << 20  # bytes read from one file in one pass; the rest comes on the next pass


@dataclass(frozen=True)
class Source:
    """Where a CLI keeps its records, inside the agent's own state folder: files under `folder` (searched
    `depth` levels down) whose names end with `suffix` and start with `prefix`."""

    folder: str
    suffix: str
    reader: Reader
    prefix: str = ""
    depth: int = 5


SOURCES: dict[str, Source] = {
    "claude": Source("projects", ".jsonl", claude.read, depth=4),  # <cwd>/<id>.jsonl, <id>/subagents/*.jsonl
    "codex": Source("sessions", ".jsonl", codex.read, prefix="rollout-", depth=4),
    "gemini": Source(".gemini/tmp", ".jsonl", gemini.read, depth=4),
    "aider": Source("", "analytics.jsonl", aider.read, depth=0),
}
READERS: dict[str, Reader] = {name: source.reader for name, source in SOURCES.items()}


@dataclass
class Mark:
    """How far a file has been read: its identity (device, inode), the position after the last complete line
    read, and its reader's state at that position."""

    identity: str
    offset: int
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    lines: list[bytes]
    mark: Mark
    restarted: bool  # read from the start again (new file, replaced, truncated)


def read_new(path: Path | str, mark: Mark | None, root: str | None = None) -> Chunk | None:
    """The complete lines added to `path` since `mark`; None when nothing new, the file is gone, or it is not a
    regular file (a FIFO or a device would block the reader; a symlink is not followed). With `root`, a file that
    is not inside `root` once symlinks are resolved (another agent's, through a linked folder) is not read: looked
    at whenever the path leads to another file than the mark's (the same file read on costs no look)."""
    if mark is not None:  # the common case, a file that has not changed: one stat, no open
        try:
            seen = os.lstat(path)
        except OSError:
            return None
        if f"{seen.st_dev}:{seen.st_ino}" == mark.identity and seen.st_size == mark.offset:
            return None
    fd = open_regular(path)
    if fd is None:
        return None
    try:
        stat = os.fstat(fd)
        identity = f"{stat.st_dev}:{stat.st_ino}"
        if root is not None and (mark is None or mark.identity != identity) and not inside(str(path), root):
            return None
        restarted = mark is None or mark.identity != identity or stat.st_size < mark.offset
        offset = 0 if restarted or mark is None else mark.offset
        if stat.st_size == offset and not restarted:
            return None
        data = os.pread(fd, min(stat.st_size - offset, MAX_CHUNK), offset)
    except OSError:
        return None
    finally:
        os.close(fd)
    end = data.rfind(b"\n") + 1
    if not end and len(data) == MAX_CHUNK:
        return Chunk([], Mark(identity, offset + len(data), {} if mark is None or restarted else dict(mark.state)),
                     restarted)  # one line longer than a chunk (a tool's huge output): no usage in it, passed over
    if not end and not restarted:
        return None  # only part of a line so far
    state: dict[str, Any] = {} if restarted or mark is None else dict(mark.state)
    return Chunk(data[:end].splitlines(), Mark(identity, offset + end, state), restarted)


def read_small(path: str, root: str, limit: int = 1 << 20) -> bytes | None:
    """A small regular file inside `root` (a CLI's settings), whole; None when it is not that, or is larger."""
    if not inside(path, root):
        return None
    fd = open_regular(path)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0) if size <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def inside(path: str, folder: str) -> bool:
    """Whether `path`, symlinks resolved, is in `folder` (itself resolved already)."""
    return os.path.realpath(path).startswith(folder.rstrip(os.sep) + os.sep)


class Finder:
    """Lists the record files under a folder (regular files only, symlinks not followed), listing a subfolder
    again only when its mtime changed. A listing made within SETTLE seconds of the folder's mtime is not trusted:
    a file created in the same mtime tick, just after it, leaves the mtime as it was (a filesystem's clock ticks
    coarser than the writes), so such a folder is listed again until its mtime is older than that. Paths are
    strings: a pass over a hundred agents makes no Path objects."""

    SETTLE = 2.0  # seconds

    def __init__(self) -> None:
        # folder → (mtime, whether that listing can be trusted while the mtime stays, folders, files)
        self._listings: dict[str, tuple[int, bool, list[str], list[str]]] = {}

    def files(self, root: str, source: Source) -> Iterator[str]:
        if source.depth == 0:
            path = os.path.join(root, source.suffix)
            try:
                if S_ISREG(os.lstat(path).st_mode):
                    yield path
            except OSError:
                pass
            return
        yield from self._walk(os.path.join(root, source.folder), source, source.depth)

    def _walk(self, folder: str, source: Source, depth: int) -> Iterator[str]:
        try:
            seen = os.lstat(folder)
        except OSError:
            seen = None
        if seen is None or not S_ISDIR(seen.st_mode):  # gone, or a symlink: nothing of the agent's own
            self._listings.pop(folder, None)
            return
        mtime = seen.st_mtime_ns
        cached = self._listings.get(folder)
        if cached is None or cached[0] != mtime or not cached[1]:
            listed_at = time.time()
            folders, files = [], []
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(entry.path)
                        elif entry.name.endswith(source.suffix) and entry.name.startswith(source.prefix) \
                                and entry.is_file(follow_symlinks=False):
                            files.append(entry.path)
            except OSError:
                return
            settled = listed_at - mtime / 1e9 > self.SETTLE
            cached = self._listings[folder] = (mtime, settled, sorted(folders), sorted(files))
        yield from cached[3]
        if depth > 1:
            for sub in cached[2]:
                yield from self._walk(sub, source, depth - 1)

    def forget(self, root: str) -> None:
        prefix = root.rstrip(os.sep) + os.sep
        for folder in [f for f in self._listings if f == root or f.startswith(prefix)]:
            del self._listings[folder]
