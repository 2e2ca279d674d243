"""Pane transcripts, written by the engine from tmux's own history.

tmux keeps what scrolls off a pane's screen (`history_size` lines, up to `history-limit`). The watcher lists
every pane once a tick anyway; when a pane's history grew, the query that captures its screen also fetches
the new lines, and they are appended to the agent's transcript. When the agent ends, its last screen
follows. What its screen shows meanwhile, beyond the transcript, is written beside it as its live screen each
time a capture shows it changed (supervisor.engine.livescreen): a pane, tmux server or engine that dies loses
nothing it showed more than a tick before. There is no process or pipe per pane: a `pipe-pane` per agent made
the tmux server wake twice for each burst of output and poll a descriptor more per pane, which cost it about a
third more CPU than the agents' own output (bench/watch.py).

Where each transcript stands (which server and pane, how many of the pane's history lines it holds) is kept
beside it, so an engine that comes back after a crash continues where the last one stopped: what the agents
printed meanwhile is still in tmux's history.

What cannot be written (a full disk, a read-only folder) waits in memory, in order, and is written by
`retry` (each tick) once it can: the transcript and its cursor move on as if it had been. A live screen that
cannot be written waits the same way (only the newest one).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from supervisor.engine.cursors import CURSOR_SIZE, Cursor, cursor_path, load_cursor
from supervisor.engine.livescreen import (
    LiveScreen,
    beyond,
    committed_since,
    drop_live,
    encode,
    live_path,
    read_live,
    write_live,
)
from supervisor.engine.ownfiles import NotRegular, open_regular
from supervisor.engine.screentext import bare, find_end, same_line, strip_ansi, wiped
from supervisor.paths import agent_file_name
from supervisor.tmux.server import Grid, Scrolled

log = logging.getLogger(__name__)

# What a full disk or a read-only folder answers a write.
DISK_FAULTS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO})


def is_disk_fault(exc: OSError) -> bool:
    """A write refused for now: a full disk, a read-only folder, or a path that is not a plain file (a symlink
    put in a transcript's place is not followed): what it holds waits, and the fault is said once."""
    return exc.errno in DISK_FAULTS or isinstance(exc, NotRegular)


# What tmux draws in a pane whose program ended (remain-on-exit): not the agent's output.
# tmux 3.3 writes it where the cursor was, so it may end a line of the program's own.
_PANE_IS_DEAD = re.compile(r"Pane is dead \((?:status|signal) [^)]*\)\s*$")


TAIL_BYTES = 16 * 1024  # what is kept in memory of each transcript's newest bytes (more than a tick adds, mostly)


class Transcripts:
    """Every agent's transcript file and cursor. Thread-safe: the watcher appends, operations end runs."""

    def __init__(self, logs_dir: Path, max_bytes: int) -> None:
        self.logs_dir = logs_dir
        self.max_bytes = max_bytes
        self._cursors: dict[str, Cursor] = {}
        self._files: dict[str, int] = {}  # open transcripts
        self._cursor_files: dict[str, int] = {}
        self._saved: dict[str, bytes] = {}  # the cursor record each open cursor file holds
        self._lock = threading.Lock()
        self._unwritten: dict[str, bytes] = {}  # per transcript, what the disk refused, oldest first
        self._unsaved: set[str] = set()  # cursors not written since they moved
        self._live: dict[str, LiveScreen] = {}  # per transcript, its live screen as last written (or waiting)
        self._unshown: set[str] = set()  # live screens the disk refused
        self._live_files: dict[str, tuple[int, int]] = {}  # open live screens, and their length
        self._looked: dict[str, tuple[str, int, int] | None] = {}  # the last screen shown, after how many rows
        # Per transcript, the newest bytes this engine appended to its file: (inode, size after them, bytes), so
        # the wipe check knows what was committed since the live screen was shown without reading it back.
        self._tails: dict[str, tuple[int, int, bytes]] = {}
        self._paths: dict[str, Path] = {}
        self.fault: str | None = None  # why the last write failed, while anything waits

    def path(self, name: str) -> Path:
        path = self._paths.get(name)
        if path is None:  # checked once per name: a tick asks for it for every agent that printed
            path = self._paths[name] = self.logs_dir / f"{agent_file_name(name)}.log"
        return path

    def _cursor_path(self, name: str) -> Path:
        return cursor_path(self.path(name))

    def begin(self, name: str, server: str, pane: str, history: int) -> None:
        """A run starts in `pane`, whose history already holds `history` lines (of earlier runs)."""
        with self._lock:
            self._close_unended(name)
            path = self.path(name)
            if path.exists() and path.stat().st_size:
                self._write(name, [f"── {name} started again at {time.strftime('%Y-%m-%d %H:%M:%S')} ──"])
            else:
                with contextlib.suppress(OSError):  # written with its first lines, then
                    os.close(open_regular(path, os.O_WRONLY | os.O_CREAT))  # `supervisor log` finds it from the start
            self._save(name, Cursor(server, pane, history))

    def adopt(self, name: str, server: str, pane: str, history: int) -> None:
        """Continue the transcript of a run a previous engine watched: from its cursor when it is this pane
        of this server, else from what the pane holds now."""
        with self._lock:
            cursor = self._load(name)
            if cursor is None or (cursor.server, cursor.pane) != (server, pane) or cursor.ended:
                self._close_unended(name)
                self._save(name, Cursor(server, pane, history))

    def due(self, name: str, server: str | None, pane: str, history: int, limit: int) -> int:
        """How many history lines of `pane` the transcript lacks (0 when it follows another pane)."""
        cursor = self._cursors.get(name)
        if cursor is None:
            with self._lock:
                cursor = self._load(name)
        if cursor is None or cursor.ended or cursor.pane != pane or cursor.server != server:
            return 0
        return cursor.new(history, limit)

    def resized(self, name: str, server: str | None, pane: str, size: str) -> bool:
        """Whether the pane has another size than at the transcript's last look: its history's rows may be
        wrapped anew (`resync`)."""
        cursor = self._cursors.get(name)
        return cursor is not None and not cursor.ended and (cursor.server, cursor.pane) == (server, pane) \
            and bool(cursor.size) and cursor.size != size

    def sized(self, name: str, pane: str, size: str) -> None:
        """The pane's size at this look (the first look, or one that found no rows to write)."""
        cursor = self._cursors.get(name)
        if cursor is not None and cursor.pane == pane and cursor.size != size:
            with self._lock:
                cursor.size = size
                self._save(name, cursor)

    def resync(self, name: str, pane: str, grid: Grid, size: str) -> list[str]:
        """Find where the transcript ends in a pane whose size changed, and add the history rows after it.

        A taller pane pulls the newest history rows back onto its screen (they scroll off again later), a
        shorter one pushes screen rows into the history, and a new width wraps every long line anew: the row
        count no longer says what is written. The transcript's last rows are found again by their text (without
        spaces, so that a line wrapped otherwise still matches) among the pane's newest rows of history and its
        screen. When they are not found (nothing of this run is written yet, or the history was cleared), the count
        goes on as it was."""
        with self._lock:
            cursor = self._cursors.get(name)
            if cursor is None or cursor.ended or cursor.pane != pane:
                return []
            # A screen rewrapped to the new size is not the one before with lines wiped off it: the wipe check
            # (`_commit_wiped`) starts again from the next screen.
            self._live.pop(name, None)
            rows = [bare(row) for row in grid.rows]
            start = grid.history - (len(grid.rows) - grid.height)  # the history row of rows[0]
            written = find_end(rows, _tail_key(self.path(name)))
            lines: list[str] = []
            if written is None:
                pass  # nothing of this run written yet, or cleared since: the count goes on as it was
            elif start + written >= grid.history:
                cursor.lines, cursor.seen = start + written, grid.history  # its end is on the screen: those rows
                # come back to the history later, and are not written again
            else:
                lines = grid.rows[written:len(grid.rows) - grid.height]
                cursor.lines = cursor.seen = grid.history
            cursor.size = size
            self._write(name, lines)
            self._save(name, cursor)
            return lines

    def append(self, name: str, pane: str, scrolled: Scrolled, limit: int) -> list[str]:
        """Add what the pane's history holds beyond the transcript (`scrolled`: its newest rows, taken with
        its size). Returns the lines added: none when more scrolled off since the count than were taken
        (the next look takes them all)."""
        with self._lock:
            cursor = self._cursors.get(name)
            if cursor is None or cursor.ended or cursor.pane != pane:
                return []
            count = cursor.new(scrolled.size, limit)
            if count > len(scrolled.rows):
                return []
            lines = scrolled.rows[len(scrolled.rows) - count:] if count else []
            if scrolled.size < cursor.seen and lines:  # the history shrank: cleared, maybe with the screen
                self._commit_wiped(name, cursor, lines)
            self._write(name, lines)
            cursor.took(scrolled.size)
            self._save(name, cursor)
            return lines

    def add_kept(self, name: str, server: str, pane: str, rows: list[str], end: int) -> None:
        """Add the rows a pane's host kept while the engine was away (supervisor/engine/host_transcripts.py): the
        transcript then holds its history up to `end` rows, and its next look reads the history from there."""
        with self._lock:
            cursor = self._cursors.get(name) or self._load(name)
            if cursor is None or cursor.ended or (cursor.server, cursor.pane) != (server, pane):
                return
            self._live.pop(name, None)  # the screen shown before the absence is in those rows: not wiped, gone by
            self._looked.pop(name, None)
            self._write(name, rows)
            cursor.lines = cursor.seen = end
            self._save(name, cursor)

    def unwritten_screen(self, name: str, pane: str, history: int, shown: list[str]) -> list[str]:
        """Of the pane's screen lines, those the transcript lacks: all but the top ones it holds already when
        a taller screen took rows back from a history of now `history` rows (see `resync`)."""
        cursor = self._cursors.get(name)
        if cursor is None or cursor.ended or cursor.pane != pane or not cursor.ahead(history):
            return shown
        # The screen's lines are joined where they wrap, so rows cannot be counted off it: the transcript's
        # last rows, that many, are found by their text at its top.
        key = _tail_key(self.path(name), rows=cursor.ahead(history))
        found = find_end([bare(line) for line in shown], key, at_start=True)
        return shown if found is None else shown[found:]

    def end(self, name: str, pane: str, scrolled: Scrolled | None, limit: int, screen: Iterable[str] | None,
            history: int | None = None) -> None:
        """The run in `pane` is over: its last history lines and its screen close the transcript. `history`:
        the history's size when the screen was taken, if `scrolled` does not tell (default: at the last look).
        `screen` None: the pane is gone, and nobody here saw it; its live screen, as the engine that watched it
        last wrote it, closes the transcript."""
        with self._lock:
            cursor = self._cursors.get(name) or self._load(name)
            if cursor is None or cursor.ended or cursor.pane != pane:
                return
            if screen is None:
                self._write(name, self._live_rest(name, cursor))
            else:
                count = cursor.new(scrolled.size, limit) if scrolled is not None else 0
                lines = scrolled.rows[max(0, len(scrolled.rows) - count):] if scrolled is not None and count else []
                size = scrolled.size if scrolled is not None else cursor.seen if history is None else history
                last = [*lines, *self.unwritten_screen(name, pane, size, _shown(screen))]
                self._commit_wiped(name, cursor, last)
                self._write(name, last)
            cursor.ended = True
            self._save(name, cursor)
            self._close(name)
            self._drop_live(name)

    def show(self, name: str, pane: str, history: int, screen: str, profile: str = "",
             scrolled: Scrolled | None = None, limit: int = 0) -> None:
        """What the pane shows now beyond the transcript becomes its live screen (written when it changed):
        the rows of `scrolled` the transcript lacks, if any, then the screen's lines it does not hold. `history`:
        the history's size when the screen was taken (`scrolled` tells it when given)."""
        with self._lock:
            cursor = self._cursors.get(name)
            if cursor is None or cursor.ended or cursor.pane != pane:
                return
            looked = (screen, cursor.lines, history) if scrolled is None else None
            if looked is not None and self._looked.get(name) == looked and name in self._live:
                return  # the same screen after the same rows (a look at a pane that printed nothing new)
            self._looked[name] = looked
            rows: list[str] = []
            if scrolled is not None:
                count = cursor.new(scrolled.size, limit)
                rows = scrolled.rows[max(0, len(scrolled.rows) - count):] if count else []
                history = scrolled.size
            lines = [*rows, *self.unwritten_screen(name, pane, history, _shown(screen.split("\n"), screen))]
            self._commit_wiped(name, cursor, lines)
            try:
                fd = self._files.get(name)
                stat = os.fstat(fd) if fd is not None else os.stat(self.path(name))
                inode, size = stat.st_ino, stat.st_size
            except OSError:
                inode = size = 0
            live = LiveScreen(cursor.server, cursor.pane, profile, cursor.lines, inode, size, tuple(lines))
            if self._live.get(name) != live:
                self._live[name] = live
                self._show(name)

    def _close(self, name: str) -> None:
        self._saved.pop(name, None)
        self._tails.pop(name, None)
        live = self._live_files.pop(name, None)
        for fd in (self._files.pop(name, None), self._cursor_files.pop(name, None), live and live[0]):
            if fd is not None:
                os.close(fd)

    def cursor(self, name: str) -> Cursor | None:
        """Where the agent's transcript stands (None: it has none)."""
        return self._cursors.get(name) or self._load(name)

    def ended(self, name: str) -> bool:
        cursor = self._cursors.get(name) or self._load(name)
        return cursor is None or cursor.ended

    def forget(self, name: str) -> None:
        """The agent is gone: close its files."""
        with self._lock:
            self._cursors.pop(name, None)
            self._unwritten.pop(name, None)
            self._unsaved.discard(name)
            self._live.pop(name, None)
            self._looked.pop(name, None)
            self._unshown.discard(name)
            self._close(name)

    def retry(self) -> bool:
        """Write what waits in memory; True when nothing waits (any more)."""
        if not (self._unwritten or self._unsaved or self._unshown):
            return True
        with self._lock:
            for name in list(self._unwritten):
                if self._put(name, b""):
                    cursor = self._cursors.get(name)
                    if cursor is not None and cursor.ended and name not in self._unsaved:
                        self._close(name)
            for name in list(self._unsaved):
                cursor = self._cursors.get(name)
                if cursor is not None:
                    self._save(name, cursor)
                    if cursor.ended and name not in self._unsaved and name not in self._unwritten:
                        self._close(name)
            for name in list(self._unshown):
                self._show(name)
            if self._unwritten or self._unsaved or self._unshown:
                return False
            log.warning("the transcripts are written again")
            self.fault = None
            return True

    def waiting(self) -> int:
        """Bytes of transcript that wait in memory."""
        return sum(len(data) for data in self._unwritten.values())

    def close(self) -> None:
        with self._lock:
            if self._unwritten:
                log.error("%d byte(s) of transcript could not be written to %s (%s) and are lost", self.waiting(),
                          self.logs_dir, self.fault)
            for name in list(self._files) + list(self._cursor_files) + list(self._live_files):
                self._close(name)

    # files: kept open, since a chatty agent's transcript and cursor are written every tick ----------------

    def _write(self, name: str, lines: list[str]) -> None:
        if lines:
            self._put(name, ("\n".join(line.rstrip() for line in lines) + "\n").encode(errors="replace"))

    def _put(self, name: str, data: bytes) -> bool:
        """Append `data` after what waits for this transcript; False (kept, in order) when the disk refuses."""
        data = self._unwritten.pop(name, b"") + data
        if not data:
            return True
        try:
            try:
                self._append(name, data)
            except Unwritten as unwritten:  # part of it may be written: what was not waits
                data = unwritten.rest
                raise unwritten.error from None
        except OSError as exc:
            if not is_disk_fault(exc):
                raise
            if self.fault is None:
                log.error("cannot write the transcripts in %s (%s): their lines wait in memory and are written "
                          "once it can", self.logs_dir, exc.strerror)
            self.fault = exc.strerror or str(exc)
            self._unwritten[name] = data[-self.max_bytes:]  # more would have been rotated away anyway
            return False
        return True

    def _append(self, name: str, data: bytes) -> None:
        path = self.path(name)
        fd = self._files.get(name)
        stat = os.fstat(fd) if fd is not None else None  # one fstat tells both whether it is there and its size
        if fd is None or stat is None or stat.st_nlink == 0:  # not open yet, or removed by hand: a new file
            if fd is not None:
                os.close(self._files.pop(name))
            fd = self._files[name] = open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            stat = os.fstat(fd)
        size = stat.st_size
        self._remember(name, stat.st_ino, size, data)
        # Rotated before a write would pass the cap, not after: neither file ever holds more than max_bytes. The
        # lines that fit go first; a line longer than the cap is split where the cap falls. A piece the disk
        # refuses is taken back whole, and it and what follows it wait (`Unwritten`).
        try:
            while size + len(data) > self.max_bytes:
                room = max(0, self.max_bytes - size)
                cut = data.rfind(b"\n", 0, room) + 1
                if not cut and not size:
                    cut = room
                if cut:
                    _write_whole(fd, data[:cut], size)
                    data = data[cut:]
                fd = self._rotate(name, path)
                self._tails.pop(name, None)  # a new file: read back from the disk, if ever
                size = 0
            if data:
                _write_whole(fd, data, size)
        except OSError as exc:
            raise Unwritten(exc, data) from exc

    def _remember(self, name: str, inode: int, size: int, data: bytes) -> None:
        """Note `data` as appended at `size` to the file `inode` (taken back by `_append` when the disk refuses
        it or the file rotates), keeping the newest TAIL_BYTES."""
        tail = self._tails.get(name)
        kept = tail[2] if tail is not None and tail[:2] == (inode, size) else b""
        self._tails[name] = (inode, size + len(data), (kept + data)[-TAIL_BYTES:])

    def _committed_since(self, name: str, inode: int, size: int) -> bytes | None:
        """What the transcript gained since it was `size` bytes long in the file `inode` (see `committed_since`),
        from what this engine appended when it can tell, else read back from the disk."""
        tail = self._tails.get(name)
        if tail is not None and tail[0] == inode and tail[1] - len(tail[2]) <= size <= tail[1]:
            try:
                now = os.stat(self.path(name))
            except OSError:
                return None
            if (now.st_ino, now.st_size) == tail[:2]:  # nothing else wrote it, nor moved it
                return tail[2][len(tail[2]) - (tail[1] - size):]
        return committed_since(self.path(name), inode, size)

    def _rotate(self, name: str, path: Path) -> int:
        """Move the transcript to NAME.log.1 and start an empty one, with no moment in which NAME.log is missing
        (a reader may look at any time). A follower sees the file shrink and starts over."""
        held = path.with_name(f".{path.name}.old")
        fresh = path.with_name(f".{path.name}.new")
        held.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC
        try:
            os.link(path, held)
        except OSError:  # a file system without hard links: moved, then created again
            os.replace(path, path.with_name(path.name + ".1"))
            fd = open_regular(path, flags)
        else:
            fd = open_regular(fresh, flags)
            os.replace(fresh, path)
            os.replace(held, path.with_name(path.name + ".1"))
        os.close(self._files.pop(name))
        self._files[name] = fd
        return fd

    def _show(self, name: str) -> None:
        """Write the agent's live screen (what waits, when the disk refused it before)."""
        live = self._live.get(name)
        if live is None:
            self._unshown.discard(name)
            return
        try:
            fd, before = self._live_files.pop(name, (-1, 0))
            if fd >= 0 and os.fstat(fd).st_nlink == 0:  # removed by hand: start a new file
                os.close(fd)
                fd = -1
            if fd < 0:
                fd = open_regular(live_path(self.path(name)), os.O_RDWR | os.O_CREAT)
                before = os.fstat(fd).st_size
            self._live_files[name] = (fd, before)
            data = encode(live)
            write_live(fd, data, before)
            self._live_files[name] = (fd, len(data))
        except OSError as exc:
            if not is_disk_fault(exc):
                raise
            self.fault = self.fault or exc.strerror or str(exc)
            self._unshown.add(name)
            return
        self._unshown.discard(name)

    def _drop_live(self, name: str) -> None:
        self._live.pop(name, None)
        self._looked.pop(name, None)
        self._unshown.discard(name)
        live = self._live_files.pop(name, None)
        if live is not None:
            os.close(live[0])
        with contextlib.suppress(OSError):  # a read-only folder: the ended cursor tells readers it is over
            drop_live(live_path(self.path(name)))

    def _live_rest(self, name: str, cursor: Cursor) -> list[str]:
        """The lines of the run's live screen that its transcript does not hold."""
        live = self._live.get(name) or read_live(live_path(self.path(name)))
        if live is None or (live.server, live.pane) != (cursor.server, cursor.pane):
            return []
        if self._unwritten.get(name):  # lines wait in memory: the file's size says nothing of them
            return list(live.lines)
        return beyond(live, self.path(name))

    def _commit_wiped(self, name: str, cursor: Cursor, lines: list[str]) -> None:
        """Before the live screen is replaced by `lines`: commit the lines of the one before that the new one
        does not go on with (see `wiped`). A screen cleared, an alternate screen and a program that wipes its
        screen as it exits take lines off it that never scroll into the history."""
        old = self._live.get(name)
        if old is None or not old.lines or (old.row == cursor.lines and lines and same_line(
                bare(old.lines[0]), bare(lines[0]))):
            return  # nothing shown before, or the same top line after no rows committed: nothing wiped
        if self._unwritten.get(name) or (old.server, old.pane) != (cursor.server, cursor.pane):
            return  # lines wait in memory: the file's size does not tell which of the screen's it holds
        rest = list(old.lines)
        since = self._committed_since(name, old.inode, old.size)
        if since:
            found = find_end(map(bare, old.lines), bare(since.decode(errors="replace")), at_start=True)
            if found is None:
                return  # rows scrolled by past where the screen was redrawn: overwritten, not wiped
            rest = rest[found:]
        self._write(name, wiped(rest, lines))

    def _close_unended(self, name: str) -> None:
        """Before the transcript follows another run: a run that never ended (its pane went with its tmux
        server, or the machine, and no engine saw it go) is closed by its live screen."""
        cursor = self._cursors.get(name) or self._load(name)
        if cursor is not None and not cursor.ended:
            self._write(name, self._live_rest(name, cursor))
        self._drop_live(name)

    def _save(self, name: str, cursor: Cursor) -> None:
        """Overwrite the cursor file in place with one write of a fixed-size record."""
        self._cursors[name] = cursor
        record = cursor.record()
        if self._saved.get(name) == record and name in self._cursor_files:
            return  # the file holds it already (a look that took no rows)
        self._saved.pop(name, None)
        try:
            fd = self._cursor_files.get(name)
            if fd is None:
                fd = self._cursor_files[name] = open_regular(self._cursor_path(name), os.O_RDWR | os.O_CREAT)
            if len(record) > CURSOR_SIZE + 1:
                os.ftruncate(fd, 0)  # longer than the usual record: no older one may show past its end
            os.pwrite(fd, record, 0)
        except OSError as exc:
            if not is_disk_fault(exc):
                raise
            self.fault = self.fault or exc.strerror or str(exc)
            self._unsaved.add(name)  # the cursor in memory holds; written by `retry`
            return
        self._saved[name] = record
        self._unsaved.discard(name)

    def _load(self, name: str) -> Cursor | None:
        cursor = load_cursor(self._cursor_path(name))
        if cursor is not None:
            self._cursors[name] = cursor
        return cursor


_TAIL_CHARS = 80  # of text, without spaces, that mark where a transcript ends


def _read_end(path: Path, window: int) -> bytes:
    """The last `window` bytes of a file."""
    with open(path, "rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - window))
        return handle.read()


def _tail_key(path: Path, window: int = 16384, rows: int | None = None) -> str:
    """The transcript's last rows as one text without spaces: at least _TAIL_CHARS long when it has that
    much, or its last `rows` rows."""
    try:
        data = _read_end(path, window)
    except OSError:
        return ""
    lines = data.decode(errors="replace").split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the file ends with a newline
    if rows is not None:
        return "".join(bare(line) for line in lines[max(0, len(lines) - rows):])
    key = ""
    for line in reversed(lines):
        key = bare(line) + key
        if len(key) >= _TAIL_CHARS:
            break
    return key


def _shown(screen: Iterable[str], text: str | None = None) -> list[str]:
    """A screen's lines as the transcript keeps them: no trailing spaces or blank lines, no tmux notice. `text`:
    the lines joined by newlines, when the caller has them so."""
    lines = list(screen)
    # Looked for once (a live pane's screen, each time it printed).
    if "Pane is dead" in ("\n".join(lines) if text is None else text):
        shown = [_PANE_IS_DEAD.sub("", line).rstrip() if "Pane is dead" in line else line.rstrip() for line in lines]
    else:
        shown = [line.rstrip() for line in lines]
    while shown and not shown[-1]:
        shown.pop()
    return shown


def read_transcript(path: Path, *, include_rotated: bool = True) -> bytes:
    parts = []
    rotated = path.with_name(path.name + ".1")
    if include_rotated and rotated.exists():
        parts.append(rotated.read_bytes())
    if path.exists():
        parts.append(path.read_bytes())
    return b"".join(parts)


def tail_lines(text: str, count: int) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines[-count:]


def last_words(path: Path, count: int = 12, window: int = 8192) -> list[str]:
    """The last readable lines of a transcript (what a dead pane printed before it ended)."""
    try:
        data = _read_end(path, window)
    except FileNotFoundError:
        return []
    return [line for line in tail_lines(strip_ansi(data.decode(errors="replace")), count) if line.strip()]


class Unwritten(Exception):
    """A transcript write the disk refused, and the bytes that were not written."""

    def __init__(self, error: OSError, rest: bytes) -> None:
        super().__init__(str(error))
        self.error = error
        self.rest = rest


def _write_whole(fd: int, data: bytes, size: int) -> None:
    """Append all of `data` to the file (of `size` bytes before), or none of it: a disk filling up takes part
    of it, then refuses the rest, and the part is taken back so it is written again whole."""
    try:
        rest = memoryview(data)
        while rest:
            rest = rest[os.write(fd, rest):]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise
