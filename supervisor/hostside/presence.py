"""The engine is here: what the host program tells the keepers of its panes' transcripts (keeper.py).

The engine asks for a repository folder's keeper when it has agents on this host (`transcripts_keep`): the program
holds the folder's `.home` lock shared and sees that a keeper runs (a process of its own, in a session of its own,
so it outlives the connection; one at a time per folder, by its `.keeper` lock). While the engine is here, it looks
again every few seconds: a keeper that ended (its tmux server was gone, it was killed) is started again once a
tmux server answers there, and one of an older host program hands over to this one's (`.keeper.want`).

The program lets go of every `.home` lock when its input ends (it exits), and when the engine has been silent for
SILENT seconds (a connection cut without a word: the engine pings every 10 s and its watch talks every second);
the next line from the engine has them taken again. While no program holds it, the keeper writes down what the
panes show.

No lock is waited on for long (anything the host user runs can hold one, an agent without a sandbox too): the
reader of the engine's lines never waits on one, and an op that needs `.home` held gives up after HOLD_WAIT
seconds, saying who holds it. Such a holder (`flock .home`) makes the keeper believe the engine is here: it then
keeps nothing.
"""

from __future__ import annotations

import fcntl
import os
import socket as sockets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import spoolfiles
from .calls import Call, OpError

SILENT = 30.0  # seconds without a line from the engine after which it is taken to be away
_LOOK_EVERY = 5.0  # seconds between looks at the silence and at the keepers
HOLD_WAIT = 3.0  # seconds an op waits for `.home` (a keeper's look under way ends well within it)


@dataclass
class _Root:
    socket: str
    home: int | None = None  # its `.home` lock, open
    held: bool = False  # held shared now
    said: int = 0  # bytes of its keeper's log reported to the engine


