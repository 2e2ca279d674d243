"""Reading a file someone else may have planted: only a regular file, through no link at its last part, never
waiting on a FIFO, and no more than a limit (standard library only: it runs on hosts too)."""

from __future__ import annotations

import os
import stat


def read_regular(path: str | os.PathLike[str], limit: int) -> tuple[bytes, os.stat_result] | None:
    """The whole of regular file `path` and its status, or None (a link, a FIFO, unreadable, over `limit` bytes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks = []
        while chunk := os.read(fd, limit + 1):
            chunks.append(chunk)
            if sum(map(len, chunks)) > limit:
                return None
        return b"".join(chunks), info
    except OSError:
        return None
    finally:
        os.close(fd)
