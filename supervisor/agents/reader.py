"""Files of an agent's CLI folder, read on the machine the agent runs on: this one directly, a host through its
link (supervisor/hosts/remote/reader.py). A profile reads what its CLI keeps there (a conversation, to resume it)
through a `Reader`, so the same code serves an agent here and one on a host."""

from __future__ import annotations

import os
from typing import Protocol

from supervisor.files import read_head


class Reader(Protocol):
    def head(self, path: str, limit: int) -> bytes | None:
        """At most the first `limit` bytes of the regular file `path`; None when there is none to read."""
        ...

    def folders(self, folder: str) -> list[str]:
        """The names of the folders in `folder` (none when it is missing)."""
        ...


class LocalReader:
    """This machine's files (the agent's own: no link followed, no FIFO waited on)."""

    def head(self, path: str, limit: int) -> bytes | None:
        return read_head(path, limit)

    def folders(self, folder: str) -> list[str]:
        try:
            with os.scandir(folder) as entries:
                return sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False))
        except OSError:
            return []


LOCAL = LocalReader()
