"""The /proc files of watched processes, kept open between scans of their trees.

The watch loop reads every agent's process tree every few seconds (engine/processes.py), and a tree mostly holds
the same processes from one scan to the next (a sandboxed agent's alone: a shell, two bubblewrap processes, two
more shells, the CLI). Each process costs two files, its `stat` and its threads' `children`: an open, a read and
a close each, where a file kept open is read again with one `pread` (the kernel makes its text anew at offset 0),
about a third of the cost.

An open /proc file belongs to its process, not to its pid: once the process ended, reading its `stat` fails, and
its `children` reads empty. So a process's files are trusted only while its `stat` read from the same open file
succeeds; when it fails, every file of that pid is closed and opened anew (the pid may be another process by now).
Files not read for FORGET_SECONDS (their processes left the trees, or ended unseen) are closed.

What a `stat` was parsed into is kept with the text it came from (`parsed`): most of a tree's processes did not run
since the last scan (a shell waiting for its command, a sleeping tool), their text is the same, and parsing it again
cost a quarter of a scan.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

FORGET_SECONDS = 15.0  # the watch loop reads every tree every few seconds
_READ_BYTES = 65536
T = TypeVar("T")


class _Open:
    """One process's open files: its stat, and its threads' children files by thread id."""

    __slots__ = ("children", "parsed", "stat", "text", "used")

    def __init__(self, stat: int, used: float) -> None:
        self.stat = stat
        self.children: dict[str, int] = {}
        self.used = used
        self.text = b""  # the stat text last parsed, and what it was parsed into
        self.parsed: object = None

    def close(self) -> None:
        for fd in (self.stat, *self.children.values()):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.children.clear()


class ProcFiles:
    """Thread-safe: the watch loop and a one-off check (`check_now`) may scan at once."""

    def __init__(self) -> None:
        self._open: dict[int, _Open] = {}
        self._lock = threading.Lock()
        self._pruned = time.monotonic()

    def stat(self, pid: int) -> bytes | None:
        """The text of /proc/PID/stat now; None when no such process can be read."""
        with self._lock:
            return self._stat(pid)

    def parsed(self, pid: int, parse: Callable[[int, bytes], T | None]) -> T | None:
        """`parse(pid, text)` of /proc/PID/stat now, or what the same text was parsed into at the last call (the
        process did not run since: the same `parse` is expected for a pid); None when it cannot be read."""
        with self._lock:
            data = self._stat(pid)
            if data is None:
                return None
            held = self._open.get(pid)
            if held is None:
                return parse(pid, data)
            if held.text != data:
                held.text, held.parsed = data, parse(pid, data)
            return held.parsed  # type: ignore[return-value]  # made by `parse` for this pid

    def walk(self, roots: Iterable[int], parse: Callable[[int, bytes], T | None],
             threads: Callable[[T], int]) -> tuple[dict[int, T], dict[int, list[int]]]:
        """The processes of the trees under `roots`, each as `parsed` gives it, and each one's children as
        `children` lists them (`threads(info)`: its thread count): both read as those calls read them, in one
        hold of the lock for the whole walk (a tree of a few processes, a few hundred of them every few ticks:
        the lock, the calls and the lookups of each process cost more than its two reads)."""
        procs: dict[int, T] = {}
        children: dict[int, list[int]] = {}
        stack = list(roots)
        with self._lock:
            opened = self._open
            while stack:
                pid = stack.pop()
                if pid in procs:
                    continue
                data = self._stat(pid)
                if data is None:
                    continue
                held = opened[pid]  # `_stat` keeps what it read open
                if held.text != data:
                    held.text, held.parsed = data, parse(pid, data)
                info: T | None = held.parsed  # type: ignore[assignment]  # made by `parse` for this pid
                if info is None:
                    continue
                procs[pid] = info
                count = threads(info)
                if count == 1 and held.children:
                    fd = held.children.get(str(pid))
                    if fd is not None and len(held.children) == 1:  # the usual: read again, one pread
                        try:
                            kids = [int(child) for child in os.pread(fd, _READ_BYTES, 0).split()]
                        except OSError:
                            kids = []
                        children[pid] = kids
                        stack.extend(kids)
                        continue
                kids = self._children(pid, count)
                children[pid] = kids
                stack.extend(kids)
        return procs, children

    def _stat(self, pid: int) -> bytes | None:
        now = time.monotonic()
        held = self._open.get(pid)
        if held is not None:
            try:
                data = os.pread(held.stat, _READ_BYTES, 0)
            except OSError:
                data = b""
            if data:
                held.used = now
                return data
            del self._open[pid]  # ended: its pid may be another process's now
            held.close()
        try:
            fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            data = os.pread(fd, _READ_BYTES, 0)
        except OSError:
            data = b""
        if not data:
            os.close(fd)
            return None
        self._open[pid] = _Open(fd, now)
        if now - self._pruned > FORGET_SECONDS / 3:
            self._prune(now)
        return data

    def children(self, pid: int, threads: int) -> list[int]:
        """The children of every thread of `pid` (a multi-threaded CLI may start processes from any thread; a
        process known to have one thread has only its main thread's). Call after `stat` of the same pid: its
        files are those of the process that `stat` read."""
        with self._lock:
            return self._children(pid, threads)

    def _children(self, pid: int, threads: int) -> list[int]:
        held = self._open.get(pid)
        if threads == 1:
            tasks = [str(pid)]
        else:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                return []
        found: list[int] = []
        for tid in tasks:
            fd = held.children.get(tid) if held is not None else None
            if fd is None:
                try:
                    fd = os.open(f"/proc/{pid}/task/{tid}/children", os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    continue
                if held is not None:
                    held.children[tid] = fd
            with contextlib.suppress(OSError):
                found.extend(int(child) for child in os.pread(fd, _READ_BYTES, 0).split())
            if held is None:  # not read through `stat` first: not kept
                os.close(fd)
        if held is not None and len(held.children) > len(tasks):  # threads that ended: their files closed
            for tid in [tid for tid in held.children if tid not in tasks]:
                with contextlib.suppress(OSError):
                    os.close(held.children.pop(tid))
        return found

    def close(self) -> None:
        with self._lock:
            for held in self._open.values():
                held.close()
            self._open.clear()

    def _prune(self, now: float) -> None:
        self._pruned = now
        for pid in [pid for pid, held in self._open.items() if now - held.used > FORGET_SECONDS]:
            self._open.pop(pid).close()
