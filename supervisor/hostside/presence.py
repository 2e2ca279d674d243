"""The engine is here: what the host program tells the keepers of its panes' transcripts (keeper.py).

The engine asks for a repository folder's keeper when its link comes up (`transcripts_keep`): the program starts
one (a process of its own, in a session of its own, so it outlives the connection; a second one for the same
folder ends at once) and holds the folder's `.home` lock shared. It lets go of every such lock when its input
ends (it exits), and when the engine has been silent for SILENT seconds (a connection cut without a word: the
engine pings every 10 s and its watch talks every second); the next line from the engine takes them again.
While no program holds it, the keeper writes down what the panes show.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from typing import Any

from . import spoolfiles
from .calls import Call, OpError

SILENT = 30.0  # seconds without a line from the engine after which it is taken to be away
_LOOK_EVERY = 5.0  # seconds between looks at the silence


class Presence:
    def __init__(self) -> None:
        self._held: dict[str, int] = {}  # root -> its `.home` lock, open (held unless `_away`)
        self._away = False
        self._heard = time.monotonic()
        self._guard = threading.Lock()
        self._watching = False

    def heard(self) -> None:
        """A line from the engine (on the reader: a look at a flag, unless it was taken to be away)."""
        self._heard = time.monotonic()
        if self._away:
            with self._guard:
                if self._away:
                    for descriptor in self._held.values():
                        fcntl.flock(descriptor, fcntl.LOCK_SH)  # a keeper's look under way ends first
                    self._away = False

    def here(self, root: str) -> None:
        """Hold `root`'s lock (waiting out a keeper's look under way: what it writes is then whole)."""
        with self._guard:
            if root in self._held:
                return
            descriptor = spoolfiles.lock_file(root, ".home")
            if not self._away:
                fcntl.flock(descriptor, fcntl.LOCK_SH)
            self._held[root] = descriptor
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, daemon=True, name="presence").start()

    def keep(self, call: Call) -> dict[str, Any]:
        """`transcripts_keep` {root, socket}: the keeper of `root`'s panes (tmux at `socket`) runs, and knows the
        engine is here."""
        root = os.path.expanduser(call.arg("root", str))
        socket = os.path.expanduser(call.arg("socket", str))
        if not os.path.isabs(root):
            raise OpError(f"not an absolute path: {root}")
        fresh = root not in self._held
        self.here(root)
        if fresh:
            log = os.open(os.path.join(spoolfiles.folder(root), "keeper.log"),
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                subprocess.Popen([sys.executable, "-I", "-S", sys.argv[0], "keep", root, socket],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd="/",
                                 start_new_session=True, close_fds=True)
            finally:
                os.close(log)
        return {"root": root}

    def take(self, call: Call) -> dict[str, Any] | None:
        """`transcript_take` {root, server, pane}: what the host kept of the pane while the engine was away."""
        root = os.path.expanduser(call.arg("root", str))
        self.here(root)
        return spoolfiles.take(root, call.arg("server", str), call.arg("pane", str))

    def drop(self, call: Call) -> dict[str, Any]:
        """`transcript_drop` {root, server, pane}: the engine has it."""
        spoolfiles.drop(os.path.expanduser(call.arg("root", str)), call.arg("server", str), call.arg("pane", str))
        return {}

    def _watch(self) -> None:
        while True:
            time.sleep(_LOOK_EVERY)
            if time.monotonic() - self._heard > SILENT and not self._away:
                with self._guard:
                    for descriptor in self._held.values():
                        fcntl.flock(descriptor, fcntl.LOCK_UN)
                    self._away = True
