"""The engine: one long-lived process per repository that owns the agents.

Requests arrive on the control sockets, the human's and each agent's own (one thread each); the watch loop
runs in the main thread. Every change to an agent happens under that agent's lock and is written to the store
(with its event) before anything else is told, so the engine can be killed at any instant and re-adopt the same world.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

from supervisor import __version__, registry
from supervisor.client import repair_holding, take_engine_lock
from supervisor.config import Config, load_config
from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.engine import callers, environments, rebuild, sites, spools, views
from supervisor.engine.answers import Answers
from supervisor.engine.approvals import (
    Approvals,
)
from supervisor.engine.auditor import Auditor
from supervisor.engine.branches import BranchFacts
from supervisor.engine.bulk import BulkDesk, unknown_agent
from supervisor.engine.commits_home import CommitsHome
from supervisor.engine.contracts import TAMPERED, Contracts
from supervisor.engine.diskfaults import DiskWatch
from supervisor.engine.endings import Endings
from supervisor.engine.folderwatch import FolderWatch
from supervisor.engine.guarddesk import GuardDesk
from supervisor.engine.helpers import HelperDesk
from supervisor.engine.hookdesk import HookDesk
from supervisor.engine.host_transcripts import HostTranscripts
from supervisor.engine.hostlinks import HostLinks
from supervisor.engine.launcher import Launcher
from supervisor.engine.limits import Limits
from supervisor.engine.once import HookLedger
from supervisor.engine.panes import Panes
from supervisor.engine.params import check_params
from supervisor.engine.planner import Planner
from supervisor.engine.prompter import Prompter
from supervisor.engine.radar import ConflictRadar
from supervisor.engine.remoterequests import RemoteRequests
from supervisor.engine.restore import RestoreDesk
from supervisor.engine.review import ReviewDesk
from supervisor.engine.screens import Screens
from supervisor.engine.server import ControlServer, Peer, clear_path
from supervisor.engine.spending import SpendingWatch
from supervisor.engine.startup import StartNote, take_over
from supervisor.engine.taskdesk import TaskDesk
from supervisor.engine.transcripts import Transcripts
from supervisor.engine.unreached import PendingStops
from supervisor.engine.watcher import Live, Watcher
from supervisor.engine.worktree_state import uncommitted_changes
from supervisor.errors import SupervisorError, UsageError
from supervisor.hosts.base import Host
from supervisor.hosts.local import LocalHost
from supervisor.hosts.remote.host import RemoteHost
from supervisor.paths import RepoPaths
from supervisor.tmux.panes import LOCAL
from supervisor.tmux.server import Tmux
from supervisor.usage.service import UsageService

log = logging.getLogger(__name__)


class Service(Protocol):
    """A subsystem the engine runs beside the watcher (started after adoption, stopped at shutdown)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Engine:
    def __init__(self, paths: RepoPaths) -> None:
        self.paths = paths
        paths.ensure_dirs()
        self._lock_file: IO[str] | None = None
        self.config: Config = load_config(paths.root)
        self._config_mtime = _mtime(paths.config_file)
        paths.config_refused.unlink(missing_ok=True)  # what it read is in force
        self.store = Store(paths.db_path)
        self.contracts = Contracts(self)  # its key, the digests of stored contracts, the guard's contract files
        self.tmux = Tmux(paths.tmux_socket, paths.tmux_conf)
        self.agents_env = environments.for_agents(self.tmux, self.paths)
        self.panes = Panes(self.tmux, self.store)
        self.local = LocalHost(self.paths, self.tmux, self.panes, lambda: self.config)  # this machine
        self.hosts: dict[str, Host] = {LOCAL: self.local}  # where agents run, by name (`host_of`)
        self.live: dict[str, Live] = {}
        self.transcripts = Transcripts(paths.logs_dir, self.config.logs.max_bytes)
        self.disk = DiskWatch(self.store, self.transcripts, str(paths.state_dir))  # what waits for the disk
        self._agent_locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self.admission = threading.Lock()  # a parent's live helpers are counted, and a place taken, under it
        self.ending_now: Counter[str] = Counter()  # agents a stop, timeout or removal waits for: a start gives way
        # Hook events applied, by the id `supervisor hook` gave them: the spooled copy of an event answered too
        # late (by this engine, or one before it) is not applied a second time.
        self.hooks_once = HookLedger(self.store)
        self.folders = FolderWatch()  # which spool and ref folders changed (inotify), read by the watch loop
        self.spools = spools.Spools(paths, self.folders)  # each agent's spool folder, as last read
        self._stopping = threading.Event()
        self.started_at = time.time()
        self.watcher = Watcher(self)
        self.approvals = Approvals(self.store)
        self.limits = Limits(self)
        self.branches = BranchFacts(paths.root, paths.common_dir,  # tips, commits ahead, diff stats: cached
                                    functools.partial(uncommitted_changes, self))
        # Subsystems with threads of their own (alert delivery); each may offer `op_*` requests.
        from supervisor.alerts.service import AlertService

        self.auditor = Auditor(self)
        self.planner = Planner(self)
        self.usage = UsageService(self)  # tokens and cost from each agent's CLI records
        self.usage.subscribe(SpendingWatch(self))  # budgets and the context alert, as usage changes
        self.hostlinks = HostLinks(self)  # a link per host of `hosts:`, and whether each is up (`hosts`)
        self.remote_requests = RemoteRequests(self)  # remote agents' sockets: their requests, their spooled hooks
        self.hostlinks.on_event.append(functools.partial(sites.relay_event, self))  # hosts' tmux output
        self.services: list[Service] = [AlertService(self), HelperDesk(self), self.auditor, self.planner,
                                        ConflictRadar(self), TaskDesk(self), RestoreDesk(self),
                                        self.usage, BulkDesk(self), self.hostlinks, CommitsHome(self), ReviewDesk(self)]
        # What the engine does for its requests and its watcher, each in a desk of its own (each may offer `op_*`).
        self.launcher = Launcher(self)
        self.prompter = Prompter(self)
        self.endings = Endings(self)
        self.pending_stops = PendingStops(self)  # stops that wait for their host, carried out once it is back
        self.host_transcripts = HostTranscripts(self)  # what hosts keep of their panes' output while out of reach
        self.hookdesk = HookDesk(self)
        self.answers = Answers(self)
        self.screens = Screens(self)
        self.desks = (self.launcher, self.prompter, self.endings, self.hookdesk, self.answers, self.screens,
                      GuardDesk(self))
        # ... and called by their names here too (the watcher, the services)
        self.create, self.new_session, self.free_port = self.launcher.create, self.launcher.new_session, \
            self.launcher.free_port
        self.start_queued, self.start_again = self.launcher.start_queued, self.launcher.start_again
        self.relaunch, self.restart_quietly = self.launcher.relaunch, self.launcher.restart_quietly
        self.tell, self.deliver_pending, self.interrupt = self.prompter.tell, self.prompter.deliver_pending, \
            self.prompter.interrupt
        self.stop_tree, self.kill_for_timeout = self.endings.stop_tree, self.endings.kill_for_timeout
        self.op_send, self.op_stop, self.op_rm = self.prompter.op_send, self.endings.op_stop, self.endings.op_rm
        self.answer, self.op_approve = self.answers.answer, self.answers.op_approve
        self.ingest_spool_if_changed = self.hookdesk.ingest_spool_if_changed
        self.end_transcript, self.resync_transcript = self.screens.end_transcript, self.screens.resync_transcript
        self.look_at, self.screen_tail, self.op_screen = self.screens.look_at, self.screens.screen_tail, \
            self.screens.op_screen
        # The human's socket and each live agent's own (a connection through it is that agent); answered once
        # `serve` runs, and queued in their backlogs until then.
        self.control = ControlServer(self.handle, self.disk.note)

    # running ------------------------------------------------------------------------------------------

    def acquire_singleton(self) -> None:
        handle = open(self.paths.engine_lock, "a")  # noqa: SIM115 - held for the engine's lifetime
        if not take_engine_lock(handle):
            handle.close()
            repairing = repair_holding(self.paths.engine_lock)
            if repairing is not None:
                raise SupervisorError(f"`supervisor {repairing}` is repairing the store",
                                      hint="the engine starts once it is done") from None
            raise SupervisorError("an engine is already running for this repository") from None
        os.ftruncate(handle.fileno(), 0)  # what a repair killed while it held the lock left
        self._lock_file = handle

    def serve(self, *, hangup_stops: bool = True) -> None:
        """Run until asked to stop: adopt what exists, answer requests, watch every tick. The tmux server is not
        started here (a dead one is news the watcher tells), but by the first launch that needs one.
        `hangup_stops`: SIGHUP stops it (run in a terminal; detached, `detached.detach` makes it harmless)."""
        self.acquire_singleton()
        note = StartNote(self.paths.engine_starting)  # what the command waiting for it is told meanwhile
        take_over(self, note)
        self.control.listen(self.paths.engine_socket)
        self.control.serve_in_thread()
        note.done()
        registration = _register(self.paths)  # `ls --all`, `ui --all` find it from now on
        if threading.current_thread() is threading.main_thread():  # (an engine in a test's thread: request_stop)
            for signum in (signal.SIGTERM, signal.SIGINT, *([signal.SIGHUP] if hangup_stops else [])):
                signal.signal(signum, lambda *_: self._stopping.set())
        log.info("engine %d serving %s", os.getpid(), self.paths.root)
        try:
            self.watcher.run(self._stopping)
        finally:
            if registration is not None:
                registry.unregister(registration)
            self.control.shutdown()
            self.control.server_close()
            for service in self.services:
                service.stop()
            self.tmux.close()
            self.folders.close()
            self.store.append_event(None, "engine_stopped", pid=os.getpid())
            self.store.close()

    def request_stop(self) -> None:
        self._stopping.set()

    def reload_config_if_changed(self) -> None:
        mtime = _mtime(self.paths.config_file)
        if mtime == self._config_mtime:
            return
        self._config_mtime = mtime
        try:
            self.config = load_config(self.paths.root)
            self.transcripts.max_bytes = self.config.logs.max_bytes
            self.agents_env = environments.for_agents(self.tmux, self.paths)
        except SupervisorError as exc:
            log.warning("keeping the previous configuration: %s", exc)
            self.store.append_event(None, "config_invalid", error=str(exc))
            self.paths.config_refused.write_text(f"{exc}\n")  # every command warns while it is there
            return
        self.paths.config_refused.unlink(missing_ok=True)
        self.store.touch()  # the services that wait for changes look at the new configuration

    @contextmanager
    def ending(self, name: str) -> Iterator[None]:
        """The agent's lock, for ending it: an operation waiting for its prompt under that lock (a start, a
        helper, an approval) gives way at once instead of holding the stop up for its whole timeout."""
        with self._locks_guard:
            self.ending_now[name] += 1
        try:
            with self.agent_lock(name):
                yield
        finally:
            with self._locks_guard:
                self.ending_now[name] -= 1
                if not self.ending_now[name]:
                    del self.ending_now[name]

    @contextmanager
    def agent_lock(self, name: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._agent_locks.setdefault(name, threading.RLock())
        with lock:
            yield

    def try_agent_lock(self, name: str) -> threading.RLock | None:
        lock = self._agent_locks.get(name)  # the watcher asks for every agent's each tick: no new lock each time
        if lock is None:
            with self._locks_guard:
                lock = self._agent_locks.setdefault(name, threading.RLock())
        return lock if lock.acquire(blocking=False) else None

    # requests -----------------------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any], peer: Peer) -> Any:
        return self.handle_as(callers.identify(peer, self.store.agents(), method), peer, method, params)

    def handle_as(self, caller: Agent | None, peer: Peer, method: str, params: dict[str, Any]) -> Any:
        """A request from `caller` (None: the human), known by the socket it came through (`peer`)."""
        callers.check(caller, peer, method, params)
        handler = self.handler(method)
        check_params(method, handler, params)
        if method in callers.CALLER_METHODS:
            params = {**params, "_caller": caller}
        try:
            return handler(**params)
        except TypeError as exc:
            if "argument" not in str(exc):
                raise
            raise UsageError(f"bad parameters for {method}: {exc}") from None

    def handler(self, method: str) -> Callable[..., Any]:
        """What answers request `method`: the `op_<method>` of the engine, one of its desks or a service."""
        handler: Callable[..., Any] | None = next((getattr(owner, f"op_{method}") for owner in
                                                   (self, *self.desks, *self.services)
                                                   if hasattr(owner, f"op_{method}")), None)
        if handler is None:
            raise UsageError(f"unknown request {method!r}")
        return handler

    def ready_socket(self, agent: Agent) -> None:
        """At start: a live agent's socket listened on again; a stopped one's removed (an engine killed meanwhile
        left it, or something was planted there). One agent's trouble is said, never stops the engine."""
        try:
            if agent.state.live:
                self.open_socket(agent.name)
            else:
                clear_path(self.paths.agent_socket(agent.name))
        except (OSError, SupervisorError) as exc:
            log.warning("%s: its socket could not be cleared: %s", agent.name, exc)

    def open_socket(self, name: str) -> str | None:
        """The agent's own socket, in its own runtime folder (with the folder its hook spools into); None when
        made, else why not (said in its events too). An agent is never told the human's socket instead: a
        sandboxed one whose socket cannot be made is not started."""
        try:
            spools.prepare(self.paths, name)
            self.control.listen(self.paths.agent_socket(name), name)
        except (OSError, SupervisorError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            log.warning("%s: its own socket could not be made (%s)", name, why)
            self.store.append_event(name, "socket_unavailable", path=str(self.paths.agent_socket(name)), error=why)
            return why
        return None

    def close_socket(self, name: str) -> None:
        self.control.forget(self.paths.agent_socket(name))

    def op_ping(self) -> str:
        return "pong"

    def op_status(self) -> dict[str, Any]:
        agents = self.store.agents()
        return {
            "pid": os.getpid(),
            "version": __version__,
            "repo": str(self.paths.root),
            "started_at": views.iso(self.started_at),
            "agents": len(agents),
            "live": sum(1 for a in agents if a.state.live),
            "tmux_socket": str(self.paths.tmux_socket),
            "tmux_running": self.tmux.alive(),  # ended: its agents are restorable; the next start makes a new one
            "log": str(self.paths.engine_log),
            "store": str(self.paths.db_path),
            "tick_seconds": self.watcher.last_tick_seconds,
            "ticks": self.watcher.ticks,
            "unwritten": self.disk.note(),
        }

    def op_shutdown(self) -> str:
        self.request_stop()
        return "stopping"

    def op_ls(self) -> list[dict[str, Any]]:
        agents = self.store.agents()
        ready = self.branches.readiness(agents)
        usage = self.usage.per_agent()
        return [views.agent_view(a, self.live.get(a.name), ready.get(a.name), self.store.newest_event(a.name),
                                 usage.get(a.name)) for a in views.tree_order(agents)]

    def op_show(self, name: str, events: int = 20) -> dict[str, Any]:
        agent = self.get(name)
        view = views.agent_view(agent, self.live.get(name), self.branches.readiness(self.store.agents()).get(name),
                                self.store.newest_event(name), self.usage.usage_of(name))
        view["task"], view["task_cut"] = agent.task, False  # whole here, unlike in `ls`
        view["events"] = [views.event_view(e) for e in self.store.events(name, limit=events)]
        view["screen"] = self.screens.last_screen(agent, 15)
        view["transcript"] = str(self.paths.transcript(name))
        view["command"] = agent.command
        view["profile"] = agent.profile
        view["reason"] = agent.reason
        view["port"] = agent.port
        view["restarts"] = agent.restarts
        view["session_id"] = agent.extra.get("session_id")  # the CLI's own id of its conversation, when known
        view["contract"] = agent.extra.get("contract")
        view["contract_unverified"] = agent.extra.get(rebuild.UNVERIFIED)
        view["contract_tampered"] = agent.extra.get(TAMPERED)
        view["rebuilt"] = agent.extra.get("rebuilt")
        view["violations"] = agent.extra.get("violations") or []
        return view

    def op_events(self, name: str | None = None, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Events of one agent (or all), oldest first: the newest `limit` after id `after`."""
        if name is not None:
            self.get(name)
        return [views.event_view(e) for e in self.store.events(name, after=after, limit=limit)]

    def op_changes(self, after: int = 0, timeout: float = 10.0, limit: int = 500) -> dict[str, Any]:
        """Long poll: waits up to `timeout` for events after id `after`; returns them and the newest id.

        A client keeps `last` and calls again, so it sees every change within moments, without polling."""
        last = self.store.wait_for_events(after, min(max(timeout, 0.0), 60.0))
        events = self.store.events(None, after=after, limit=limit) if last > after else []
        return {"last": last, "events": [views.event_view(e) for e in events]}

    def op_diffstat(self) -> dict[str, dict[str, int]]:
        """Per agent: files changed and lines added/removed in its worktree against its base commit (commits,
        uncommitted edits, new files), recomputed only for agents whose branch, worktree or pane moved."""
        printed = {name: live.last_output for name, live in list(self.live.items())}
        return self.branches.diffstats(self.store.agents(), printed)

    def op_attach_info(self, name: str) -> dict[str, Any]:
        agent = self.get(name)
        info = self.host_of(agent).attach_info(agent)
        if info is None:
            raise SupervisorError(f"{name} has no pane to attach to",
                                  hint=f"`supervisor restart {name}` starts it again")
        return info

    def host_of(self, agent: Agent) -> Host:
        """The machine `agent` runs on, where everything beside it is done (its worktree, pane, processes)."""
        host = self.host_named(agent.host)
        if host is None:
            raise SupervisorError(f"{agent.name} runs on host {agent.host!r}, which this engine does not know",
                                  hint="name it under `hosts:` in supervisor.yaml")
        return host

    def host_named(self, name: str) -> Host | None:
        """The host `name` of supervisor.yaml (or `local`), None when the configuration names none."""
        host = self.hosts.get(name)
        config = self.config.hosts.get(name)
        if config is not None and (not isinstance(host, RemoteHost) or host.config != config):
            host = self.hosts[name] = RemoteHost(config, functools.partial(self.hostlinks.link, name), self.paths,
                                                 lambda: self.config, self.store,
                                                 functools.partial(self.hostlinks.known, name))
        return host

    def get(self, name: str) -> Agent:
        agent = self.store.get_agent(name)
        if agent is None:
            raise unknown_agent(name, [a.name for a in self.store.agents()])
        return agent

    # state --------------------------------------------------------------------------------------------

    def set_state(self, agent: Agent, state: State, event: str | None = None, **data: Any) -> None:
        """Change an agent's state and record the transition (the caller holds the agent's lock)."""
        now = time.time()
        previous = agent.state
        agent.state = state
        agent.state_since = now
        if state not in (State.WAITING, State.LIMITED):
            agent.waiting_reason = None  # whatever path leaves `waiting`: a reason shown later would be stale
        if state != State.UNREACHABLE:
            agent.last_state = None  # likewise out of reach: e.g. its pane found gone from a stored copy
        self.limits.changed(agent, previous, state, data.get("reason"), data.get("screen") or [])
        live = self.live.get(agent.name)
        if live is not None and live.last_output:
            agent.last_activity_at = live.last_output
        self.store.save_agent(agent, event or "state", previous=str(previous), state=str(state), **data)
        if previous.live and not state.live:
            self.close_socket(agent.name)  # it ended: nothing speaks for it any more
        log.debug("%s: %s -> %s %s", agent.name, previous, state, data or "")  # the event log has it all

    # timeouts -----------------------------------------------------------------------------------------

    def timeout_of(self, agent: Agent) -> float | None:
        override = agent.extra.get("timeout")
        if override:
            return float(override)
        limits = self.config.limits
        return limits.session_timeout if agent.parent is None else limits.helper_timeout


def _register(paths: RepoPaths) -> Path | None:
    try:
        return registry.register(paths)
    except (OSError, SupervisorError) as exc:  # it serves all the same; only `ls --all` will not list it
        log.warning("could not register the engine for `ls --all`: %s", exc)
        return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None

