"""Process trees from one scan of the process table per tick, CPU accounting, and killing whole trees.

Walking each pane's tree with `psutil.Process.children(recursive=True)` costs a scan of /proc per pane
(DESIGN.md measures ~90% of a core at 100 agents); one `process_iter` per tick, with the trees built from
its parent links, costs a few percent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import psutil

from supervisor.engine.procfiles import ProcFiles

_ATTRS = ["pid", "ppid", "name", "create_time", "cpu_times", "memory_info"]


class ProcInfo(NamedTuple):
    """One process as a scan saw it (a tuple: a tick makes hundreds of them)."""

    pid: int
    ppid: int
    name: str
    create_time: float  # seconds after boot (/proc) or since the epoch (psutil): only compared, never shown
    cpu_seconds: float
    rss: int
    threads: int = 1


@dataclass
class Snapshot:
    at: float
    procs: dict[int, ProcInfo]
    children: dict[int, list[int]]

    def tree(self, root: int) -> list[int]:
        """`root` and all its descendants, parents before children."""
        if root not in self.procs:
            return []
        order, stack = [], [root]
        while stack:
            pid = stack.pop()
            if pid not in self.procs:
                continue  # listed as a child, and gone before its own stat could be read
            order.append(pid)
            stack.extend(self.children.get(pid, ()))
        return order

    def cwd_text(self, pid: int) -> str | None:
        """The working directory of a process of this snapshot as the kernel spells it, unchecked: the pid
        may have been reused since the snapshot (see `cwd`)."""
        if pid not in self.procs:
            return None
        try:
            return os.readlink(f"/proc/{pid}/cwd") if _HAS_PROC else str(psutil.Process(pid).cwd())
        except (OSError, psutil.Error):
            return None

    def cwd(self, pid: int) -> Path | None:
        """The working directory of a process of this snapshot (read now; None once it is gone)."""
        info = self.procs.get(pid)
        cwd = self.cwd_text(pid)
        if info is None or cwd is None:
            return None
        again = _read_stat(pid) if _HAS_PROC else info
        return Path(cwd) if again is not None and again.create_time == info.create_time else None  # pid reused?


# What may stand between a pane and its CLI: tmux's shell running the launch line, bubblewrap (and the init of
# the sandbox's PID namespace), the shell that runs the agent's command in it. The CLI's own, never a tool's work:
# only while no process of the CLI is above them.
WRAPPERS = frozenset({"sh", "dash", "bash", "bwrap"})


@dataclass(frozen=True)
class TreeUsage:
    pids: tuple[int, ...]
    cpu_percent: float  # of one core, since the previous look at this tree
    rss_bytes: int
    per_pid: dict[int, float] = field(default_factory=dict)  # percent of one core, by process
    names: tuple[str, ...] = ()  # the process names, in the order of `pids`
    parents: tuple[int, ...] = ()  # each process's parent pid, in the order of `pids`

    def per_pid_percent(self, pids: Iterable[int]) -> float:
        return sum(self.per_pid.get(pid, 0.0) for pid in pids)

    def tools_percent(self, cli_processes: Iterable[str]) -> float:
        """CPU of the tree without its root and the CLI's own processes (whose CPU may be a spinner).

        The CLI's own: those named like it that descend from the root through the CLI's own only, and the
        wrappers (`WRAPPERS`) between the root and the CLI. A tool
        the CLI runs through a shell counts whatever its name: `node` running jest under Claude Code's Bash
        tool is work, not the CLI."""
        cli = set(cli_processes)
        own = set(self.pids[:1])
        wrapping = set(self.pids[:1]) if self.names[:1] and self.names[0] in WRAPPERS else set()
        for pid, name, parent in zip(self.pids[1:], self.names[1:], self.parents[1:], strict=True):
            if parent in wrapping and name in WRAPPERS:  # still above the CLI: the launch's own
                wrapping.add(pid)
                own.add(pid)
            elif name in cli and parent in own:  # parents come before their children
                own.add(pid)
        return sum(self.per_pid.get(pid, 0.0) for pid in self.pids if pid not in own)


def scan(roots: Iterable[int] | None = None) -> Snapshot:
    """The processes of the trees under `roots` (all processes when None).

    psutil reads several files per process (stat, statm, status) and costs ~0.3 ms each: 150 ms a tick for
    500 processes, far over the watcher's budget. On Linux one /proc/PID/stat holds all a tick needs, and
    /proc/PID/task/TID/children lists a process's children, so only the agents' own trees are read, however
    busy the machine is; elsewhere the whole table comes from psutil."""
    if not _HAS_PROC:
        return _scan_psutil()
    if roots is not None and _CHILDREN_FILES:
        return _scan_trees(roots)
    return _scan_proc()


_CHILDREN_FILES = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


_FILES = ProcFiles()  # the trees' /proc files, kept open from one scan to the next


def _scan_trees(roots: Iterable[int]) -> Snapshot:
    procs, children = _FILES.walk(roots, _parse_stat, _threads)
    return Snapshot(at=time.monotonic(), procs=procs, children=children)


def _threads(info: ProcInfo) -> int:
    return info.threads


_PROC = Path("/proc")
_HAS_PROC = _PROC.is_dir()
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _read_stat(pid: int) -> ProcInfo | None:
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return _parse_stat(pid, data)


def _parse_stat(pid: int, data: bytes) -> ProcInfo | None:
    close = data.rfind(b")")
    if close < 0:
        return None
    name = data[data.find(b"(") + 1:close].decode(errors="replace")
    fields = data[close + 2:].split()
    # fields[0] is field 3 of proc(5): state; ppid 4, utime 14, stime 15, num_threads 20, starttime 22, rss 24.
    try:
        return ProcInfo(pid, int(fields[1]), name, int(fields[19]) / _TICKS,
                        (int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE, int(fields[17]))
    except (IndexError, ValueError):
        return None


def _scan_proc() -> Snapshot:
    procs: dict[int, ProcInfo] = {}
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        info = _read_stat(int(entry.name))
        if info is None:
            continue
        procs[info.pid] = info
        children[info.ppid].append(info.pid)
    return Snapshot(at=time.monotonic(), procs=procs, children=dict(children))


def _scan_psutil() -> Snapshot:
    procs: dict[int, ProcInfo] = {}
    children: dict[int, list[int]] = defaultdict(list)
    for proc in psutil.process_iter(_ATTRS):
        info = proc.info
        times = info.get("cpu_times")
        memory = info.get("memory_info")
        if times is None or info.get("ppid") is None:
            continue  # vanished or unreadable mid-scan
        procs[info["pid"]] = ProcInfo(
            pid=info["pid"],
            ppid=info["ppid"],
            name=info.get("name") or "",
            create_time=info["create_time"] or 0.0,
            cpu_seconds=times.user + times.system,
            rss=memory.rss if memory is not None else 0,
        )
        children[info["ppid"]].append(info["pid"])
    return Snapshot(at=time.monotonic(), procs=procs, children=dict(children))


@dataclass
class CpuMeter:
    """CPU per process tree between two looks at the same tree (a process is keyed by pid and start time).

    Each tree keeps its own previous look, so the watcher can look at a busy agent's tree every tick and at
    a quiet one's every few ticks; its CPU is then the average since its own last look."""

    _previous: dict[int, tuple[float, dict[tuple[int, float], float]]] = field(default_factory=dict)

    def measure(self, snapshot: Snapshot, root: int) -> TreeUsage:
        """The tree under `root` as `snapshot` saw it, its CPU since this meter last measured it."""
        before_at, before = self._previous.get(root, (None, {}))
        elapsed = snapshot.at - before_at if before_at is not None else 0.0
        pids = snapshot.tree(root)
        current: dict[tuple[int, float], float] = {}
        per_pid: dict[int, float] = {}
        rss = 0
        for pid in pids:
            info = snapshot.procs[pid]
            key = (pid, info.create_time)
            current[key] = info.cpu_seconds
            if elapsed <= 0:
                used = 0.0
            else:
                previous = before.get(key)
                used = max(0.0, info.cpu_seconds - previous) if previous is not None else info.cpu_seconds
            per_pid[pid] = 100.0 * used / elapsed if elapsed > 0 else 0.0
            rss += info.rss
        self._previous[root] = (snapshot.at, current)
        names = tuple(snapshot.procs[pid].name for pid in pids)
        parents = tuple(snapshot.procs[pid].ppid for pid in pids)
        return TreeUsage(tuple(pids), sum(per_pid.values()), rss, per_pid, names, parents)

    def usage(self, snapshot: Snapshot, roots: Iterable[int]) -> dict[int, TreeUsage]:
        """Every tree under `roots` (trees this meter measured before but not given here are forgotten)."""
        wanted = list(roots)
        self.forget(wanted)
        return {root: self.measure(snapshot, root) for root in wanted}

    def forget(self, keep: Iterable[int]) -> None:
        """Drop what is remembered of trees other than `keep` (their agents ended)."""
        kept = set(keep)
        for root in [root for root in self._previous if root not in kept]:
            del self._previous[root]


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.Error:
            continue
    return found


