"""Which folders changed since the last look, told by the kernel (Linux inotify) instead of a `stat` of each.

The watch loop asks every tick whether a ref folder a live agent depends on moved (engine/changes.py) and
whether a hook was spooled into an agent's spool folder (engine/spools.py): two folders per agent, each a
`stat` a tick while nothing happens, which at a few hundred agents is a share of the loop of its own. An
inotify watch on each folder costs nothing until something is written there, and a tick then reads the few
events that came (one non-blocking `read`).

A folder is reported changed when an entry in it was created, removed, renamed, written or had its attributes
changed; when its watch was just added (what happened before is unknown); when it went away or was moved
(its watch is gone: added again at the next look); and, all of them, when the kernel's queue overflowed.
Where inotify cannot be had (another system, no instance left), `changed` answers None, and it names the
folders it cannot watch (not there yet, no watch left): the caller keeps its own `stat` stamps for those, so
nothing is ever missed, it only costs more.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
import sys
import threading
from collections.abc import Iterable

log = logging.getLogger(__name__)

_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000  # a link planted in place of a folder is not followed
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_MASK = (_IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
         | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR | _IN_DONT_FOLLOW)
_GONE = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)
_READ_BYTES = 65536


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


class FolderWatch:
    """inotify watches on folders, in groups (one per asker); `changed` tells which folders of a group changed
    since that group's last call. One inotify instance per engine: they are few per user."""

    def __init__(self) -> None:
        self._libc = _libc()
        self._fd = -1
        self._lock = threading.Lock()
        self._watch_of: dict[str, int] = {}  # folder → watch descriptor
        self._folder_of: dict[int, str] = {}
        self._groups: dict[str, set[str]] = {}  # group → the folders it watches
        self._dirty: dict[str, set[str]] = {}  # group → its folders changed since its last call
        self._said = False
        if self._libc is not None:
            fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                self._say("no inotify instance to be had", ctypes.get_errno())
            else:
                self._fd = fd

    def changed(self, group: str, folders: Iterable[str]) -> tuple[set[str], set[str]] | None:
        """Of `folders` (absolute paths), those that changed since `group`'s last call or were not watched for it
        before, and those that cannot be watched (not there, not a folder, no watch left: the caller looks at
        them itself). The group's watches of folders no longer asked for are dropped. None without inotify."""
        with self._lock:
            if self._fd < 0:
                return None
            wanted = set(folders)
            self._read()
            had = self._groups.get(group, set())
            dirty = self._dirty.setdefault(group, set())
            for folder in had - wanted:
                if not any(folder in others for name, others in self._groups.items() if name != group):
                    self._unwatch(folder)
            unwatched = set()
            for folder in wanted:
                if folder not in self._watch_of and not self._watch(folder):
                    unwatched.add(folder)
                elif folder not in had:
                    dirty.add(folder)  # what happened there before the group asked is not known to it
            self._groups[group] = wanted - unwatched
            changed = dirty & wanted
            dirty.clear()
            return changed, unwatched

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._watch_of.clear()
            self._folder_of.clear()
            self._groups.clear()

    def _watch(self, folder: str) -> bool:
        assert self._libc is not None
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), _MASK)
        if wd < 0:
            code = ctypes.get_errno()
            if code not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP):
                self._say("a folder cannot be watched", code)
            return False
        self._watch_of[folder] = wd
        self._folder_of[wd] = folder
        for dirty in self._dirty.values():
            dirty.add(folder)  # what happened there before the watch is not known
        return True

    def _unwatch(self, folder: str) -> None:
        assert self._libc is not None
        wd = self._watch_of.pop(folder, None)
        if wd is not None:
            self._folder_of.pop(wd, None)
            self._libc.inotify_rm_watch(self._fd, wd)

    def _changed(self, folder: str) -> None:
        for dirty in self._dirty.values():
            dirty.add(folder)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                self._say("reading inotify events failed", exc.errno or 0)
                for watched in self._watch_of:
                    self._changed(watched)
                return
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + size
                if mask & _IN_Q_OVERFLOW:  # events were lost: every folder may have changed
                    for each in self._watch_of:
                        self._changed(each)
                    continue
                folder = self._folder_of.get(wd)
                if folder is None:
                    continue
                self._changed(folder)
                if mask & _GONE:  # its watch is gone: added again at the next look, which reads the folder
                    self._watch_of.pop(folder, None)
                    self._folder_of.pop(wd, None)
                    if not mask & _IN_IGNORED:
                        self._libc.inotify_rm_watch(self._fd, wd)  # type: ignore[union-attr]
            if len(data) < _READ_BYTES - 4096:
                return

    def _say(self, what: str, code: int) -> None:
        if not self._said:
            self._said = True
            log.info("%s (%s): folders are looked at with stat instead", what, os.strerror(code) if code else "?")
