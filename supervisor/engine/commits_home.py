"""Remote agents' commits brought home as their branches move (SPEC §12): the audit, the conflict radar, merge,
diff and compare then read commits the engine holds itself, in the user's repository.

Every FETCH_SECONDS, for each host with agents that has its link up: one `git_heads` request (the clone's refs),
compared with what was fetched before (`refs/supervisor/hosts/HOST/heads/...`, supervisor/git/agent_refs.py);
only when an agent's branch moved there, one `git_send` request brings the commits home lacks, checked as they
come in (bundles.fetch), and the private refs move. A host coming back up is looked at at once. Nothing the host
sends can touch another ref: each ref is set by the engine to the commit the host named, under its host's
namespace. A host that is slow or down holds no other engine thread (its requests have short timeouts).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from supervisor.core.model import Agent, State
from supervisor.engine.service import PeriodicService
from supervisor.errors import SupervisorError
from supervisor.git import agent_refs
from supervisor.git.audit import branch_tips
from supervisor.hosts import bundles
from supervisor.hosts.link import Link, LinkError
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

FETCH_SECONDS = 2.0
HEADS_TIMEOUT = 15.0


class CommitsHome(PeriodicService):
    thread_name = "commits-home"
    interval = FETCH_SECONDS

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self._wake = threading.Event()
        self._said: dict[str, str] = {}  # host → the fault last logged (said once until it changes)
        self.fetches = 0  # bundles fetched (tests, measurements)
        engine.hostlinks.on_up.append(lambda host, link: self._wake.set())

    def pause(self) -> None:
        self._wake.wait(self.interval)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def step(self) -> None:
        by_host: dict[str, list[Agent]] = {}
        for agent in self.engine.store.agents():
            if agent_refs.is_remote(agent) and agent.state != State.QUEUED:
                by_host.setdefault(agent.host, []).append(agent)
        for host, agents in by_host.items():
            if self.stopping.is_set():
                return
            self.bring_home(host, agents)

    def bring_home(self, host: str, agents: list[Agent]) -> list[str]:
        """Fetch the agents' branches that moved on `host`; the private refs that moved."""
        if host not in self.engine.config.hosts:
            return []
        remote = self.engine.host_of(agents[0])
        link = self.engine.hostlinks.link(host)
        if not isinstance(remote, RemoteHost) or link is None or not link.up:
            return []
        try:
            moved = self._fetch(remote, link, agents)
        except (LinkError, SupervisorError) as exc:
            if self._said.get(host) != exc.message:
                self._said[host] = exc.message
                log.warning("host %s: its agents' commits cannot be brought home: %s", host, exc.message)
            return []
        self._said.pop(host, None)
        if moved:
            self.engine.store.touch()  # the auditor and the radar look now
        return moved

    def _fetch(self, remote: RemoteHost, link: Link, agents: list[Agent]) -> list[str]:
        root = self.engine.paths.root
        clone = remote.layout().clone
        answer = link.call("git_heads", repo=clone, timeout=HEADS_TIMEOUT)
        there: dict[str, str] = answer.get("refs") or {}
        namespace = agent_refs.host_namespace(remote.name)
        here = branch_tips(root, namespace + "/")
        wanted = []
        for agent in agents:
            ref = f"refs/heads/{agent.branch}"
            tip = there.get(ref)
            if tip is not None and here.get(agent_refs.branch_ref(agent)) != tip:
                wanted.append(ref)
        if not wanted:
            return []
        fetched = bundles.fetch(link, root, clone, wanted, namespace)
        self.fetches += 1
        return sorted(fetched)