def tree_of(root: int) -> list[psutil.Process]:
    """`root` and its descendants now, deepest first (for a one-off kill, not for the watch loop)."""
    return trees_of([root])


def trees_of(roots: Iterable[int], spare: Collection[int] = ()) -> list[psutil.Process]:
    """The processes of the trees under `roots` now, each once, deepest first; a process in `spare` and all
    below it left out. Read from the trees' own /proc children files where the kernel has them (a whole
    table's scan costs a second on a busy machine, and a kill walks the trees many times)."""
    wanted = [root for root in dict.fromkeys(roots) if root not in spare]
    if _HAS_PROC and _CHILDREN_FILES:
        snapshot = _scan_trees(wanted)
        order: list[int] = []
        listed: set[int] = set()
        stack = [root for root in reversed(wanted) if root in snapshot.procs]
        while stack:
            pid = stack.pop()
            if pid in spare or pid in listed:
                continue
            order.append(pid)
            listed.add(pid)
            stack.extend(snapshot.children.get(pid, ()))
        return list(reversed(_processes(order)))
    found: dict[int, psutil.Process] = {}
    for root in wanted:
        try:
            proc = psutil.Process(root)
            family = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        below_spare = {c.pid for s in family if s.pid in spare for c in _children(s)}
        for member in family:
            if member.pid not in spare and member.pid not in below_spare:
                found.setdefault(member.pid, member)
    return list(reversed(found.values()))


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def carrying_env(key: str, value: str, since: float, spare: Collection[int] = ()) -> list[psutil.Process]:
    """Processes of this user, started after `since`, whose environment has key=value, but for this one and
    `spare` (a tmux server started by a process that carried it carries it too, and is no agent's).

    Catches what escaped a tree by double-forking (daemons keep their environment)."""
    found = []
    uid = os.getuid()
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "uids", "create_time"]):
        try:
            if proc.pid == me or proc.pid in spare or proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            if (proc.info["create_time"] or 0) < since - 1:
                continue
            if proc.environ().get(key) == value:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_tree(
    root: int | None, grace: float, *, env_key: str | None = None, env_value: str | None = None,
    since: float = 0.0, spare: Collection[int] = (),
) -> list[int]:
    """End `root`'s whole tree (and processes carrying env_key=env_value, but never those in `spare` or below
    them). With a `grace`: freeze the tree (SIGSTOP, walking it again until a walk finds no process it has not
    stopped, so a process forking in a loop cannot outrun the walk), SIGTERM each process deepest first and the
    root last, let them all run again and wait up to `grace`. Then freeze what is left and KILL it all.
    Returns the pids that survived (none).

    The agent's first process is a child subreaper (supervisor/engine/subreaper.py): what double-forked or
    left its session is in the tree while that process lives. Once it exits (on the SIGTERM, say), what it
    adopted goes to init and out of the tree; so every process any walk saw is remembered, and each later walk
    starts from those still running as well as from `root`. psutil checks each process's start time before
    signalling, so a reused pid is never hit."""
    seen: dict[tuple[int, float], psutil.Process] = {}

    def family() -> list[psutil.Process]:
        starts = [root] if root else []
        starts += [proc.pid for proc in seen.values() if _alive(proc)]
        procs = trees_of(starts, spare) if starts else []
        if env_key and env_value:
            known = {p.pid for p in procs}
            procs += [p for p in carrying_env(env_key, env_value, since, spare) if p.pid not in known]
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                seen.setdefault((proc.pid, proc.create_time()), proc)
        return procs

    if grace > 0:
        stopped = freeze(family)  # a complete list: nothing forks while the TERMs go out
        for proc in reversed(stopped):  # deepest first, the root last
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(stopped):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGCONT)
        _wait_all_gone(family, grace)
    for _round in range(5):
        frozen = [proc for proc in freeze(family) if _alive(proc)]
        if not frozen:
            return []
        for proc in frozen:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _wait_gone(frozen, 5.0)
    return [p.pid for p in family() if _alive(p)]


def _wait_all_gone(family: Callable[[], list[psutil.Process]], timeout: float) -> None:
    """Wait until no process `family` lists is alive, listing again each time (which remembers what the
    processes start or leave behind meanwhile), or until `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while any(_alive(proc) for proc in family()) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def freeze(family: Callable[[], list[psutil.Process]], walks: int = 100) -> list[psutil.Process]:
    """SIGSTOP every process `family` lists, listing again until a list holds none not stopped yet (a stopped
    process forks no more); the processes stopped, parents before children as listed."""
    stopped: dict[tuple[int, float], psutil.Process] = {}
    for _walk in range(walks):
        fresh = []
        for proc in reversed(family()):  # tree_of lists deepest first: stop parents first
            try:
                key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            if key not in stopped:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGSTOP)
                    fresh.append(proc)
                stopped[key] = proc
        if not fresh:
            break
    return list(stopped.values())


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie holds no resources; its parent or init reaps it)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has ended (or is a zombie); the ones still alive at the deadline."""
    deadline = time.monotonic() + timeout
    pending = procs
    delay = 0.01
    while True:
        pending = [p for p in pending if _alive(p)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
