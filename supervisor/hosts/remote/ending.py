"""Ending an agent's processes on a host through the link's `ps` and `signal` ops: its pane's whole tree and
whatever carries its identity there (its own socket's path in its environment, or its CLI folder's), frozen
first so nothing forks past the walk, then TERM, `grace`, and KILL for what is left. Nothing survives that the
host user may signal."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from supervisor.hosts.link import Link

CALL_TIMEOUT = 15.0
WALKS = 20  # walks of the tree while freezing it, at most (a fork bomb cannot outrun a frozen parent)

# Run on the host by the `run` op: the pids whose environment holds KEY=VALUE (started at or after SINCE).
_CARRIERS = r"""
import os, sys
want = (sys.argv[1] + "=" + sys.argv[2]).encode()
for entry in os.listdir("/proc"):
    if not entry.isdigit() or int(entry) == os.getpid():
        continue
    try:
        with open("/proc/%s/environ" % entry, "rb") as handle:
            found = want in handle.read().split(b"\0")
    except OSError:
        continue
    if found:
        print(entry)
"""


class Ender:
    def __init__(self, link: Link, spare: Collection[int]) -> None:
        self.link = link
        self.spare = set(spare)  # the tmux server, the `_engine` placeholder: never ended
        self.seen: dict[int, float] = {}  # pid → its start, of every process any walk found

    def carriers(self, key: str, value: str) -> list[int]:
        ran = self.link.call("run", argv=["python3", "-c", _CARRIERS, key, value], timeout=CALL_TIMEOUT)
        return [int(word) for word in str(ran["stdout"]).split() if word.isdigit()]

    def family(self, roots: list[int], carrying: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The processes of `roots`' trees, of those seen before, and of what carries one of `carrying`."""
        starts = {*roots, *self.seen}
        for key, value in carrying:
            starts.update(self.carriers(key, value))
        found = self.link.call("ps", pids=sorted(starts - self.spare), timeout=CALL_TIMEOUT)
        procs = []
        for info in found:
            pid, start = int(info["pid"]), float(info["start"])
            if pid in self.spare or (pid in self.seen and abs(self.seen[pid] - start) > 0.05):
                continue  # spared, or a pid used again by another process since
            if info.get("state") == "Z":
                continue  # ended already; its parent reaps it
            self.seen.setdefault(pid, start)
            procs.append(info)
        return procs

    def signal(self, pids: list[int], which: str) -> None:
        if pids:
            self.link.call("signal", pids=pids, signal=which, timeout=CALL_TIMEOUT)

    def end(self, root: int | None, carrying: list[tuple[str, str]], grace: float) -> list[int]:
        """End it all: the pids that survived (none, unless the host refused a signal)."""
        roots = [root] if root else []
        stopped: set[int] = set()
        if grace > 0:
            for _ in range(WALKS):
                fresh = [int(info["pid"]) for info in self.family(roots, carrying) if int(info["pid"]) not in stopped]
                if not fresh:
                    break
                self.signal(fresh, "STOP")
                stopped.update(fresh)
            # deepest first is what a local end does; a frozen tree takes them all before anything runs again
            self.signal(sorted(stopped, reverse=True), "TERM")
            self.signal(sorted(stopped), "CONT")
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.family(roots, carrying):
                time.sleep(0.1)
        for _ in range(WALKS):
            left = [int(info["pid"]) for info in self.family(roots, carrying)]
            if not left:
                return []
            self.signal(left, "KILL")
            time.sleep(0.05)
        return [int(info["pid"]) for info in self.family(roots, carrying)]
