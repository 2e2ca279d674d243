"""Files on the host (SESSION.md, spools): read, write, list, remove, and watch a folder for files that appear.

Text crosses the link as UTF-8 with undecodable bytes escaped (surrogateescape; JSON carries them as
`\\udcXX`), so the home side gets back exactly the bytes of the file. `~` is the host user's home.
Watching uses inotify through ctypes (no polling); where inotify is unavailable, each folder is listed every
0.5 s instead. The `watch` reply says which (`mode`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from .calls import Call, OpError

POLL_SECONDS = 0.5


def _path(call: Call, name: str = "path") -> str:
    return os.path.expanduser(str(call.arg(name, str)))


def read(call: Call) -> dict[str, Any]:
    """`path` from byte `offset` (default 0), at most `limit` bytes → text, size (of the whole file), mtime,
    end (the offset after what was read: the next read's offset for a file that grows)."""
    path = _path(call)
    offset = call.arg("offset", int, 0)
    limit = call.arg("limit", int, None)
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            handle.seek(offset)
            data = handle.read() if limit is None else handle.read(limit)
    except FileNotFoundError:
        raise OpError(f"no such file: {path}") from None
    return {"text": data.decode("utf-8", "surrogateescape"), "size": status.st_size, "mtime": status.st_mtime,
            "end": offset + len(data)}


def write(call: Call) -> dict[str, Any]:
    """`text` into `path` (folders made as needed): replaced whole and atomically, or added at its end with
    `append`; `mode` (an integer) for a new file."""
    path = _path(call)
    data = call.arg("text", str).encode("utf-8", "surrogateescape")
    mode = call.arg("mode", int, 0o644)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if call.arg("append", bool, False):
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
        with os.fdopen(descriptor, "ab") as handle:
            handle.write(data)
    else:
        descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    return {"size": os.stat(path).st_size}


def listing(call: Call) -> list[dict[str, Any]]:
    """The regular files in folder `dir` (name, size, mtime), by name; a missing folder lists nothing."""
    folder = _path(call, "dir")
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                status = entry.stat(follow_symlinks=False)
                found.append({"name": entry.name, "size": status.st_size, "mtime": status.st_mtime})
        except FileNotFoundError:
            continue
    return sorted(found, key=lambda item: item["name"])


def remove(call: Call) -> dict[str, int]:
    """Remove the files `paths` (those already gone are not an error) → how many were removed."""
    removed = 0
    for path in call.strings("paths"):
        try:
            os.unlink(os.path.expanduser(path))
            removed += 1
        except FileNotFoundError:
            pass
    return {"removed": removed}


# inotify (linux/inotify.h)
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len


class Watches:
    """Folders watched for files that appear (written and closed, or moved in; a name starting with `.` is one
    being written, as spools name them, and is left out): each pushes
    `{"event": "file", "watch": NAME, "name": FILE}`; `{"event": "watch_ended", "watch": NAME, "reason": ...}`
    when the folder itself goes. After an inotify queue overflow every file present is pushed again (a name
    may then come twice: the home side reads what is there)."""

    def __init__(self, push: Callable[..., None]) -> None:
        self._push = push
        self._lock = threading.Lock()
        self._names: dict[int, tuple[str, str]] = {}  # inotify watch descriptor → (watch name, folder)
        self._polled: dict[str, threading.Event] = {}  # watch name → its poller's stop
        self._fd: int | None = None
        self._libc: Any = None
        self._tried = False

    def _inotify(self) -> int | None:
        """The inotify descriptor, made with its reader on first use; None where inotify is unavailable."""
        if self._tried:
            return self._fd
        self._tried = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            descriptor = int(libc.inotify_init1(IN_CLOEXEC))
        except (OSError, AttributeError):
            return None
        if descriptor < 0:
            return None
        self._libc, self._fd = libc, descriptor
        threading.Thread(target=self._read, args=(descriptor,), daemon=True, name="inotify").start()
        return descriptor

    def add(self, call: Call) -> dict[str, Any]:
        """Watch folder `dir` (made if missing) under the name `watch` (default: the folder) → the files there
        now (`files`, by name: those that appear later are pushed) and `mode` (inotify or poll)."""
        folder = _path(call, "dir")
        name = call.arg("watch", str, folder)
        os.makedirs(folder, exist_ok=True)
        with self._lock:
            descriptor = self._inotify()
            if descriptor is not None:
                wd = self._libc.inotify_add_watch(descriptor, os.fsencode(folder),
                                                  IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR)
                if wd < 0:
                    code = ctypes.get_errno()
                    raise OpError(f"cannot watch {folder}: {os.strerror(code)}")
                self._names[wd] = (name, folder)
                mode = "inotify"
            else:
                stop = threading.Event()
                self._polled[name] = stop
                threading.Thread(target=self._poll, args=(name, folder, stop, set(_names(folder))), daemon=True,
                                 name=f"poll-{name}").start()
                mode = "poll"
        return {"files": sorted(_names(folder)), "mode": mode}

    def remove(self, call: Call) -> dict[str, bool]:
        name = call.arg("watch", str)
        with self._lock:
            stop = self._polled.pop(name, None)
            if stop is not None:
                stop.set()
                return {"removed": True}
            for wd, (watched, _) in list(self._names.items()):
                if watched == name:
                    del self._names[wd]
                    self._libc.inotify_rm_watch(self._fd, wd)
                    return {"removed": True}
        return {"removed": False}

    def _read(self, descriptor: int) -> None:
        while True:
            try:
                data = os.read(descriptor, 64 * 1024)
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return
            offset = 0
            while offset < len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size:offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                try:
                    self._dispatch(wd, mask, os.fsdecode(raw))
                except Exception as exc:  # a fault of this program: said, and the watches carry on
                    self._push("protocol_error", error=f"watch: {type(exc).__name__}: {exc}")

    def _dispatch(self, wd: int, mask: int, file: str) -> None:
        if mask & IN_Q_OVERFLOW:
            with self._lock:
                watched = list(self._names.values())
            for name, folder in watched:
                for present in sorted(_names(folder)):
                    self._push("file", watch=name, name=present)
            return
        with self._lock:
            entry = self._names.get(wd)
            if entry is not None and mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                del self._names[wd]
        if entry is None:
            return
        if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
            self._push("watch_ended", watch=entry[0], reason=f"{entry[1]} was removed or moved")
        elif file and not file.startswith(".") and mask & (IN_CLOSE_WRITE | IN_MOVED_TO):
            self._push("file", watch=entry[0], name=file)

    def _poll(self, name: str, folder: str, stop: threading.Event, seen: set[str]) -> None:
        while not stop.wait(POLL_SECONDS):
            if not os.path.isdir(folder):
                self._push("watch_ended", watch=name, reason=f"{folder} was removed or moved")
                return
            now = _names(folder)
            for file in sorted(now - seen):
                self._push("file", watch=name, name=file)
            seen = now


def _names(folder: str) -> set[str]:
    try:
        return {entry.name for entry in os.scandir(folder) if not entry.name.startswith(".")}
    except OSError:
        return set()


