"""Requests from remote agents' own sockets (supervisor/hosts/remote/channel.py), answered as the local ones.

The host program pushes each request a connection to an agent's socket there carried (`agent_request`); it is
answered on a worker of that host's own bounded pool (a held approval waits for a human there) exactly as a
request through that agent's socket here (supervisor/engine/server.py `answer`): the caller IS the agent whose
socket it came through, as the host program names it, and only an agent of that host; what it says of itself
counts for nothing, and it may ask only what an agent may (supervisor/engine/callers.py). Hook events its
client spooled while the link was down (or the engine answered too late) come home when the spool changes and
each time the host comes up, in order, applied once (`engine.hooks_once`, as local spools are).

A host may push anything (an agent there can write into the host program's output), so what it pushes is
bounded: only events naming an agent of that host are taken, each agent has at most PER_AGENT_IN_FLIGHT
requests in flight (more are refused, said once), one read of its spool waits at most, and the workers of a host
are at most WORKERS_PER_AGENT per agent place there.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent
from supervisor.engine.once import apply_spooled
from supervisor.engine.peers import Peer
from supervisor.engine.server import answer
from supervisor.errors import SupervisorError
from supervisor.hosts.link import Link, LinkError
from supervisor.hosts.remote.channel import HOOKS_WATCH, Channel
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

PER_AGENT_IN_FLIGHT = 16  # requests of one agent being answered at once (held approvals, parallel hooks)
WORKERS_PER_AGENT = PER_AGENT_IN_FLIGHT + 1  # and one read of its spool


class Workers:
    """At most `size` daemon threads (a held approval must not hold the engine's exit) taking jobs in order."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self.threads = 0
        self._idle = 0  # workers waiting for a job that no job has claimed yet
        self._jobs: queue.SimpleQueue[tuple[Callable[..., None], tuple[object, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()

    def submit(self, job: Callable[..., None], *args: object) -> None:
        with self._lock:
            self._jobs.put((job, args))
            if self._idle:
                self._idle -= 1
            elif self.threads < self.size:
                self.threads += 1
                threading.Thread(target=self._work, daemon=True, name=f"{self.name}-{self.threads}").start()

    def _work(self) -> None:
        while True:
            job, args = self._jobs.get()
            try:
                job(*args)
            except Exception:
                log.exception("%s: a job failed", self.name)
            with self._lock:
                self._idle += 1


class RemoteRequests:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ingesting: dict[str, threading.Lock] = {}  # by agent: one read of its spool at a time
        self._guard = threading.Lock()
        self._workers: dict[str, Workers] = {}  # by host
        self._in_flight: dict[str, int] = {}  # by agent: its requests being answered
        self._spool_asked: set[str] = set()  # agents whose spool is to be read (once, however many events)
        self._said_full: set[str] = set()  # agents whose refusal was said (until one of theirs is answered)
        engine.hostlinks.on_event.append(self.on_event)
        engine.hostlinks.on_up.append(self.on_up)
        engine.hostlinks.on_down.append(self.on_down)

    # from the hosts ---------------------------------------------------------------------------------------

    def on_event(self, host: str, message: dict[str, Any]) -> None:
        """On the link's reader: handed off at once to the host's workers, within the bounds."""
        kind = message.get("event")
        if kind == "agent_request":
            name = message.get("agent")
            if not self._of_host(host, name):
                log.warning("host %s pushed a request for %r, which is no agent of that host", host, str(name)[:80])
                return
            assert isinstance(name, str)
            with self._guard:
                if self._in_flight.get(name, 0) >= PER_AGENT_IN_FLIGHT:
                    if name not in self._said_full:
                        self._said_full.add(name)
                        log.warning("%s: more than %d requests from host %s at once; those past it are refused",
                                    name, PER_AGENT_IN_FLIGHT, host)
                    return
                self._in_flight[name] = self._in_flight.get(name, 0) + 1
            self._workers_of(host).submit(self._serve_counted, host, name, message)
        elif kind == "file" and str(message.get("watch") or "").startswith(HOOKS_WATCH):
            name = str(message["watch"])[len(HOOKS_WATCH):]
            if not self._of_host(host, name):
                return
            with self._guard:
                if name in self._spool_asked:
                    return  # a read is waiting already: it sees this file too
                self._spool_asked.add(name)
            self._workers_of(host).submit(self._ingest_asked, host, name)

    def in_flight(self, name: str) -> int:
        """Agent `name`'s requests being answered now."""
        with self._guard:
            return self._in_flight.get(name, 0)

    def _of_host(self, host: str, name: object) -> bool:
        if not isinstance(name, str) or not name:
            return False
        agent = self.engine.store.get_agent(name)
        return agent is not None and agent.host == host

    def _workers_of(self, host: str) -> Workers:
        with self._guard:
            workers = self._workers.get(host)
            if workers is None:
                hosts = self.engine.config.hosts
                places = hosts[host].max_agents if host in hosts else 1
                workers = self._workers[host] = Workers(f"remote-requests-{host}", WORKERS_PER_AGENT * places)
            return workers

    def _serve_counted(self, host: str, name: str, message: dict[str, Any]) -> None:
        try:
            self.serve(host, message)
        finally:
            with self._guard:
                self._in_flight[name] -= 1
                if not self._in_flight[name]:
                    del self._in_flight[name]
                self._said_full.discard(name)

    def _ingest_asked(self, host: str, name: str) -> None:
        with self._guard:
            self._spool_asked.discard(name)  # an event from now on asks for another read
        self.ingest(host, name)

    def on_up(self, host: str, link: Link) -> None:
        """The host is (back) up: its live agents' sockets listen again there, and what they spooled comes home."""
        for agent in self.engine.store.agents():
            if agent.host != host or not agent.state.live:
                continue
            try:
                channel = self._channel(agent)
                if channel is None:
                    continue
                channel.open(agent, agent.pid)  # its pane's processes alone
            except (LinkError, SupervisorError) as exc:
                log.warning("%s: its socket on host %s could not be opened: %s", agent.name, host, exc)
                continue
            self.ingest(host, agent.name)

    def on_down(self, host: str, error: str) -> None:
        """The host dropped, and its program with it: each hook it held for an approval gave up there (its event
        spooled, its CLI showing its own dialog). What waits at home for a human is let go, saying so: an answer
        could reach no one."""
        for agent in self.engine.store.agents():
            if agent.host == host and self.engine.approvals.pending(agent.name) is not None:
                self.engine.approvals.drop(agent.name, f"host {host} went down ({error}): its hook there gave up")

    # requests -------------------------------------------------------------------------------------------

    def serve(self, host: str, message: dict[str, Any]) -> None:
        name = str(message.get("agent") or "")
        conn = message.get("conn")
        request = message.get("request")
        if not isinstance(conn, int):
            log.warning("host %s pushed a request without its connection: %r", host, message)
            return
        reply = answer(lambda method, params, peer: self._as_agent(host, method, params, peer), self.engine.disk.note,
                       request if isinstance(request, dict) else {}, Peer(0, name))
        agent = self.engine.store.get_agent(name)
        channel = self._channel(agent) if agent is not None and agent.host == host else None
        if channel is None:
            return
        try:
            channel.answer(conn, reply)
        except (LinkError, SupervisorError) as exc:  # the host went away: its client spools a hook event
            log.info("%s: the answer could not reach host %s: %s", name, host, exc)

    def _as_agent(self, host: str, method: str, params: dict[str, Any], peer: Peer) -> Any:
        """The request as agent `peer.agent`'s, the one whose socket on `host` it came through."""
        agent = self.engine.store.get_agent(peer.agent or "")
        if agent is None:
            raise SupervisorError(f"agent {peer.agent} is no longer known to the engine")
        if agent.host != host:
            raise SupervisorError(f"refused: agent {agent.name} does not run on host {host}")
        self._watched(agent)
        return self.engine.handle_as(agent, peer, method, params)

    def _watched(self, agent: Agent) -> None:
        """What the engine holds of a live agent's state (its hook events decide it), made when the host's own
        watch has not made it yet."""
        if agent.state.live and agent.name not in self.engine.live:
            self.engine.live.setdefault(agent.name, self.engine.watcher.fresh_live(agent))

    # the spool ------------------------------------------------------------------------------------------

    def ingest(self, host: str, name: str) -> None:
        """Agent `name`'s hook events spooled on `host`, applied in order and once, then removed there."""
        with self._guard:
            lock = self._ingesting.setdefault(name, threading.Lock())
        with lock:
            agent = self.engine.store.get_agent(name)
            channel = self._channel(agent) if agent is not None and agent.host == host else None
            if agent is None or channel is None:
                return
            try:
                found = channel.spooled(name)
                if not found:
                    return
                self._watched(agent)
                taken: list[str] = []
                apply_spooled(found, name, self.engine.store, self.engine.hooks_once,
                              self.engine.hookdesk.apply_spooled, taken.append)
                channel.remove_spooled(name, taken)
            except (LinkError, SupervisorError) as exc:
                log.info("%s: its spool on host %s is read when the link is back: %s", name, host, exc)
                return
            lock_held = self.engine.try_agent_lock(name)
            if lock_held is not None:  # else the operation holding it decides
                try:
                    self.engine.watcher.decide_now(name)
                finally:
                    lock_held.release()

    def _channel(self, agent: Agent | None) -> Channel | None:
        if agent is None:
            return None
        try:
            host = self.engine.host_of(agent)
        except SupervisorError:
            return None
        return host.channel if isinstance(host, RemoteHost) else None

