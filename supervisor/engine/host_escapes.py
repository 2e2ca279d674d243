"""`escape` for agents on a host, judged as the local watch judges its own (SlowChecks.check_escapes): a process of an
agent's tree working inside another agent's worktree, or inside supervisor's own folder there (the host's clone, the
other agents' CLI folders and sockets: what the main checkout is at home). The working directories come with the
host's process trees on its slow ticks (one `ps` request with `cwd`, read on the host with each process's start time
checked: engine/hostprocs.py), so the check costs no request of its own; a process found where it may work is not
judged again while it stays there and the agents' worktrees stay the same (the usual case: a few thousand processes
on a host, none moving), so a check costs a set look-up per process."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.engine.hostprocs import HostSnapshot
from supervisor.engine.slow_checks import inside
from supervisor.hosts.remote.layout import HostLayout

if TYPE_CHECKING:
    from supervisor.engine.watcher import Watcher

Areas = tuple[tuple[str | None, str], ...]
Seen = tuple[str, int, float, str]  # agent, pid, the process's start, its working directory


class HostEscapes:
    """The escape check of one host's agents, remembering what it found fine."""

    def __init__(self) -> None:
        self._areas: Areas = ()
        self._fine: set[Seen] = set()

    def check(self, watcher: Watcher, host: str, layout: HostLayout, agents: list[Agent],
              snapshot: HostSnapshot) -> None:
        """Each live agent of `host` (`agents`, their panes' trees in `snapshot`) whose process works where another's
        work is: an `escape` event and alert, once per process and folder."""
        areas: Areas = (*((agent.name, agent.worktree) for agent in agents), (None, layout.root))
        fine = self._fine if areas == self._areas else set()
        self._areas, self._fine = areas, set()
        for agent in agents:
            if not agent.pid:
                continue
            for pid in snapshot.tree(agent.pid):
                cwd = snapshot.cwd_text(pid)
                if cwd is None:
                    continue
                seen = (agent.name, pid, snapshot.procs[pid].create_time, cwd)
                if seen in fine:
                    self._fine.add(seen)
                    continue
                where = escaped_to(host, agent, cwd, areas)
                if where is None:
                    self._fine.add(seen)
                    continue
                watcher._locked(agent.name,
                                lambda fresh, p=pid, c=cwd, w=where: watcher.slow_checks.escaped(fresh, p, Path(c), w))
                break


def escaped_to(host: str, agent: Agent, cwd: str, areas: Areas) -> str | None:
    """Whose work `cwd` is in when it is not `agent`'s own (None: its own, or no one's)."""
    if inside(cwd, agent.worktree):
        return None
    holders = [(name, path) for name, path in areas if inside(cwd, path)]
    if not holders:
        return None  # elsewhere on the host (its temporary folder, the user's home): no one's work
    owner = max(holders, key=lambda item: len(item[1]))[0]  # a helper's worktree is inside its parent's
    if owner == agent.name:
        return None
    return f"agent {owner}'s worktree" if owner else f"supervisor's own folder on host {host}"
