"""Opening the files the engine keeps beside each transcript (the transcript, its cursor, its live screen) only when
they are plain files: a symlink put in their place is not followed (the engine would write where it points), and a
FIFO or a device is not opened for writing or read without end."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from supervisor.files import read_all


class NotRegular(OSError):
    """The path is a symlink, a FIFO, a device or a folder: refused."""


def open_regular(path: Path, flags: int, mode: int = 0o600) -> int:
    """`os.open` of a plain file, never through a symlink; NotRegular otherwise."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise NotRegular(exc.errno, f"{path} is not a plain file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular(errno.EINVAL, f"{path} is not a plain file")
    return fd


def read_regular(path: Path, cap: int) -> bytes:
    """At most `cap` bytes of a plain file (OSError, NotRegular among them, when it cannot be read)."""
    fd = open_regular(path, os.O_RDONLY)
    try:
        return read_all(fd, cap)
    finally:
        os.close(fd)
