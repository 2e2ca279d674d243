"""The watch of agents on hosts: a thread per host of supervisor.yaml, each ticking once a second like the local watch,
judging that host's live agents by the same rules (`Watcher.tick_site`) from that host's panes, listed and looked at
through its tmux over the link, and from its process trees (one `ps` request: engine/hostprocs.py) every
SLOW_CHECK_EVERY ticks, and between them while an agent there may hang on its tools' CPU, as locally. A host that is
slow or down holds up its own tick alone: every request to it has a short deadline, and a tick that fails is skipped
(its agents are `unreachable` meanwhile, supervisor/engine/unreachable.py), never read as panes that are gone."""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import TYPE_CHECKING

from supervisor.core.model import Agent, State
from supervisor.engine.host_quiet import quiet_trees
from supervisor.engine.host_slow_checks import HostSlowChecks
from supervisor.engine.hostprocs import HostSnapshot, host_snapshot
from supervisor.engine.panes import pane_ref
from supervisor.engine.processes import CpuMeter, Snapshot
from supervisor.engine.records import AgentRecords
from supervisor.engine.sites import Site, host_site
from supervisor.errors import SupervisorError
from supervisor.hosts.link import Link
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.watcher import Watcher

log = logging.getLogger(__name__)

SLOW_CHECK_EVERY = 5  # ticks between reads of a host's process trees (one `ps` request), as the local watch's


class HostTicks:
    def __init__(self, watcher: Watcher, period: float) -> None:
        self.watcher = watcher
        self.period = period
        self._threads: dict[str, threading.Thread] = {}
        self._ticks: dict[str, int] = {}  # by host: its slow ticks read its processes
        self._meters: dict[str, CpuMeter] = {}
        # Per host, the agent records as its tick last read them: each tick decodes only those written since (a
        # host's thread alone uses its own).
        self._records: dict[str, AgentRecords] = {}
        self._snapshots: dict[str, HostSnapshot] = {}  # by host: its trees as its slow tick read them
        self.slow_checks = HostSlowChecks(watcher)

    def tend(self, stopping: threading.Event) -> None:
        """A running tick for each host of the configuration in force (from the local tick)."""
        for name in self.watcher.engine.config.hosts:
            thread = self._threads.get(name)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._run, args=(name, stopping), daemon=True,
                                          name=f"host-{name}-watch")
                self._threads[name] = thread
                thread.start()

    def _run(self, name: str, stopping: threading.Event) -> None:
        engine = self.watcher.engine
        said: str | None = None
        while not stopping.is_set() and name in engine.config.hosts:
            started = time.monotonic()
            try:
                self.tick(name)
                said = None
            except SupervisorError as exc:  # out of reach, or too slow this time: the next tick tries again
                if str(exc) != said:
                    log.info("host %s: its watch skipped a tick: %s", name, exc)
                    said = str(exc)
            except Exception:
                log.exception("host %s: watch tick failed", name)
            stopping.wait(max(0.0, self.period - (time.monotonic() - started)))

    def tick(self, name: str) -> None:
        engine = self.watcher.engine
        # A record that names no pane there yet (being launched, or written by hand) is not judged from its panes.
        records = self._records.get(name)
        if records is None:
            records = self._records[name] = AgentRecords(engine.store)
        every, versions = records.read()
        agents = [agent for agent in every if agent.host == name and agent.state.live
                  and agent.state != State.UNREACHABLE and pane_ref(agent) is not None]
        link = engine.hostlinks.link(name)
        if not agents or link is None or not link.up:
            return
        host = engine.host_named(name)
        if not isinstance(host, RemoteHost):
            return
        self._ticks[name] = ticks = self._ticks.get(name, 0) + 1
        slow = ticks % SLOW_CHECK_EVERY == 1  # the first tick too: CPU figures from the start
        site = host_site(host)
        with engine.store.notices_held():
            self.watcher.tick_site(site, agents, functools.partial(self._processes, site, link, slow, agents), slow,
                                   versions)
            if slow:
                self.slow_checks.run(host, link, agents, self._snapshots.pop(name, None))

    def meter(self, host: str) -> CpuMeter:
        """The CPU meter of `host`'s process trees."""
        return self._meters.setdefault(host, CpuMeter())

    def _processes(self, site: Site, link: Link, slow: bool, agents: list[Agent],
                   roots: list[int]) -> Snapshot | None:
        """The trees under `roots` on host `name` (None when it did not answer in time: CPU as last read); on a
        `slow` tick with each process's working directory, kept for the slow checks, and the quiet agents' trees
        metered here and left out of what the tick judges from (`quiet_trees`)."""
        try:
            found = host_snapshot(link, roots, cwd=slow)
        except SupervisorError as exc:
            log.info("host %s: its processes were not read this time: %s", site.host, exc)
            return None
        if not slow:
            return found
        self._snapshots[site.host] = found
        return quiet_trees(self.watcher, site, agents, found)
