"""Which folders changed since the last look, told by the kernel (Linux inotify, through `inotify_simple`)
instead of a `stat` of each.

The watch loop asks every tick whether a ref folder a live agent depends on moved (engine/changes.py) and
whether a hook was spooled into an agent's spool folder (engine/spools.py): two folders per agent, each a
`stat` a tick while nothing happens, which at a few hundred agents is a share of the loop of its own. An
inotify watch on each folder costs nothing until something is written there, and a tick then reads the few
events that came (one read that never waits).

A folder is reported changed when an entry in it was created, removed, renamed, written or had its attributes
changed; when its watch was just added (what happened before is unknown); when it went away or was moved
(its watch is gone: added again at the next look); and, all of them, when the kernel's queue overflowed.
A link planted in place of a folder is not followed (it cannot be watched). Where inotify cannot be had
(another system, no instance left), `changed` answers None, and it names the folders it cannot watch (not
there yet, not a folder, no watch left): the caller keeps its own `stat` stamps for those, so nothing is ever
missed, it only costs more.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import sys
import threading
from collections.abc import Callable, Iterable

from inotify_simple import INotify, flags

log = logging.getLogger(__name__)

_MASK = (flags.MODIFY | flags.ATTRIB | flags.CLOSE_WRITE | flags.MOVED_FROM | flags.MOVED_TO | flags.CREATE
         | flags.DELETE | flags.DELETE_SELF | flags.MOVE_SELF
         | flags.ONLYDIR | flags.DONT_FOLLOW)  # a link planted in place of a folder is not followed
_GONE = flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED
_NOT_A_FOLDER = (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP)  # the caller's stat tells: nothing to say


class FolderWatch:
    """inotify watches on folders, in groups (one per asker); `changed` tells which folders of a group changed
    since that group's last call. One inotify instance per engine: they are few per user."""

    def __init__(self) -> None:
        self._inotify: INotify | None = None
        self._lock = threading.Lock()
        self._watch_of: dict[str, int] = {}  # folder → watch descriptor
        self._folder_of: dict[int, str] = {}
        self._groups: dict[str, set[str]] = {}  # group → the folders it watches
        self._dirty: dict[str, set[str]] = {}  # group → its folders changed since its last call
        self._bells: dict[str, Callable[[], None]] = {}  # group → what to call when one of its folders changes
        self._said = False
        if sys.platform.startswith("linux"):
            try:
                self._inotify = INotify(nonblocking=True)
            except (OSError, AttributeError) as exc:
                self._say("no inotify instance to be had", exc)

    def changed(self, group: str, folders: Iterable[str]) -> tuple[set[str], set[str]] | None:
        """Of `folders` (absolute paths), those that changed since `group`'s last call or were not watched for it
        before, and those that cannot be watched (not there, not a folder, no watch left: the caller looks at
        them itself). The group's watches of folders no longer asked for are dropped. None without inotify."""
        with self._lock:
            if self._inotify is None:
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

    def dirty(self, groups: Iterable[str]) -> bool:
        """Whether a folder of one of `groups` changed since that group's last `changed` (True without inotify:
        the caller must look); what a `changed` call will say is left for it."""
        with self._lock:
            if self._inotify is None:
                return True
            self._read()
            return any(self._dirty.get(group, set()) & self._groups.get(group, set()) for group in groups)

    def listen(self, group: str, bell: Callable[[], None]) -> None:
        """Call `bell` (quickly: it runs under this watch's lock, in whichever thread read the events) each time
        one of `group`'s folders is found changed. Events are read whenever any group asks (the watch loop asks
        every tick), so a service can sleep until its folders change instead of looking on a timer."""
        with self._lock:
            self._bells[group] = bell

    def close(self) -> None:
        with self._lock:
            if self._inotify is not None:
                self._inotify.close()
                self._inotify = None
            self._watch_of.clear()
            self._folder_of.clear()
            self._groups.clear()

    def _watch(self, folder: str) -> bool:
        assert self._inotify is not None
        try:
            wd: int = self._inotify.add_watch(folder, _MASK)
        except OSError as exc:
            if exc.errno not in _NOT_A_FOLDER:
                self._say("a folder cannot be watched", exc)
            return False
        self._watch_of[folder] = wd
        self._folder_of[wd] = folder
        self._changed(folder)  # what happened there before the watch is not known
        return True

    def _unwatch(self, folder: str) -> None:
        assert self._inotify is not None
        wd = self._watch_of.pop(folder, None)
        if wd is not None:
            del self._folder_of[wd]
            with contextlib.suppress(OSError):  # the kernel already dropped it with its folder
                self._inotify.rm_watch(wd)

    def _changed(self, *folders: str) -> None:
        for dirty in self._dirty.values():
            dirty.update(folders)
        for group, bell in self._bells.items():
            watched = self._groups.get(group, ())
            if any(folder in watched for folder in folders):
                bell()

    def _read(self) -> None:
        assert self._inotify is not None
        try:
            events = self._inotify.read(timeout=0)  # what is queued now, never waiting for more
        except OSError as exc:
            self._say("reading inotify events failed", exc)
            self._changed(*self._watch_of)
            return
        for event in events:
            if event.mask & flags.Q_OVERFLOW:  # events were lost: every folder may have changed
                self._changed(*self._watch_of)
            elif (folder := self._folder_of.get(event.wd)) is not None:
                self._changed(folder)
                if event.mask & _GONE:  # its watch is gone: added again at the next look, which reads the folder
                    self._unwatch(folder)

    def _say(self, what: str, exc: Exception) -> None:
        if not self._said:
            self._said = True
            log.info("%s (%s): folders are looked at with stat instead", what, exc)
