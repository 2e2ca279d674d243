"""The engine's links to its hosts (SPEC §12): one per host of supervisor.yaml's `hosts:`, kept while it runs.

Each host's link lives in a `HostWatch` of its own (supervisor/hosts/watch.py: its own thread, connect, ping,
backoff). This service starts one per host when the engine starts, one more when a reload of supervisor.yaml
adds a host, and closes the link of a host taken out of it (one whose settings changed is connected again).
A host going down makes its agents `unreachable` and sends one `host_down` alert, then calls each of `on_down`
(what waited on the host gives up); its return calls each of `on_up` (their sockets there again, what they
spooled meanwhile applied), then judges them again from what is true there now (supervisor/engine/unreachable.py,
readopt.py). `hosts` answers from what the watches know: no request ever waits on a host.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from supervisor.engine import readopt, unreachable
from supervisor.engine.service import ServiceThread
from supervisor.hosts.link import Link
from supervisor.hosts.survey import CONNECTING, DOWN, UP, row
from supervisor.hosts.watch import HostWatch, Reach
from supervisor.hostsconfig import LOCAL

if TYPE_CHECKING:
    from supervisor.config import HostConfig
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

# A reload of supervisor.yaml touches the store, which rings this service (`Store.listen_touches`): the other
# writes to the store never wake it. At least this often it looks all the same (seconds).
LOOK_EVERY = 10.0


class HostLinks(ServiceThread):
    thread_name = "host-links"
    stop_timeout = 15.0

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.on_up: list[Callable[[str, Link], None]] = []
        """Called with a host and its link each time it comes up (its agents still `unreachable`: they are judged
        again once these are done)."""
        self.on_down: list[Callable[[str, str], None]] = []
        """Called with a host and why each time it goes down (after its agents became `unreachable`)."""
        self.on_event: list[Callable[[str, dict[str, Any]], None]] = []
        """Called with a host and each event its program pushes (on the link's reader: hand it off)."""
        self._watches: dict[str, HostWatch] = {}
        self._guard = threading.Lock()
        self._applied: Mapping[str, HostConfig] | None = None
        self._bell = threading.Event()  # the store was touched (a reloaded configuration, among others)
        engine.store.listen_touches(self._bell.set)

    # the service ------------------------------------------------------------------------------------

    def run(self) -> None:
        while not self.stopping.is_set():
            self._bell.clear()  # a reload from now on rings again
            try:
                self._apply(self.engine.config.hosts)
            except Exception:
                log.exception("applying the hosts of supervisor.yaml failed")
            self._bell.wait(LOOK_EVERY)

    def wake(self) -> None:
        self._bell.set()

    def stop(self) -> None:
        super().stop()
        with self._guard:
            watches, self._watches = list(self._watches.values()), {}
        _stop_all(watches)

    def link(self, host: str) -> Link | None:
        """The link to `host` while it is up, else None."""
        with self._guard:
            watch = self._watches.get(host)
        return None if watch is None else watch.link

    def reach(self, host: str) -> Reach | None:
        with self._guard:
            watch = self._watches.get(host)
        return None if watch is None else watch.reach

    def known(self, host: str, timeout: float) -> Reach | None:
        """`host`'s reach once its first connection attempt ended, waiting up to `timeout` while it is being made
        (a `start --host` just after the engine started, or after supervisor.yaml gained the host)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._guard:
                watch = self._watches.get(host)
            if watch is not None:
                return watch.known(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline or self.stopping.is_set():
                return None
            self.stopping.wait(0.1)  # its watch starts within LOOK_EVERY

    def _apply(self, hosts: Mapping[str, HostConfig]) -> None:
        """Watch exactly the hosts of `hosts` (the configuration in force)."""
        if hosts is self._applied:
            return
        with self._guard:
            current = dict(self._watches)
        gone = [watch for name, watch in current.items() if hosts.get(name) != watch.host]
        _stop_all(gone)
        for watch in gone:
            if watch.name not in hosts:
                unreachable.forgotten(self.engine, watch.name)
                self.engine.store.append_event(None, "host_removed", host=watch.name)
        started = []
        with self._guard:
            for watch in gone:
                self._watches.pop(watch.name, None)
            for name, host in hosts.items():
                if name not in self._watches and not self.stopping.is_set():
                    self._watches[name] = HostWatch(host, self._changed, on_event=self._event)
                    started.append(self._watches[name])
        for watch in started:
            watch.start()
        self._applied = hosts

    def _changed(self, host: str, reach: Reach) -> None:
        """A host went up or down (on its own thread)."""
        if reach.state == DOWN:
            names = unreachable.host_down(self.engine, host, reach.error or "down")
            log.warning("host %s is down (%s); unreachable: %s", host, reach.error, ", ".join(names) or "none")
            for down in list(self.on_down):
                try:
                    down(host, reach.error or "down")
                except Exception:
                    log.exception("%s: a handler of the host going down failed", host)
        elif reach.state == UP:
            link = self.link(host)
            for callback in list(self.on_up):
                if link is None:
                    break  # down again already: its own news follows
                try:
                    callback(host, link)
                except Exception:
                    log.exception("%s: a handler of the host coming up failed", host)
            names = unreachable.host_up(self.engine, host, functools.partial(readopt.judge_again, self.engine))
            log.info("host %s is up (%.0f ms); back: %s", host, reach.latency_ms or 0, ", ".join(names) or "none")

    def _event(self, host: str, message: dict[str, Any]) -> None:
        for callback in list(self.on_event):
            callback(host, message)

    # the request --------------------------------------------------------------------------------------

    def op_hosts(self) -> list[dict[str, Any]]:
        """Each host as the engine knows it now (`local` first), with the live agents on it."""
        config = self.engine.config
        agents: dict[str, int] = {}
        for agent in self.engine.store.agents():
            if agent.state.live:
                agents[agent.host] = agents.get(agent.host, 0) + 1
        load1, _, _ = os.getloadavg()
        rows = [row(LOCAL, UP, agents.get(LOCAL, 0), config.local_max_agents, load1, os.cpu_count(), None,
                    time.time(), None)]
        for name, host in config.hosts.items():
            reach = self.reach(name)
            if reach is None:  # just added to supervisor.yaml: its watch starts within LOOK_EVERY
                rows.append(row(name, CONNECTING, agents.get(name, 0), host.max_agents, None, None, None, None,
                                None))
                continue
            rows.append(row(name, reach.state, agents.get(name, 0), host.max_agents, reach.load1, reach.cores,
                            reach.latency_ms, reach.last_seen, reach.error))
        return rows


def _stop_all(watches: list[HostWatch]) -> None:
    """Stop the watches together (each closes its link: a few seconds at most each, not one after another)."""
    threads = [threading.Thread(target=watch.stop, name=f"host-{watch.name}-stop", daemon=True) for watch in watches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
