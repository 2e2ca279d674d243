"""The process trees of a host's agents, as the watcher reads this machine's: one `ps` request per host per slow tick
(SLOW_CHECK_EVERY ticks) for every pane's tree there, and between them for the trees of agents whose state may hang
on their tools' CPU (working with no progress seen this tick), made into the same `Snapshot`, so the rules that use
CPU (a silent tool run is progress, not a stall; `ls` shows CPU and memory) judge a remote agent as a local one.
Each host keeps a CPU meter of its own: pids of different machines are not comparable. On slow ticks the host also
reads each process's working directory (`cwd`), for the escape check (engine/host_escapes.py)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.engine.processes import ProcInfo, Snapshot
from supervisor.hosts.link import Link
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT


@dataclass
class HostSnapshot(Snapshot):
    """A host's trees, with the working directory of each process as the host read it with them (a pid there is
    not one of this machine's: nothing is read here)."""

    cwds: dict[int, str] = field(default_factory=dict)

    def cwd_text(self, pid: int) -> str | None:
        return self.cwds.get(pid)

    def cwd(self, pid: int) -> Path | None:
        found = self.cwds.get(pid)
        return Path(found) if found is not None else None  # read on the host with its start time checked


def host_snapshot(link: Link, roots: Iterable[int], cwd: bool = False) -> HostSnapshot:
    """The trees under `roots` on the host of `link`, read now by one request (LinkError when it fails); with
    `cwd`, each process's working directory too."""
    found = link.call("ps", pids=sorted(set(roots)), cwd=cwd, timeout=CALL_TIMEOUT)
    at = time.monotonic()  # this side's clock: only the time between two reads counts
    procs: dict[int, ProcInfo] = {}
    cwds: dict[int, str] = {}
    for info in found if isinstance(found, list) else []:
        if not isinstance(info, dict) or info.get("state") == "Z":
            continue  # ended already, not reaped yet
        pid = int(info["pid"])
        procs[pid] = ProcInfo(pid, int(info["ppid"]), str(info["name"]), float(info["start"]), float(info["cpu"]),
                              int(info.get("rss") or 0))
        if isinstance(info.get("cwd"), str):
            cwds[pid] = info["cwd"]
    children: dict[int, list[int]] = {}
    for pid, proc in procs.items():
        children.setdefault(proc.ppid, []).append(pid)
    return HostSnapshot(at=at, procs=procs, children=children, cwds=cwds)