class Presence:
    def __init__(self) -> None:
        self._roots: dict[str, _Root] = {}
        self._away = False
        self._heard = time.monotonic()
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._watching = False

    def heard(self) -> None:
        """A line from the engine (on the reader: never waits; the locks let go are taken again by the watch)."""
        self._heard = time.monotonic()
        if self._away:
            self._wake.set()

    def _hold(self, root: str, wait: float) -> bool:
        """Hold `root`'s `.home` shared (the caller holds the guard), waiting `wait` seconds at most for a
        keeper's look under way to end (what it writes is then whole)."""
        entry = self._roots[root]
        if entry.held:
            return True
        if not os.path.isdir(root):
            return False  # removed: nothing to hold (and the folder is not made again)
        if entry.home is None:
            entry.home = spoolfiles.lock_file(root, ".home")
        deadline = time.monotonic() + wait
        while not spoolfiles.try_lock(entry.home, fcntl.LOCK_SH):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        entry.held = True
        return True

    def _need(self, root: str, socket: str | None = None) -> None:
        """`root` known and its `.home` held for an op: the engine is here (an OpError when it cannot be held)."""
        with self._guard:
            entry = self._roots.get(root)
            if entry is None:
                entry = self._roots[root] = _Root(socket or "")
            elif socket:
                entry.socket = socket
            self._away = False
            if os.path.isdir(root) and not self._hold(root, HOLD_WAIT):
                raise OpError(f"the lock {spoolfiles.folder(root)}/.home is held by another process on the host "
                              f"(not a keeper's look): its panes' copies cannot be read or kept now")
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, daemon=True, name="presence").start()

    def here(self, root: str) -> None:
        """The engine is here for `root`: its `.home` held."""
        self._need(root)

    def keep(self, call: Call) -> dict[str, Any]:
        """`transcripts_keep` {root, socket}: the keeper of `root`'s panes (tmux at `socket`) runs, and knows the
        engine is here. Answers `keeper` (running, started, or waiting for a tmux server) and `said`: what the
        keeper wrote in its log since the last answer (its faults), if anything."""
        root = os.path.expanduser(call.arg("root", str))
        socket = os.path.expanduser(call.arg("socket", str))
        if not os.path.isabs(root):
            raise OpError(f"not an absolute path: {root}")
        self._need(root, socket)
        with self._guard:
            state = self._ensure_keeper(root, wanted=True)
            said = self._said(root)
        return {"root": root, "keeper": state, "said": said}

    def take(self, call: Call) -> dict[str, Any] | None:
        """`transcript_take` {root, server, pane, offset?}: a part of what the host kept of the pane while the
        engine was away (spoolfiles.take)."""
        root = os.path.expanduser(call.arg("root", str))
        self._need(root)
        offset = call.arg("offset", int, None)
        if offset is not None and offset < 0:
            raise OpError(f"not an offset: {offset}")
        return spoolfiles.take(root, call.arg("server", str), call.arg("pane", str), offset)

    def drop(self, call: Call) -> dict[str, Any]:
        """`transcript_drop` {root, server, pane, end?, size?}: the engine has the copy it took (only that copy:
        not one grown since)."""
        root = os.path.expanduser(call.arg("root", str))
        self._need(root)
        dropped = spoolfiles.drop(root, call.arg("server", str), call.arg("pane", str), call.arg("end", int, None),
                                  call.arg("size", int, None))
        return {"dropped": dropped}

    def sweep(self, call: Call) -> dict[str, Any]:
        """`transcripts_sweep` {root, follow: [[server, pane], ...]}: forget the copies of every other pane (no
        transcript of the engine's follows them)."""
        root = os.path.expanduser(call.arg("root", str))
        follow = call.arg("follow", list)
        if not all(isinstance(item, list) and len(item) == 2 and all(isinstance(part, str) for part in item)
                   for item in follow):
            raise OpError("follow: a list of [server, pane]")
        self._need(root)
        return {"dropped": spoolfiles.sweep(root, {(server, pane) for server, pane in follow})}

    def _ensure_keeper(self, root: str, wanted: bool = False) -> str:
        """A keeper runs for `root` (the caller holds the guard); `wanted`: the engine asked for this program's
        (an older program's hands over to it)."""
        entry = self._roots[root]
        if not os.path.isdir(root):
            return "no folder"
        me = os.path.realpath(sys.argv[0])
        if wanted and spoolfiles.wanted(root) != me:  # a keeper of another program hands over at its next look
            spoolfiles.want(root, me)
        lock = spoolfiles.lock_file(root, ".keeper")
        try:
            if not spoolfiles.try_lock(lock, fcntl.LOCK_EX):
                return "running"
            fcntl.flock(lock, fcntl.LOCK_UN)
        finally:
            os.close(lock)
        if not answers(entry.socket):
            return "no tmux server"  # nothing to keep yet: started once one answers
        log = os.open(os.path.join(spoolfiles.folder(root), spoolfiles.LOG),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            subprocess.Popen([sys.executable, "-I", "-S", sys.argv[0], "keep", root, entry.socket],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd="/",
                             start_new_session=True, close_fds=True)
        finally:
            os.close(log)
        return "started"

    def _said(self, root: str) -> str:
        """The keeper's log beyond what was reported (its last 2 KiB at most)."""
        entry = self._roots[root]
        try:
            with open(os.path.join(spoolfiles.folder(root), spoolfiles.LOG), "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < entry.said:
                    entry.said = 0  # a new log
                handle.seek(max(entry.said, size - 2048))
                text = handle.read(2048)
        except OSError:
            return ""
        entry.said = size
        return text.decode("utf-8", "replace").strip()

    def _watch(self) -> None:
        last = time.monotonic()
        while True:
            self._wake.wait(_LOOK_EVERY if not self._away else 0.5)
            self._wake.clear()
            silent = time.monotonic() - self._heard > SILENT
            with self._guard:
                if silent and not self._away:
                    for entry in self._roots.values():
                        if entry.held and entry.home is not None:
                            fcntl.flock(entry.home, fcntl.LOCK_UN)
                            entry.held = False
                    self._away = True
                elif not silent:
                    self._away = False
                    for root in list(self._roots):  # taken again (another holder: tried again next time)
                        self._hold(root, 0.0)
                    if time.monotonic() - last >= _LOOK_EVERY:
                        last = time.monotonic()
                        for root in list(self._roots):
                            try:
                                self._ensure_keeper(root)
                            except OSError:
                                continue


def answers(socket: str) -> bool:
    """Whether a tmux server listens at `socket` (a connect, not a process)."""
    probe = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    try:
        probe.connect(socket)
    except OSError:
        return False
    finally:
        probe.close()
    return True
