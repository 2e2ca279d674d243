"""Reading an agent's spool folder, which the agent itself can write: nothing in it is trusted.

The folder is opened without following a link (a `spool` that is a link to a folder of the user's would have
the engine read, and remove, the files there), and must be a folder the user owns. Each file is opened through
that folder's handle, without following a link and without blocking (a FIFO), and taken only when it is a
regular file no larger than SPOOL_FILE holding a JSON object; anything else is removed, through the folder's
handle too. What one file holds never stops the reading of the next.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from supervisor.engine.hooks import EVENT_BUDGET

log = logging.getLogger(__name__)

SPOOL_FILE = 2 * EVENT_BUDGET  # an event as `supervisor hook` spools it, with room for its envelope
PARTIAL_AGE = 60.0  # seconds after which a hidden file (being written by a hook) is taken as left by a killed one


@dataclass(frozen=True)
class Spooled:
    name: str  # the file's name in the folder
    item: dict[str, Any]  # what it holds: {"event": ..., "at": ..., "key": ...} as `hooks.spool` wrote it
    mtime: float


class SpoolFolder:
    """One agent's spool folder, held open (by a handle, not its path) while it is read and its files removed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fd: int | None = None

    def __enter__(self) -> SpoolFolder:
        self.fd = _open_folder(self.directory)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def read(self) -> list[Spooled]:
        """The events in the folder, oldest name first; what is no event is removed."""
        if self.fd is None:
            return []
        found = []
        for name in sorted(os.listdir(self.fd)):
            if not name.endswith(".json"):
                continue
            try:
                if name.startswith("."):  # being written (`spool`): a partial read would remove it
                    self._drop_if_stale(name)
                    continue
                spooled = self._read(name)
            except FileNotFoundError:  # taken meanwhile
                continue
            except OSError as exc:  # one file the folder will not give: said, and the next one read
                log.warning("spool %s: %s cannot be read: %s", self.directory, name, exc)
                continue
            if spooled is None:
                self.remove(name)
            else:
                found.append(spooled)
        return found

    def remove(self, name: str) -> None:
        if self.fd is not None:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):  # a folder there is left alone
                os.unlink(name, dir_fd=self.fd)

    def _read(self, name: str) -> Spooled | None:
        assert self.fd is not None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd)
        except FileNotFoundError:
            raise
        except OSError:  # a link (ELOOP), or what cannot be opened for reading: not an event
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > SPOOL_FILE:
                return None
            data = os.read(fd, SPOOL_FILE + 1)
        finally:
            os.close(fd)
        if len(data) > SPOOL_FILE:
            return None
        try:
            item = json.loads(data)
        except ValueError:
            return None
        return Spooled(name, item, info.st_mtime) if isinstance(item, dict) else None

    def _drop_if_stale(self, name: str) -> None:
        """A hidden file left by a hook killed while writing it, after a while."""
        assert self.fd is not None
        info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        if info.st_mtime < time.time() - PARTIAL_AGE:
            self.remove(name)


def _open_folder(directory: Path) -> int | None:
    """A handle on `directory`, opened without following a link at it or at its parent (the agent's runtime
    folder); None when it is not there, not a folder, or not the user's."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        parent = os.open(directory.parent, flags)
    except OSError:
        return None
    try:
        fd = os.open(directory.name, flags, dir_fd=parent)
    except OSError:
        return None
    finally:
        os.close(parent)
    if os.fstat(fd).st_uid != os.getuid():
        os.close(fd)
        return None
    return fd


def read_spool(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The events in `directory` (a path each, for a look; the engine reads through `SpoolFolder`)."""
    with SpoolFolder(directory) as folder:
        return [(directory / spooled.name, spooled.item) for spooled in folder.read()]
