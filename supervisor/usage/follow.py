"""Which files an agent's CLI writes its records to, and reading them incrementally.

Every file is read from where the last read stopped, complete lines only (a line still being written waits for
the next read). A file that was replaced (another inode) or truncated (shorter than the position) is read again
from its start: readers key each response the same way every time, so nothing is counted twice.

Folders are listed again only when their mtime moved; a pass over unchanged files costs one stat each.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def read_new(path: Path | str, mark: Mark | None) -> Chunk | None:
    """The complete lines added to `path` since `mark`; None when nothing new (or the file is gone)."""
    if mark is not None:  # the common case, a file that has not changed: one stat, no open
        try:
            seen = os.stat(path)
        except OSError:
            return None
        if f"{seen.st_dev}:{seen.st_ino}" == mark.identity and seen.st_size == mark.offset:
            return None
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            identity = f"{stat.st_dev}:{stat.st_ino}"
            restarted = mark is None or mark.identity != identity or stat.st_size < mark.offset
            offset = 0 if restarted or mark is None else mark.offset
            if stat.st_size == offset and not restarted:
                return None
            handle.seek(offset)
            data = handle.read(min(stat.st_size - offset, MAX_CHUNK))
    except OSError:
        return None
    end = data.rfind(b"\n") + 1
    if not end and len(data) == MAX_CHUNK:
        return Chunk([], Mark(identity, offset + len(data), {} if mark is None or restarted else dict(mark.state)),
                     restarted)  # one line longer than a chunk (a tool's huge output): no usage in it, passed over
    if not end and not restarted:
        return None  # only part of a line so far
    state: dict[str, Any] = {} if restarted or mark is None else dict(mark.state)
    return Chunk(data[:end].splitlines(), Mark(identity, offset + end, state), restarted)


class Finder:
    """Lists the record files under a folder, listing a subfolder again only when its mtime changed. Paths are
    strings: a pass over a hundred agents makes no Path objects."""

    def __init__(self) -> None:
        self._listings: dict[str, tuple[int, list[str], list[str]]] = {}  # folder → (mtime, folders, files)

    def files(self, root: str, source: Source) -> Iterator[str]:
        if source.depth == 0:
            path = os.path.join(root, source.suffix)
            if os.path.isfile(path):
                yield path
            return
        yield from self._walk(os.path.join(root, source.folder), source, source.depth)

    def _walk(self, folder: str, source: Source, depth: int) -> Iterator[str]:
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            self._listings.pop(folder, None)
            return
        cached = self._listings.get(folder)
        if cached is None or cached[0] != mtime:
            folders, files = [], []
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(entry.path)
                        elif entry.name.endswith(source.suffix) and entry.name.startswith(source.prefix):
                            files.append(entry.path)
            except OSError:
                return
            cached = self._listings[folder] = (mtime, sorted(folders), sorted(files))
        yield from cached[2]
        if depth > 1:
            for sub in cached[1]:
                yield from self._walk(sub, source, depth - 1)

    def forget(self, root: str) -> None:
        prefix = root.rstrip(os.sep) + os.sep
        for folder in [f for f in self._listings if f == root or f.startswith(prefix)]:
            del self._listings[folder]
