"""The process trees of a host's agents, as the watcher reads this machine's: one `ps` request per host per slow tick
(SLOW_CHECK_EVERY ticks) for every pane's tree there, and between them for the trees of agents whose state may hang
on their tools' CPU (working with no progress seen this tick), made into the same `Snapshot`, so the rules that use
CPU (a silent tool run is progress, not a stall; `ls` shows CPU and memory) judge a remote agent as a local one.
Each host keeps a CPU meter of its own: pids of different machines are not comparable."""

from __future__ import annotations

import time
from collections.abc import Iterable

from supervisor.engine.processes import ProcInfo, Snapshot
from supervisor.hosts.link import Link
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT


def host_snapshot(link: Link, roots: Iterable[int]) -> Snapshot:
    """The trees under `roots` on the host of `link`, read now by one request (LinkError when it fails)."""
    # Brief rows (supervisor/hostside/procs.py BRIEF): pid, ppid, state, name, cpu, start, rss.
    found = link.call("ps", pids=sorted(set(roots)), brief=True, timeout=CALL_TIMEOUT)
    at = time.monotonic()  # this side's clock: only the time between two reads counts
    procs: dict[int, ProcInfo] = {}
    for row in found if isinstance(found, list) else []:
        if not isinstance(row, list) or len(row) != 7 or row[2] == "Z":
            continue  # ended already, not reaped yet (or not a row)
        pid, ppid, _state, name, cpu, start, rss = row
        procs[int(pid)] = ProcInfo(int(pid), int(ppid), str(name), float(start), float(cpu), int(rss or 0))
    children: dict[int, list[int]] = {}
    for pid, proc in procs.items():
        children.setdefault(proc.ppid, []).append(pid)
    return Snapshot(at=at, procs=procs, children=children)
