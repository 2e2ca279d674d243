"""Quiet agents on a host cost no judgement on a slow tick: every tree there is read then (CPU and memory for `ls`,
a quiet agent's tools waking up), and a quiet agent's tree is metered here under its lock, as the local watch
meters its own (Watcher._quiet_tree), then left out of the trees the tick judges from. An agent whose tools stayed
under the busy mark is then judged again only when something else of it changed (Watcher._unchanged); one whose
tools used CPU has moved on (its progress) and is judged by what this metering found, as locally (metering it twice
from one reading would find no CPU at all)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from supervisor.agents import get_profile
from supervisor.core.model import Agent
from supervisor.engine.processes import Snapshot
from supervisor.engine.sites import Site

if TYPE_CHECKING:
    from supervisor.engine.watcher import Live, Watcher


def quiet_trees(watcher: Watcher, site: Site, agents: list[Agent], snapshot: Snapshot) -> Snapshot:
    """`snapshot` (every tree of `site`'s agents, read on a slow tick) without the trees of the quiet `agents`,
    each of which is metered now."""
    from supervisor.engine.watcher import _QUIET_STATES

    engine = watcher.engine
    now = time.time()
    metered: set[int] = set()
    for agent in agents:
        live = engine.live.get(agent.name)
        if live is None or live.quiet_key is None or now >= live.quiet_until or agent.state not in _QUIET_STATES \
                or not agent.pid or agent.pid not in snapshot.procs or agent.pid in metered:
            continue
        lock = engine.try_agent_lock(agent.name)
        if lock is None:
            continue  # an operation owns it right now: the tick leaves it for the next one
        try:
            if live.quiet_key != watcher._quiet_key(agent, engine.store.version(agent.name), live):
                continue  # something of it changed: judged by the tick, from its tree
            metered.update(meter(watcher, site, agent, live, snapshot, now))
        finally:
            lock.release()
    if not metered:
        return snapshot
    procs = {pid: info for pid, info in snapshot.procs.items() if pid not in metered}
    return Snapshot(snapshot.at, procs, snapshot.children)


def meter(watcher: Watcher, site: Site, agent: Agent, live: Live, snapshot: Snapshot, now: float) -> tuple[int, ...]:
    """The agent's tree as `snapshot` read it, metered as Watcher._meter meters a pane's (its CPU since its last
    reading, memory; tools that used CPU are progress): the tree's processes."""
    from supervisor.engine.watcher import CPU_BUSY_PERCENT

    assert agent.pid is not None
    profile = get_profile(agent.profile)
    tree = watcher.hosts.meter(site.host).measure(snapshot, agent.pid)
    live.cpu_percent, live.rss_bytes, live.pids = tree.cpu_percent, tree.rss_bytes, tree.pids
    live.tool_cpu_percent = tree.tools_percent(profile.cli_processes) if profile.cli_processes else tree.cpu_percent
    if live.tool_cpu_percent >= CPU_BUSY_PERCENT:
        live.last_progress = now
    return tree.pids
