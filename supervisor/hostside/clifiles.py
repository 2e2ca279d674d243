"""An agent's CLI folder on the host, read for the engine as it reads a local agent's (supervisor/agents/reader.py):
the files its CLI keeps there (conversations, histories) are the agent's to write, so they are read as planted ones
are. A folder is listed only when it is reached from the given root through no link at any step; a file is read
only when it is a regular one, reached through no link at any step below that root, never waited on (a FIFO), and
no more of it than asked. A link would make the agent's conversation id someone else's."""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Any

from .calls import Call, OpError

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_READ = 4 << 20  # bytes one call returns at most


def _steps(root: str, path: str) -> list[str] | None:
    """The names from `root` down to `path` (none for the root itself); None when `path` is not below it."""
    root, path = os.path.normpath(root), os.path.normpath(path)
    if path == root:
        return []
    relative = os.path.relpath(path, root)
    if relative.startswith("..") or os.path.isabs(relative):
        return None
    return relative.split(os.sep)


def _open(root: str, path: str, last: int) -> int | None:
    """A descriptor of `path` opened step by step from `root`, no step a link (`last`: the flags of the last
    step); None when it is not below root, missing, or a step is a link or not a folder."""
    steps = _steps(root, path)
    if steps is None or not os.path.isabs(root):
        return None
    try:
        fd = os.open(root, _DIRECTORY)
    except OSError:
        return None
    try:
        for index, name in enumerate(steps):
            following = os.open(name, last if index == len(steps) - 1 else _DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = following
    except OSError:
        os.close(fd)
        return None
    return fd


def entries(call: Call) -> list[dict[str, Any]]:
    """The folders and regular files in folder `dir` (name, dir: whether a folder, mtime), when `dir` is `root`
    or below it reached through no link; none otherwise."""
    root, folder = str(call.arg("root", str)), str(call.arg("dir", str))
    fd = _open(root, folder, _DIRECTORY)
    if fd is None:
        return []
    found = []
    try:
        with os.scandir(fd) as listing:
            for entry in listing:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
                        found.append({"name": entry.name, "dir": stat.S_ISDIR(info.st_mode), "mtime": info.st_mtime})
    except OSError:
        return []
    finally:
        os.close(fd)
    return sorted(found, key=lambda item: item["name"])


def head(call: Call) -> dict[str, Any]:
    """At most `limit` bytes from the start of regular file `path`, below `root` through no link (with `line`,
    up to and with its first newline) → text (surrogateescape); an error when there is no such file."""
    root, path = str(call.arg("root", str)), str(call.arg("path", str))
    limit = min(call.arg("limit", int), MAX_READ)
    line = call.arg("line", bool, False)
    fd = _open(root, path, _FILE)
    if fd is None:
        raise OpError(f"no regular file {path} below {root} reached through no link")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OpError(f"{path} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(64 * 1024, limit - size))
            if not chunk:
                break
            if line and b"\n" in chunk:
                chunks.append(chunk[:chunk.index(b"\n") + 1])
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise OpError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return {"text": b"".join(chunks).decode("utf-8", "surrogateescape")}
