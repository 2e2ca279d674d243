"""Ending an agent's processes on this host in one request (`end_tree`), answered once it is done.

What is ended: the trees under `roots` (its pane's process), every process whose environment carries one of
`carrying` (KEY, VALUE) — its launch token, its socket, its CLI folder — with their trees, and the panes'
processes among `strays` that carry no launch token at all (a window opened in the repository's tmux server by
hand or by an agent: no pane supervisor opens lacks one). Never `spare` (the tmux server, the engine's
placeholder) nor this program.

The order is the local one: every process found is frozen (SIGSTOP, walking again until no new one shows up, so
nothing forks past the walk), then TERM, CONT, up to `grace` seconds for them to go, then what is left frozen
and KILLed. A process found once stays wanted until it is gone (a pid used again by another process since, told
by its start time, is not). When this program's input ends mid-way (the link dropped), what it froze and has
not killed is let go (CONT): nothing is left stopped for no one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Collection, Iterable
from typing import Any

from . import procs
from .calls import Call, OpError

TOKEN = "SUPERVISOR_LAUNCH"  # in the environment of every pane process supervisor starts on a host
WALKS = 20  # walks of the tree while freezing it, at most (a fork bomb cannot outrun a frozen parent)
POLL = 0.05

_lock = threading.Lock()
_endings: set[Ending] = set()  # in progress, each with what it froze
_released = threading.Event()


class Ending:
    def __init__(self, roots: Iterable[int], carrying: Iterable[tuple[str, str]], strays: Iterable[int],
                 spare: Collection[int]) -> None:
        self.roots = set(roots)
        self.wanted = {f"{key}={value}".encode() for key, value in carrying}
        self.strays = set(strays)
        self.spare = set(spare) - {os.getpid()}
        self.me = os.getpid()  # never ended; its children are walked (the reaper ends its own leftovers)
        self.seen: dict[int, float] = {}  # pid → its start, of every process a walk found
        self.frozen: set[int] = set()

    # finding ------------------------------------------------------------------------------------------

    def walk(self) -> list[int]:
        """The processes to end now (zombies left out: their parents reap them)."""
        every = procs.table()
        by_pid = {info["pid"]: info for info in every}
        children: dict[int, list[int]] = {}
        for info in every:
            children.setdefault(info["ppid"], []).append(info["pid"])
        starts = set(self.roots) | set(self.seen)
        starts |= {pid for parent in self.strays for pid in children.get(parent, [])
                   if pid not in self.spare and not _carries(pid, [TOKEN.encode() + b"="])}
        if self.wanted:
            starts |= {pid for pid in by_pid if pid not in self.spare and _carries(pid, self.wanted)}
        found: list[int] = []
        done: set[int] = set()
        queue = [pid for pid in starts if pid in by_pid]
        while queue:
            pid = queue.pop()
            if pid in done:
                continue
            done.add(pid)
            info = by_pid[pid]
            known = self.seen.get(pid)
            if known is not None and abs(known - float(info["start"])) > 0.05:
                continue  # another process has that pid now
            if pid in self.spare:
                continue  # neither it nor what it runs (the tmux server runs every pane)
            queue.extend(children.get(pid, []))
            if pid == self.me or info["state"] == "Z":
                continue
            self.seen.setdefault(pid, float(info["start"]))
            found.append(pid)
        return found

    # ending -------------------------------------------------------------------------------------------

    def run(self, grace: float) -> list[int]:
        """End them all → the pids that survived (none, unless a signal was refused)."""
        try:
            if grace > 0:
                self.freeze()
                if _released.is_set():
                    return self.walk()
                self.signal(sorted(self.frozen, reverse=True), signal.SIGTERM)
                self.thaw()
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and self.walk() and not _released.is_set():
                    time.sleep(POLL)
            for _ in range(WALKS):
                if _released.is_set():
                    break
                if not self.freeze():
                    return []
                with _lock:
                    doomed, self.frozen = sorted(self.frozen), set()
                self.signal(doomed, signal.SIGKILL)
                time.sleep(POLL)
            return self.walk()
        finally:
            self.thaw()
            with _lock:
                _endings.discard(self)

    def freeze(self) -> bool:
        """Stop every process found, walking again until no new one shows up → whether there was any."""
        any_found = False
        for _ in range(WALKS):
            fresh = [pid for pid in self.walk() if pid not in self.frozen]
            if not fresh or _released.is_set():
                break
            any_found = True
            with _lock:
                _endings.add(self)  # from now on, release_all lets go of what it froze
                self.frozen.update(fresh)
            self.signal(fresh, signal.SIGSTOP)
        return any_found or bool(self.frozen)

    def thaw(self) -> None:
        with _lock:
            frozen, self.frozen = sorted(self.frozen), set()
        self.signal(frozen, signal.SIGCONT)

    @staticmethod
    def signal(pids: Iterable[int], which: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, which)


def _carries(pid: int, wanted: Collection[bytes]) -> bool:
    """Whether process `pid`'s environment holds one of `wanted` (KEY=VALUE, or a KEY= prefix)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            entries = handle.read().split(b"\0")
    except OSError:
        return False
    return any(entry == want or (want.endswith(b"=") and entry.startswith(want)) for entry in entries
               for want in wanted)


def end_processes(roots: Iterable[int], carrying: Iterable[tuple[str, str]] = (), strays: Iterable[int] = (),
                  spare: Collection[int] = (), grace: float = 0.0) -> list[int]:
    return Ending(roots, carrying, strays, spare).run(grace)


def release_all() -> None:
    """This program's input ended: every ending in progress stops, and lets go of what it froze."""
    _released.set()
    with _lock:
        endings = list(_endings)
    for ending in endings:
        ending.thaw()


def end_tree(call: Call) -> dict[str, Any]:
    """The op: `roots`, `carrying` ([[KEY, VALUE], ...]), `strays` (whose children without a launch token are
    ended), `spare` (lists of pids), `grace` (seconds)
    → `survivors` (pids), `ended` (every pid found)."""
    carrying = call.arg("carrying", list, [])
    if not all(isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) and part for part in pair)
               and "=" not in pair[0] for pair in carrying):
        raise OpError("argument 'carrying' must be a list of [NAME, VALUE] pairs")
    grace = float(call.arg("grace", (int, float), 0.0))
    ending = Ending(_pids(call, "roots"), [(key, value) for key, value in carrying], _pids(call, "strays"),
                    _pids(call, "spare"))
    survivors = ending.run(max(0.0, grace))
    return {"survivors": survivors, "ended": sorted(set(ending.seen) - set(survivors))}


def _pids(call: Call, name: str) -> list[int]:
    pids = call.arg(name, list, [])
    if not all(isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 for pid in pids):
        raise OpError(f"argument {name!r} must be a list of process ids")
    return list(pids)
