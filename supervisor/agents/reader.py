"""Files of an agent's CLI folder, read on the machine the agent runs on: this one directly, a host through its
link (supervisor/hosts/remote/reader.py). A profile reads what its CLI keeps there (a conversation, to resume it)
through a `Reader`, so the same code serves an agent here and one on a host.

The files are the agent's to write: a file is read only when it is a regular one (never through a link at its last
part, never waited on: a FIFO), and a folder is listed only when reached from the agent's folder through no link."""

from __future__ import annotations

import os
import posixpath
from typing import NamedTuple, Protocol

from supervisor.files import open_regular, read_head


class Entry(NamedTuple):
    name: str
    folder: bool  # a folder (else a regular file)
    mtime: float


class Reader(Protocol):
    def head(self, path: str, limit: int) -> bytes | None:
        """At most the first `limit` bytes of the regular file `path`; None when there is none to read."""
        ...

    def first_line(self, path: str, limit: int) -> bytes | None:
        """The first line of the regular file `path` (at most `limit` bytes of it); None when there is none."""
        ...

    def folders(self, folder: str) -> list[str]:
        """The names of the folders in `folder` (none when it is missing)."""
        ...

    def entries(self, folder: str, within: str) -> list[Entry]:
        """The folders and regular files in `folder`, when it is `within` or below it reached through no link at
        any step; none otherwise (or when it is missing)."""
        ...


class LocalReader:
    """This machine's files (the agent's own: no link followed, no FIFO waited on)."""

    def head(self, path: str, limit: int) -> bytes | None:
        return read_head(path, limit)

    def first_line(self, path: str, limit: int) -> bytes | None:
        fd = open_regular(path)
        if fd is None:
            return None
        try:
            with os.fdopen(fd, "rb") as handle:
                return handle.readline(limit)
        except OSError:
            return None

    def folders(self, folder: str) -> list[str]:
        try:
            with os.scandir(folder) as entries:
                return sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False))
        except OSError:
            return []

    def entries(self, folder: str, within: str) -> list[Entry]:
        if not _reached_through_no_link(folder, within):
            return []
        found = []
        try:
            with os.scandir(folder) as listing:
                for entry in listing:
                    try:
                        if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
                            found.append(Entry(entry.name, entry.is_dir(follow_symlinks=False),
                                               entry.stat(follow_symlinks=False).st_mtime))
                    except OSError:
                        continue
        except OSError:
            return []
        return sorted(found)


def _reached_through_no_link(folder: str, within: str) -> bool:
    """Whether `folder` is `within` or below it, no step from `within` down to it a link."""
    step, root = posixpath.normpath(folder), posixpath.normpath(within)
    if step != root and not step.startswith(root.rstrip("/") + "/"):
        return False
    while step != root:
        if os.path.islink(step):
            return False
        step = posixpath.dirname(step)
    return True


LOCAL = LocalReader()
