"""`escape` for agents on a host, judged as the local watch judges its own (Watcher.check_escapes): a process of an
agent's tree working inside another agent's worktree, or inside supervisor's own folder there (the host's clone, the
other agents' CLI folders and sockets: what the main checkout is at home). The working directories come with the
host's process trees on its slow ticks (one `ps` request with `cwd`, read on the host with each process's start time
checked: engine/hostprocs.py), so the check costs no request of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.engine.hostprocs import HostSnapshot
from supervisor.hosts.remote.layout import HostLayout

if TYPE_CHECKING:
    from supervisor.engine.watcher import Watcher


def check_host_escapes(watcher: Watcher, host: str, layout: HostLayout, agents: list[Agent],
                       snapshot: HostSnapshot) -> None:
    """Each live agent of `host` (`agents`, their panes' trees in `snapshot`) whose process works where another's
    work is: an `escape` event and alert, once per process and folder."""
    areas: list[tuple[str | None, str]] = [(agent.name, agent.worktree) for agent in agents]
    areas.append((None, layout.root))
    for agent in agents:
        if not agent.pid:
            continue
        for pid in snapshot.tree(agent.pid):
            cwd = snapshot.cwd(pid)
            if cwd is None or inside(str(cwd), agent.worktree):
                continue
            holders = [(name, path) for name, path in areas if inside(str(cwd), path)]
            if not holders:
                continue  # elsewhere on the host (its temporary folder, the user's home): no one's work
            owner = max(holders, key=lambda item: len(item[1]))[0]  # a helper's worktree is inside its parent's
            if owner == agent.name:
                continue
            where = f"agent {owner}'s worktree" if owner else f"supervisor's own folder on host {host}"
            watcher._locked(agent.name, lambda fresh, p=pid, c=cwd, w=where: watcher._escaped(fresh, p, c, w))
            break


def inside(path: str, area: str) -> bool:
    """Whether `path` is `area` or below it (both absolute, as the host's kernel and the store spell them)."""
    area = area.rstrip("/")
    return path == area or path.startswith(area + "/")
