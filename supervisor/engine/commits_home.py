"""Remote agents' commits brought home as their branches move (SPEC §12): the audit, the conflict radar, merge,
diff and compare then read commits the engine holds itself, in the user's repository.

Every FETCH_SECONDS, for each host with agents that has its link up: one `git_heads` request (the clone's refs),
compared with what was fetched before (`refs/supervisor/hosts/HOST/heads/...`, supervisor/git/agent_refs.py);
only when an agent's branch moved there, one `git_send` request brings the commits home lacks, checked as they
come in (bundles.fetch), and the private refs move. A host coming back up is looked at at once. Nothing the host
sends can touch another ref: its answers are checked (bundles.heads), each ref is set by the engine to the commit
the host named, under its host's namespace. A host that is slow or down holds no other engine thread (its
requests have short timeouts). The same refs show a base branch (`main`) made or moved in the clone by an agent
there: judged as tamper (engine/host_bases.py).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from supervisor.core.model import Agent, State
from supervisor.engine.records import AgentRecords
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
RECHECK_SECONDS = 60.0  # the private refs read again at least this often though the host's heads did not move
IDLE_SECONDS = 60.0  # with no host configured, it looks at the configuration at least this often


class CommitsHome(PeriodicService):
    thread_name = "commits-home"
    interval = FETCH_SECONDS

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self._wake = threading.Event()
        self._touched = threading.Event()  # the store was touched (a reloaded supervisor.yaml, among others)
        engine.store.listen_touches(self._touched.set)
        self._said: dict[str, str] = {}  # host → the fault last logged (said once until it changes)
        # host → the host's heads and the agents' refs of the last pass that left home up to date, and when:
        # while they stay the same, home's refs are not read again (a git process per host every pass).
        self._settled: dict[str, tuple[object, float]] = {}
        self.fetches = 0  # bundles fetched (tests, measurements)
        self._records = AgentRecords(engine.store)  # only records written since the last pass are decoded
        self._checked: bundles.Checked = {}  # each host's last heads answer, checked: the same one is not again
        engine.hostlinks.on_up.append(lambda host, link: self._wake.set())

    def pause(self) -> None:
        """FETCH_SECONDS while hosts are configured; with none, until supervisor.yaml is read again (it touches
        the store) or IDLE_SECONDS pass."""
        self._touched.clear()  # before the look at the hosts: a reload after it rings
        if self.engine.config.hosts:
            self._wake.wait(self.interval)
        else:
            self._touched.wait(IDLE_SECONDS)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()
        self._touched.set()

    def step(self) -> None:
        if not self.engine.config.hosts:
            return  # no host configured: no agent's commits to bring (`bring_home` would skip each); no record read
        by_host: dict[str, list[Agent]] = {}
        for agent in self._records.read()[0]:
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
        there = bundles.heads(link, clone, HEADS_TIMEOUT, self._checked)
        key = (sorted(there.items()), sorted((agent.branch, agent_refs.branch_ref(agent)) for agent in agents))
        settled = self._settled.pop(remote.name, None)
        now = time.monotonic()
        if settled is not None and settled[0] == key and now - settled[1] < RECHECK_SECONDS:
            self._settled[remote.name] = settled
            return []
        self.engine.auditor.guard.host_bases.check(remote.name, there, agents)  # its clone's refs moved
        namespace = agent_refs.host_namespace(remote.name)
        here = branch_tips(root, namespace + "/")
        wanted = []
        for agent in agents:
            ref = f"refs/heads/{agent.branch}"
            tip = there.get(ref)
            if tip is not None and here.get(agent_refs.branch_ref(agent)) != tip:
                wanted.append(ref)
        fetched = []
        if wanted:
            # The host hears only of commits it has: its namespace's tips here and the bases it was sent.
            bases = [agent.base for agent in agents if bundles.valid_sha(agent.base)]
            fetched = sorted(bundles.fetch(link, root, clone, wanted, namespace, have=bases))
            self.fetches += 1
        self._settled[remote.name] = (key, now)  # home has what the host named (a fetch that failed raised)
        return fetched
