"""`tree_write`: a file the engine keeps inside an agent's worktree on the host (its helpers' `status.yaml`, a
message between agents of its tree), never through a symbolic link the agents there could have planted.

The path is walked from the worktree one folder at a time, each opened without following a link
(O_NOFOLLOW | O_DIRECTORY, relative to the one before), and the file is written relative to the last: a link
anywhere below the worktree is refused, not followed. `in_place` rewrites the file keeping its inode (a
sandbox binds that file, and a file renamed over it would not show there); otherwise it is replaced whole,
atomically, by a rename within its folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from typing import Any

from .calls import Call, OpError

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def tree_write(call: Call) -> dict[str, Any]:
    """`text` into `root`/`parts`... (`root`: the worktree, absolute; `parts`: the names below it), the folders
    made when `make` (else a missing one answers `written: false`), in place when `in_place`. → written, path."""
    root = call.arg("root", str)
    parts = call.strings("parts")
    data = call.arg("text", str).encode("utf-8", "surrogateescape")
    make = call.arg("make", bool, False)
    in_place = call.arg("in_place", bool, False)
    if not os.path.isabs(root) or not parts or any(not part or part in (".", "..") or "/" in part
                                                   for part in parts):
        raise OpError(f"not a path inside a worktree: {root!r} {parts!r}")
    path = os.path.join(root, *parts)
    try:
        folder = os.open(root, _FOLDER & ~os.O_NOFOLLOW)  # the worktree itself is where the engine made it
    except OSError as exc:
        raise OpError(f"cannot open {root}: {exc.strerror}") from None
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, _FOLDER, dir_fd=folder)
            except FileNotFoundError:
                if not make:
                    return {"written": False, "path": path}
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=folder)
                inner = _open_folder(part, folder, path)
            except OSError as exc:
                raise OpError(f"{path}: {part} is no folder of its own (a symbolic link?): {exc.strerror}; "
                              "not written") from None
            os.close(folder)
            folder = inner
        if in_place:
            _write_in_place(parts[-1], folder, data, path)
        else:
            _replace(parts[-1], folder, data, path)
    finally:
        os.close(folder)
    return {"written": True, "path": path}


def _open_folder(name: str, folder: int, path: str) -> int:
    try:
        return os.open(name, _FOLDER, dir_fd=folder)
    except OSError as exc:
        raise OpError(f"{path}: {name} is no folder of its own (a symbolic link?): {exc.strerror}; "
                      "not written") from None


def _write_in_place(name: str, folder: int, data: bytes, path: str) -> None:
    try:
        fd = os.open(name, _FILE | os.O_NONBLOCK, 0o644, dir_fd=folder)  # a planted fifo: refused, not waited on
    except OSError as exc:
        raise OpError(f"cannot write {path}: {exc.strerror} (a symbolic link is not followed)") from None
    with os.fdopen(fd, "wb") as out:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:  # a hard link would write another file
            raise OpError(f"cannot write {path}: it is no regular file of its own; not written")
        os.set_blocking(fd, True)
        out.write(data)
        out.truncate(len(data))


def _replace(name: str, folder: int, data: bytes, path: str) -> None:
    temporary = f".tmp-{secrets.token_hex(6)}"
    fd = os.open(temporary, _FILE | os.O_EXCL, 0o644, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise
