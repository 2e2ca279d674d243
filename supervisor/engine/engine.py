"""The engine: one long-lived process per repository that owns the agents.

Requests arrive on the control sockets, the human's and each agent's own (one thread each); the watch loop
runs in the main thread. Every change to an agent happens under that agent's lock and is written to the store
(with its event) before anything else is told, so the engine can be killed at any instant and re-adopt the same world.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

from supervisor import __version__, registry
from supervisor.agents import get_profile, profile_for
from supervisor.agents.base import hook_command
from supervisor.agents.dialogs import offers
from supervisor.agents.screens import Reading, Verdict
from supervisor.agents.session_ids import valid
from supervisor.client import repair_holding
from supervisor.config import DEFAULT_COMMANDS, Config, load_config
from supervisor.core.contract import Contract, parse_contract
from supervisor.core.durations import format_duration
from supervisor.core.model import Agent, State, validate_name
from supervisor.core.roles import default_session_contract
from supervisor.core.store import Store
from supervisor.core.triggers import Trigger, fire
from supervisor.engine import answering, branch_names, callers, environments, rebuild, spools, undelivered, views
from supervisor.engine.approvals import (
    DIALOG_WAIT,
    Approvals,
    ask_answer,
    await_dialog,
    required,
)
from supervisor.engine.auditor import Auditor
from supervisor.engine.branches import BranchFacts
from supervisor.engine.bulk import BulkDesk, unknown_agent
from supervisor.engine.confinement import end_confined
from supervisor.engine.contracts import TAMPERED, Contracts
from supervisor.engine.delivery import DeliveryError, DialogShown, deliver, wait_for
from supervisor.engine.diskfaults import DiskWatch
from supervisor.engine.environments import agent_identity
from supervisor.engine.helpers import HelperDesk, slot_refusal, with_terms
from supervisor.engine.hooks import brief, read_hook, told_session, tool_summary, unjudged
from supervisor.engine.hostlinks import HostLinks
from supervisor.engine.limits import Limits
from supervisor.engine.once import HookLedger, ran_at
from supervisor.engine.panes import Panes, place
from supervisor.engine.params import check_params
from supervisor.engine.planner import Planner
from supervisor.engine.processes import kill_tree
from supervisor.engine.radar import ConflictRadar
from supervisor.engine.restore import RestoreDesk
from supervisor.engine.server import ControlServer, Peer, clear_path
from supervisor.engine.server_ended import RESTORABLE
from supervisor.engine.spending import SpendingWatch
from supervisor.engine.taskdesk import TaskDesk
from supervisor.engine.transcripts import Transcripts, tail_lines
from supervisor.engine.watcher import Live, Watcher
from supervisor.errors import SupervisorError, UsageError
from supervisor.files import inside
from supervisor.git import worktrees
from supervisor.git.guard import install_guard
from supervisor.git.refs import agent_branch
from supervisor.git.worktrees import write_contract
from supervisor.hosts.base import ISOLATED, CannotIsolate
from supervisor.hosts.isolation import NONE as NO_ISOLATION
from supervisor.hosts.isolation import choose as isolation_choice
from supervisor.hosts.isolation import valid as isolation_valid
from supervisor.hosts.local import LocalHost
from supervisor.paths import RepoPaths, agent_file_name
from supervisor.tmux.server import PaneInfo, Scrolled, Tmux, TmuxError
from supervisor.usage.service import UsageService

log = logging.getLogger(__name__)

PORT_BASE = 20000
PORT_BLOCK = 10
READY_TIMEOUT = 60.0
READY_QUIET = 0.2  # seconds a recognised input box stays unchanged before it takes keys (see Profile.ready_settle)
UNRECOGNISED_QUIET = 5.0
MAX_BEST_OF = 10
RESYNC_ROWS = 2000  # of history searched for where a transcript ends, after a pane was resized


class Service(Protocol):
    """A subsystem the engine runs beside the watcher (started after adoption, stopped at shutdown)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LaunchGate:
    """Spaces out launches of one CLI (concurrent Claude Code starts corrupt its shared config)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def wait(self, key: str, spacing: float) -> None:
        with self._lock:
            now = time.monotonic()
            ready_at = self._last.get(key, -1e9) + spacing
            if ready_at > now:
                time.sleep(ready_at - now)
            self._last[key] = time.monotonic()


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
        self.host = LocalHost(self.paths, self.tmux, self.panes, lambda: self.config)
        self.live: dict[str, Live] = {}
        self.transcripts = Transcripts(paths.logs_dir, self.config.logs.max_bytes)
        self.disk = DiskWatch(self.store, self.transcripts, str(paths.state_dir))  # what waits for the disk
        self._agent_locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self._gate = LaunchGate()
        self.admission = threading.Lock()  # a parent's live helpers are counted, and a place taken, under it
        self._ending: Counter[str] = Counter()  # agents a stop, timeout or removal waits for: a start gives way
        # Hook events applied, by the id `supervisor hook` gave them: the spooled copy of an event answered too
        # late (by this engine, or one before it) is not applied a second time.
        self.hooks_once = HookLedger(self.store)
        self.spools = spools.Spools(paths)  # each agent's spool folder, as last read
        self._stopping = threading.Event()
        self.started_at = time.time()
        self.watcher = Watcher(self)
        self.approvals = Approvals(self.store)
        self.limits = Limits(self)
        self.branches = BranchFacts(paths.root, paths.common_dir)  # tips, commits ahead, diff stats: cached
        # Subsystems with threads of their own (alert delivery); each may offer `op_*` requests.
        from supervisor.alerts.service import AlertService

        self.auditor = Auditor(self)
        self.planner = Planner(self)
        self.usage = UsageService(self)  # tokens and cost from each agent's CLI records
        self.usage.subscribe(SpendingWatch(self))  # budgets and the context alert, as usage changes
        self.hostlinks = HostLinks(self)  # a link per host of `hosts:`, and whether each is up (`hosts`)
        self.services: list[Service] = [AlertService(self), HelperDesk(self), self.auditor, self.planner,
                                        ConflictRadar(self), TaskDesk(self), RestoreDesk(self),
                                        self.usage, BulkDesk(self), self.hostlinks]
        # The human's socket and each live agent's own (a connection through it is that agent); answered once
        # `serve` runs, and queued in their backlogs until then.
        self.control = ControlServer(self.handle, self.disk.note)

    # running ------------------------------------------------------------------------------------------

    def acquire_singleton(self) -> None:
        handle = open(self.paths.engine_lock, "a")  # noqa: SIM115 - held for the engine's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
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
        self.hooks_once = HookLedger(self.store)  # no other engine applies events from now on
        self.tmux.use_control()
        self.store.set_meta("engine_pid", str(os.getpid()))
        self.store.append_event(None, "engine_started", pid=os.getpid(), version=__version__)
        branch_names.migrate(self)  # branches `agent/NAME` of earlier versions become `agent/NAME/work`
        rebuild.at_start(self)  # agents whose records the store lacks, from their panes and worktrees
        self.contracts.load()  # every stored contract checked against its digest; the guard's files written
        self.watcher.adopt()
        try:
            self.ingest_spool()
        except Exception as exc:  # what an agent left in its spool never keeps the engine from starting
            log.exception("reading the hook spools failed")
            self.store.append_event(None, "spool_unreadable", error=repr(exc))
        for service in self.services:
            service.start()
        for agent in self.store.agents():
            self.ready_socket(agent)
        self.control.listen(self.paths.engine_socket)
        self.control.serve_in_thread()
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
            self._ending[name] += 1
        try:
            with self.agent_lock(name):
                yield
        finally:
            with self._locks_guard:
                self._ending[name] -= 1
                if not self._ending[name]:
                    del self._ending[name]

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
        caller = callers.identify(peer, self.store.agents(), method)
        callers.check(caller, peer, method, params)
        handler = next((getattr(owner, f"op_{method}") for owner in (self, *self.services)
                        if hasattr(owner, f"op_{method}")), None)
        if handler is None:
            raise UsageError(f"unknown request {method!r}")
        check_params(method, handler, params)
        if method in callers.CALLER_METHODS:
            params = {**params, "_caller": caller}
        try:
            return handler(**params)
        except TypeError as exc:
            if "argument" not in str(exc):
                raise
            raise UsageError(f"bad parameters for {method}: {exc}") from None

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
        view["screen"] = self._last_screen(agent, 15)
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

    def op_unwritten(self, name: str) -> dict[str, Any]:
        """Bring the agent's live screen up to this moment (`supervisor log` then reads the files): the lines
        that scrolled off its screen since the watcher last looked, and the screen itself. Nothing is committed
        here: the watcher counts the errors among the lines it commits."""
        agent = self.get(name)
        info = None if self.transcripts.ended(name) else self.panes.own(agent)
        if info is not None:
            screen, taken = self.look_at(agent, info)
            if screen is not None:
                self.transcripts.show(name, info.pane, info.history, screen, agent.profile, taken, info.history_limit)
        return {"name": name}

    def op_screen(self, name: str, history: int = 0, ansi: bool = False) -> dict[str, Any]:
        """The agent's pane as it is now (with `history` lines of scrollback, colours with `ansi`)."""
        text = self.panes.capture(self.get(name), history=history, ansi=ansi)
        return {"name": name, "text": text or "", "available": text is not None}

    def op_diffstat(self) -> dict[str, dict[str, int]]:
        """Per agent: files changed and lines added/removed in its worktree against its base commit (commits,
        uncommitted edits, new files), recomputed only for agents whose branch, worktree or pane moved."""
        printed = {name: live.last_output for name, live in list(self.live.items())}
        return self.branches.diffstats(self.store.agents(), printed)

    def op_attach_info(self, name: str) -> dict[str, Any]:
        info = self.panes.own(self.get(name))
        if info is None:
            raise SupervisorError(f"{name} has no pane to attach to",
                                  hint=f"`supervisor restart {name}` starts it again")
        return {"pane": info.pane, "session": info.session, "socket": str(self.paths.tmux_socket)}

    def get(self, name: str) -> Agent:
        agent = self.store.get_agent(name)
        if agent is None:
            raise unknown_agent(name, [a.name for a in self.store.agents()])
        return agent

    def screen_tail(self, agent: Agent, count: int = 15) -> list[str]:
        """The last non-blank lines of the agent's screen (evidence for events and alerts). The watcher's
        last capture serves when there is one: the screen has not changed since (its output did not grow)."""
        live = self.live.get(agent.name)
        lines = tail_lines(live.screen, count * 2) if live is not None and live.screen is not None else \
            self._last_screen(agent, count * 2)
        return [line for line in lines if line.strip()][-count:]

    def _last_screen(self, agent: Agent, count: int) -> list[str]:
        return tail_lines(self.panes.capture(agent) or "", count)

    # state --------------------------------------------------------------------------------------------

    def set_state(self, agent: Agent, state: State, event: str | None = None, **data: Any) -> None:
        """Change an agent's state and record the transition (the caller holds the agent's lock)."""
        now = time.time()
        previous = agent.state
        agent.state = state
        agent.state_since = now
        if state not in (State.WAITING, State.LIMITED):
            agent.waiting_reason = None  # whatever path leaves `waiting`: a reason shown later would be stale
        self.limits.changed(agent, previous, state, data.get("reason"), data.get("screen") or [])
        live = self.live.get(agent.name)
        if live is not None and live.last_output:
            agent.last_activity_at = live.last_output
        self.store.save_agent(agent, event or "state", previous=str(previous), state=str(state), **data)
        if previous.live and not state.live:
            self.close_socket(agent.name)  # it ended: nothing speaks for it any more
        log.debug("%s: %s -> %s %s", agent.name, previous, state, data or "")  # the event log has it all

    # start --------------------------------------------------------------------------------------------

    def op_start(
        self,
        name: str,
        task: str | None = None,
        command: str | None = None,
        profile: str | None = None,
        base: str = "HEAD",
        wait: bool = True,
        contract: str | None = None,
        contract_path: str | None = None,
        best_of: int | None = None,
        isolation: str | None = None,
    ) -> dict[str, Any]:
        validate_name(name)
        if "." in name:
            raise UsageError("a session name cannot contain '.'", hint="helpers are started with `supervisor helper`")
        self.reload_config_if_changed()
        config = load_config(self.paths.root)  # refuse a broken file now, before anything starts
        terms = parse_contract(contract, contract_path or "SESSION.md") if contract is not None else \
            default_session_contract(self.paths.root)
        isolation = isolation_valid(isolation)
        if best_of is None:
            agent = self.new_session(name, task, command, profile, base, config)
            isolation_choice(agent, isolation)
            return self.create(agent, terms, config, wait=wait)
        return self._start_best_of(name, best_of, task, command, profile, base, config, terms, wait, isolation)

    def _start_best_of(self, name: str, count: int, task: str | None, command: str | None, profile: str | None,
                       base: str, config: Config, terms: Contract, wait: bool,
                       isolation: str | None = None) -> dict[str, Any]:
        """N sessions NAME-1 … NAME-N on the same task, from the same commit (`compare` shows them side by
        side; merging one removes the others)."""
        if not 2 <= count <= MAX_BEST_OF:
            raise UsageError(f"--best-of takes 2 to {MAX_BEST_OF} sessions, not {count}")
        if not task:
            raise UsageError("--best-of needs a task: the same one is given to every candidate")
        names = [f"{name}-{i}" for i in range(1, count + 1)]
        for candidate in names:
            validate_name(candidate)
            if self.store.get_agent(candidate) is not None:
                raise UsageError(f"an agent named {candidate!r} already exists",
                                 hint=f"pick another name, or `supervisor rm {candidate}` first")
        base_commit = worktrees.resolve(self.paths.root, base)  # one commit for all, even if HEAD moves
        started = []
        for candidate in names:
            agent = self.new_session(candidate, task, command, profile, base, config)
            agent.base = base_commit
            agent.extra["best_of"] = name
            isolation_choice(agent, isolation)
            started.append(self.create(agent, terms, config, wait=wait))
        return {"name": name, "candidates": started}

    def new_session(self, name: str, task: str | None, command: str | None, profile: str | None, base: str,
                    config: Config, *, queued: bool = False) -> Agent:
        """A level-1 agent's record (not stored yet). A queued one gets its base commit when it starts."""
        chosen = get_profile(profile or (profile_for(command) if command else config.agent.profile))
        line = command or (config.agent.command if chosen.name == config.agent.profile else None)
        line = line or DEFAULT_COMMANDS.get(chosen.name)
        if not line:
            raise UsageError(f"profile {chosen.name} needs a command", hint="pass --command or set agent.command")
        root = self.paths.root
        base_commit = "" if queued else worktrees.resolve(root, base)
        if base == "HEAD":
            target = worktrees.current_branch(root) or worktrees.resolve(root, base)
        else:
            target = base if queued or worktrees.branch_exists(root, base) else base_commit
        now = time.time()
        return Agent(
            name=name, profile=chosen.name, command=line, worktree=str(self._worktree_path(config, name)),
            branch=agent_branch(name), base=base_commit, target=target, task=task,
            state=State.QUEUED if queued else State.STARTING, state_since=now, started_at=0.0 if queued else now,
            port=None if queued else self.free_port(),
        )

    def create(self, agent: Agent, terms: Contract, config: Config, *, wait: bool = True,
               admit: Callable[[], None] | None = None, admission: threading.Lock | None = None) -> dict[str, Any]:
        """Make the agent's worktree (SESSION.md, guard, setup), launch it and deliver its task.

        `admit` runs under `admission` right before the agent's row is added (a parent's helper count is
        checked there, so two concurrent spawns cannot both take its last place)."""
        name = agent.name
        with_terms(agent, terms, self.contracts.seal)
        with self.agent_lock(name):  # held from the first row on, so the watcher never sees it half-made
            with admission or contextlib.nullcontext():
                if admit is not None:
                    admit()
                self.store.add_agent(agent)  # atomic: a second start of the same name stops here
            try:
                self._make_worktree(agent)
            except SupervisorError:
                self.store.delete_agent(name)  # nothing was created: leave no trace but the event
                raise
            self._bring_up(agent, config, wait=wait)
        agent = self.get(name)
        if agent.state == State.FAILED:
            raise SupervisorError(f"{name} failed to start: {agent.reason}",
                                  hint=f"`supervisor show {name}` has the details; `supervisor rm {name}` clears it")
        return views.agent_view(agent, self.live.get(name))

    def start_queued(self, name: str) -> None:
        """Start a `queued` agent (a plan's session whose turn came): its branch forks from its target's
        tip now, so it begins with the work merged before it."""
        config = load_config(self.paths.root)
        with self.agent_lock(name):
            agent = self.get(name)
            if agent.state != State.QUEUED:
                return
            try:
                agent.base = worktrees.resolve(self.paths.root, agent.target)
                agent.port = self.free_port()
                agent.started_at = time.time()
                self.set_state(agent, State.STARTING, "dequeued", base=agent.base)
                self._make_worktree(agent)
            except SupervisorError as exc:
                agent.reason = f"could not start: {exc.message}"
                self.set_state(agent, State.FAILED, "failed", reason=agent.reason)
                return
            self._bring_up(agent, config, wait=False)

    def _make_worktree(self, agent: Agent) -> None:
        worktree = Path(agent.worktree)
        owner = self.store.get_agent(agent.parent) if agent.parent else None
        if owner is not None:  # a helper's, in its parent's `.sub-agents/`: not through a link the parent planted
            inside(Path(owner.worktree), worktree)
        worktrees.ensure_excludes(self.paths.common_dir)
        worktrees.add_worktree(self.paths.root, worktree, agent.branch, agent.base)
        agent.extra[worktrees.GIT_DIR_KEY] = worktrees.git_dir_at_creation(worktree)
        self.store.append_event(agent.name, "worktree_created", worktree=str(worktree), branch=agent.branch,
                                base=agent.base)

    def _bring_up(self, agent: Agent, config: Config, *, wait: bool) -> None:
        """Contract, guard and setup in the new worktree; launch; deliver the task (the caller holds the lock)."""
        worktree = Path(agent.worktree)
        write_contract(worktree, agent.extra["contract"])
        install_guard(self.paths.common_dir, worktree, self.paths.state_dir / "hooks")
        self._setup_worktree(agent, config)
        self._launch(agent, resume=False)
        task = agent.task
        if task and agent.state.live:
            self.live[agent.name].pending_prompt = True  # the watcher keeps it `starting` until delivered
            if wait:
                self._deliver_first_prompt(agent.name, task)
            else:
                threading.Thread(target=self._deliver_quietly, args=(agent.name, task), daemon=True).start()

    def _worktree_path(self, config: Config, name: str) -> Path:
        return Path(os.path.normpath(config.worktrees.dir / agent_file_name(name)))

    def free_port(self) -> int:
        used = {a.port for a in self.store.agents()}
        port = PORT_BASE
        while port in used:
            port += PORT_BLOCK
        return port

    def _setup_worktree(self, agent: Agent, config: Config) -> None:
        """Run `worktrees.setup` in the new worktree; a failing command fails the agent with its output."""
        env = {**self.agents_env, **agent_identity(self.paths, agent), "TERM": "dumb"}
        for command in config.worktrees.setup:
            done = subprocess.run(command, shell=True, cwd=agent.worktree, env=env, capture_output=True,
                                  text=True, check=False, stdin=subprocess.DEVNULL)
            output = tail_lines((done.stdout or "") + (done.stderr or ""), 5)
            self.store.append_event(agent.name, "setup", command=command, exit_code=done.returncode,
                                    output=output)
            if done.returncode != 0:
                agent.reason = f"setup command `{command}` exited {done.returncode}: {' / '.join(output)}"
                self.set_state(agent, State.FAILED, "failed", reason=agent.reason)
                return

    def _launch(self, agent: Agent, *, resume: bool) -> bool:
        """Start the agent's command in its pane (the caller holds the agent's lock); with `resume`, in its own
        conversation, by the id recorded of it, where its CLI can. Returns whether it was resumed so: if not,
        it begins a new conversation, and its task is for the caller to give again."""
        if agent.state == State.FAILED and not resume:
            return False  # setup failed
        profile = get_profile(agent.profile)
        missing = _missing_program(agent.command, Path(agent.worktree))
        if missing:
            agent.reason = f"command not found: {missing}"
            self.set_state(agent, State.FAILED, "failed", reason=agent.reason)
            return False
        profile.prepare_worktree(self.paths.root, Path(agent.worktree), Path.home(), hook_command())
        self.tmux.ensure_server()
        state = self.paths.agent_state(agent.name)
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        if agent.extra.pop("pending_task", None):
            resume = False  # its first task never went in (a dialog held it): afresh, and the caller gives it
        known = valid(agent.extra.get("session_id"))
        if resume and known is None:  # a CLI that keeps it in its files, stopped before the watcher read them
            known = valid(profile.find_session(state, Path(agent.worktree), agent.started_at))
        session = known if resume else None
        resumed = profile.resume_line(agent.command, session, state) if resume else None
        if resumed is None:
            agent.extra.pop("session_id", None)  # a new conversation: its id is told (or found) anew
        elif session is not None:
            agent.extra["session_id"] = session
        command = resumed or agent.command
        stagger = self.config.agent.stagger if profile.name == self.config.agent.profile else profile.stagger
        self._gate.wait(profile.name, stagger)
        self.contracts.publish(agent)  # what its commit guard reads
        unmade = self.open_socket(agent.name)  # before its first process: its hooks talk through it
        if unmade is not None and self.host.isolation_of(agent) != NO_ISOLATION:
            agent.reason = (f"not started: its own socket to the engine could not be made at "
                            f"{self.paths.agent_socket(agent.name)} ({unmade})")
            self.set_state(agent, State.FAILED, "failed", reason=agent.reason)
            return False
        # Without a sandbox it runs all the same, known by its lineage alone (your socket is within its reach
        # anyway, and judged so): a full or read-only runtime folder does not stop all work. It is never told
        # your socket: its commands say its own is gone, and the `socket_unavailable` event says why.
        env = agent_identity(self.paths, agent)
        env.update(profile.prepare_state(state, Path.home(), self.paths.root, Path(agent.worktree)))
        panes = self.tmux.list_panes()
        own = self.panes.own(agent, panes)  # respawned only into its own pane, never one of a new server
        if own is not None:
            self.end_transcript(agent)  # what its last run left on screen, if nobody wrote it yet
        try:
            launched = self.host.launch(agent, command, env, own, panes)
        except CannotIsolate as exc:
            agent.reason = f"not started: {exc.message}; {exc.hint}"
            self.set_state(agent, State.FAILED, "failed", reason=agent.reason)
            return False
        ref, agent.pid, history = launched.ref, launched.pid, launched.history
        if launched.unconfined:
            log.warning("%s: %s", agent.name, launched.unconfined)
            self.store.append_event(agent.name, "cgroup_join_failed", why=launched.unconfined)
        place(agent, ref)
        self.transcripts.begin(agent.name, ref.server, ref.pane, history)
        now = time.time()
        for stale in ("restart_at", "timing_out", "escaped", "deadlock", "gave_up", undelivered.MARK, RESTORABLE):
            agent.extra.pop(stale, None)
        agent.started_at = now
        agent.exit_code = None
        agent.reason = None
        agent.waiting_reason = None
        self.live[agent.name] = Live(last_output=0.0, launched_at=now, replaying=resumed is not None,
                                     session_id=session if resumed is not None else None)
        agent.extra[ISOLATED] = launched.isolation
        self.set_state(agent, State.STARTING, "launched", pane=agent.pane, pid=agent.pid, command=command,
                       isolation=launched.isolation)
        return resumed is not None

    def _deliver_quietly(self, name: str, task: str) -> None:
        """The start task's thread: whatever fails is logged, never a thread dying in silence (a delivery
        failure already left the agent waiting with its task marked undelivered)."""
        try:
            self._deliver_first_prompt(name, task)
        except SupervisorError as exc:
            log.warning("%s: %s", name, exc)
        except Exception as exc:
            log.exception("%s: delivering its task failed", name)
            with contextlib.suppress(Exception), self.agent_lock(name):
                agent = self.get(name)
                if agent.state.live and undelivered.MARK not in agent.extra:
                    undelivered.hold(self, agent, DeliveryError(f"{type(exc).__name__}: {exc}"),
                                     alive=self.panes.alive(agent))

    def _deliver_first_prompt(self, name: str, task: str) -> None:
        with self.agent_lock(name):
            agent = self.get(name)
            try:
                try:
                    dialog = self._wait_ready(agent)
                    if dialog is None:
                        self._deliver(agent, task, "task_delivered")
                        return
                except DialogShown as shown:
                    dialog = shown.dialog
                except DeliveryError as exc:
                    raise undelivered.hold(self, agent, exc, alive=self.panes.alive(agent)) from None
                self._hold_for_dialog(agent, task, dialog)
            finally:
                live = self.live.get(name)
                if live is not None:
                    live.pending_prompt = False

    def _hold_for_dialog(self, agent: Agent, task: str, dialog: Reading) -> None:
        """A dialog before the prompt (workspace trust, a notice): a human answers it first, and the task goes
        in once the prompt shows (the watcher delivers it)."""
        agent.extra["pending_task"] = task
        agent.waiting_reason = dialog.reason
        screen = self.screen_tail(agent)
        with self.store.transaction():
            self.set_state(agent, State.WAITING, "task_pending", rule=dialog.rule, reason=dialog.reason)
            fire(self.store, agent, Trigger.WAITING, f"waiting before its first prompt: {dialog.reason}",
                 screen=screen, rule=dialog.rule, reason=dialog.reason)

    def deliver_pending(self, name: str) -> None:
        """What waited for the agent's prompt (run off the watcher's thread): the first prompt that waited
        for a dialog to be answered, then the messages that arrived while it worked."""
        with self.agent_lock(name):
            agent = self.get(name)
            task = agent.extra.pop("pending_task", None)
            inbox = agent.extra.pop("inbox", None) or []
            if not (task or inbox) or not agent.state.live:
                return
            self.store.save_agent(agent)
            try:
                if task:
                    try:
                        self._deliver(agent, str(task), "task_delivered")
                    except DialogShown as shown:  # another dialog came first: it waits for a human too
                        if inbox:
                            agent.extra["inbox"] = inbox
                        self._hold_for_dialog(agent, str(task), shown.dialog)
                        return
                if inbox:
                    if task:
                        self._wait_ready(agent)
                    try:
                        self._deliver(agent, "\n\n".join(str(item) for item in inbox), "messages_delivered")
                    except DialogShown:  # a dialog took the screen first: they wait for the next prompt
                        agent.extra["inbox"] = [*inbox, *(agent.extra.get("inbox") or [])]
                        self.store.save_agent(agent, "inbox", items=len(agent.extra["inbox"]))
            except SupervisorError as exc:
                log.warning("%s: %s", name, exc)

    def tell(self, name: str, text: str) -> None:
        """Put `text` in front of the agent at its next prompt (at once when it sits at its prompt now)."""
        with self.agent_lock(name):
            agent = self.get(name)
            inbox = [*(agent.extra.get("inbox") or []), text]
            agent.extra["inbox"] = inbox
            self.store.save_agent(agent, "inbox", items=len(inbox))
            idle = agent.state == State.IDLE
        if idle:
            threading.Thread(target=self.deliver_pending, args=(name,), daemon=True).start()

    def _dialog_on_screen(self, agent: Agent) -> Reading | None:
        reading = get_profile(agent.profile).read(self.panes.capture(agent) or "")
        return reading if reading.verdict == Verdict.WAITING else None

    def _wait_ready(self, agent: Agent) -> Reading | None:
        """Wait until the freshly launched CLI shows its input prompt (or, for an unknown CLI, goes quiet).
        Returns the reading of a dialog that needs a human first, if one shows instead."""
        assert agent.pane is not None
        profile = get_profile(agent.profile)
        state: dict[str, Any] = {"seen": None, "since": time.monotonic()}

        dialog: dict[str, Reading] = {}

        def ready() -> bool:
            info = self.panes.own(agent)
            if self._ending[agent.name] or info is None or info.dead:
                return True
            screen = self.tmux.capture(info.pane, history=1)  # a line scrolling off changes it too
            reading = profile.read(screen)
            if reading.verdict == Verdict.WAITING:
                dialog["seen"] = reading
                return True
            if screen != state["seen"]:
                state["seen"], state["since"] = screen, time.monotonic()
            quiet = time.monotonic() - state["since"]
            # Not SessionStart: a CLI reports in before its input box takes keys.
            verdict = profile.ready(screen)
            if verdict is not None:
                return verdict and quiet >= max(READY_QUIET, profile.ready_settle)
            # A screen we cannot read yet: a CLI we can read is ready only at its prompt (its banner comes
            # first), unless its screen changed beyond recognition (a new version): then long quiet will do.
            return bool(screen.strip()) and quiet >= (UNRECOGNISED_QUIET if profile.screen is not None else 0.5)

        if not wait_for(ready, READY_TIMEOUT, interval=0.1):
            raise DeliveryError(f"{agent.name} did not show its input prompt within {READY_TIMEOUT:.0f}s",
                                hint=f"`supervisor attach {agent.name}` to see why")
        if self._ending[agent.name]:
            raise SupervisorError(f"{agent.name} was stopped before its input prompt showed")
        if "seen" in dialog and self.panes.alive(agent):
            return dialog["seen"]
        if not self.panes.alive(agent):
            self.watcher.check_now(agent)
            current = self.get(agent.name)
            raise SupervisorError(f"{agent.name} ended before it was ready: {current.reason or current.state}",
                                  hint=f"`supervisor log {agent.name}` shows its output")
        live = self.live.get(agent.name)
        if live is not None:
            live.ready = True
        return None

    def _deliver(self, agent: Agent, text: str, event: str) -> None:
        """Type `text` into the agent and submit it (`event`: what it was). A task that cannot be delivered
        leaves the agent waiting for a human (see `undelivered`)."""
        live = self.live.get(agent.name)
        if live is not None and not (live.ready or live.adopted) and agent.state in (State.STARTING, State.IDLE) \
                and get_profile(agent.profile).screen is not None:
            # Nothing was typed into it since it was launched: its input box may not take keys yet (restarted,
            # or just past a dialog that restarted it).
            dialog = self._wait_ready(agent)
            if dialog is not None:
                raise DialogShown(dialog)
        since = time.time()
        hooked = live is not None and get_profile(agent.profile).hooks
        try:
            info = self.panes.own(agent)
            if info is None or info.dead:
                raise DeliveryError("its pane is gone", hint=f"`supervisor restart {agent.name}` starts it again")
            profile = get_profile(agent.profile)
            deliver(self.tmux, info.pane, text, pane_alive=lambda: self.panes.alive(agent),
                    repaste=agent.state != State.WORKING and profile.repaste, timeout=profile.echo_timeout,
                    submitted=(lambda: live is not None and live.prompted_at >= since) if hooked else None,
                    dialog=lambda: self._dialog_on_screen(agent), settle=profile.paste_settle)
        except DialogShown:
            self.store.append_event(agent.name, "delivery_held", text=text[:200])
            raise
        except DeliveryError as exc:
            self.store.append_event(agent.name, "delivery_failed", error=str(exc), text=text[:200])
            if event == "task_delivered":
                raise undelivered.hold(self, agent, exc, alive=self.panes.alive(agent)) from None
            raise SupervisorError(f"{agent.name}: {exc}", hint=exc.hint) from None
        undelivered.release(self, agent)
        if live is not None:
            live.last_output = live.last_progress = time.time()
            live.replaying = False
            if live.hook_state is not None:
                # It has a prompt now: working until its hooks say otherwise (UserPromptSubmit may lag).
                live.hook_state, live.hook_reason = State.WORKING, None
        self.set_state(agent, State.WORKING, event, text=text[:200])

    # hooks, reports --------------------------------------------------------------------------------------

    def op_hook(self, event: dict[str, Any], at: float | None = None, key: str | None = None,
                _caller: Agent | None = None) -> dict[str, Any]:
        """An agent CLI's hook event. Never waits on the agent's lock: the CLI is blocked until we answer.
        `at`: when the hook ran; `key`: the event's id, also in its spooled copy if this answer comes late."""
        agent = _caller
        if agent is None:
            raise SupervisorError("hook events come from inside an agent's pane")
        if not self.hooks_once.claim(key):
            return {}  # its spooled copy was read first: the hook gave up waiting for this answer
        try:
            self._apply_hook(agent, event, ran_at(at, time.time()), key)
        except BaseException:
            self.hooks_once.release(key)
            raise
        name = event.get("hook_event_name")
        if name == "PreToolUse" and self.config.approval.require:
            pattern = required(self.config.approval.require, tool_summary(event))
            if pattern is None and unjudged(event):
                pattern = "any tool call too large to check"  # never let it through unchecked
            if pattern is not None:
                self.store.append_event(agent.name, "approval_required", request=tool_summary(event), rule=pattern)
                return {"output": ask_answer(pattern)}
        if name == "PermissionRequest":
            return self.approvals.answer_hook(agent.name, tool_summary(event), self.config.approval.timeout)
        return {}

    def _apply_hook(self, agent: Agent, event: dict[str, Any], at: float, key: object, decide: bool = True) -> None:
        """Record the event (with its id: that makes it applied) and let it decide the agent's state (`decide`
        false: the watcher's next look does, as for spooled events, which are all applied first: a limit told
        with the turn that came after it is then never taken for a limit that holds)."""
        reading = read_hook(event)
        self.store.append_event(agent.name, "hook", **brief(event), **({"key": key} if isinstance(key, str) else {}))
        self.hooks_once.recorded(key)
        live = self.live.get(agent.name)
        if live is not None:
            session = told_session(get_profile(agent.profile).hooks, live.session_id, event)
            if session is not None:
                live.session_id = session  # kept in the agent's record by the watcher (`restart` resumes it)
        self.usage.note_hook(agent.name, event)  # its transcript, and a turn's end: read its usage now
        if live is None or reading.state is None:
            return
        if reading.event == "UserPromptSubmit":
            live.prompted_at = max(live.prompted_at, at)  # a delivery waits for this
        if reading.state in (State.WORKING, State.WAITING) or reading.event == "Stop":
            live.worked_at = max(live.worked_at, at)  # a turn ran: a limit told before it is over (engine/limits.py)
        if reading.event == "StopFailure" and event.get("error") == "rate_limit":  # its turn ended on a limit
            self.limits.noticed(live, str(event.get("last_assistant_message") or "rate limit"), at)
        if at < live.last_hook:
            return  # a late arrival (from the spool, or a slow hook process): a newer event already decided
        if event.get("notification_type") == "permission_prompt" and live.reading.verdict != Verdict.WAITING:
            return  # sent seconds after a permission dialog opens: with none on the screen, it was answered
        live.last_hook = at
        live.last_progress = max(live.last_progress, at)
        live.hook_state = live.turns.read(reading.event, reading.state)  # None: a queued prompt's turn runs
        live.hook_reason = reading.reason if live.hook_state is not None else None
        if not decide:
            return
        lock = self.try_agent_lock(agent.name)
        if lock is None:
            return  # the watcher applies it on its next tick
        try:
            self.watcher.decide_now(agent.name)
        finally:
            lock.release()

    def ingest_spool(self) -> None:
        """Hook events `supervisor hook` spooled into agents' runtime folders, in order: while no engine ran, or
        when this one answered too late (the hook gives up after a few seconds rather than hold the agent up)."""
        self.spools.ingest(self.store, self.hooks_once, functools.partial(self._apply_hook, decide=False))

    def ingest_spool_if_changed(self) -> None:
        """Each tick: one stat per agent's spool folder while nothing new is in them."""
        self.spools.ingest(self.store, self.hooks_once, functools.partial(self._apply_hook, decide=False),
                           changed_only=True)

    def op_approve(self, name: str, reason: str | None = None, always: bool = False, by: str = "cli") -> dict[str, Any]:
        return self.answer(name, True, reason, always=always, by=_answerer(by))

    def op_deny(self, name: str, reason: str | None = None, by: str = "cli") -> dict[str, Any]:
        return self.answer(name, False, reason, by=_answerer(by))

    def op_approvals(self, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return self.approvals.history(name, limit)

    def answer(self, name: str, allowed: bool, reason: str | None, by: str = "cli",
               always: bool = False) -> dict[str, Any]:
        """Answer what the agent waits for: its held hook request, else the dialog on its screen. `always`: the
        human allows more than this one call (the dialog's "always" / "for this session" option)."""
        agent = self.get(name)
        verb = "approved" if allowed else "denied"
        if always and self.approvals.pending(name) is not None:
            raise SupervisorError(f"{name}'s request is held by its hook, which allows one call at a time",
                                  hint=f"`supervisor approve {name}` allows this call; answer it in the pane "
                                       f"(`supervisor attach {name}`) to allow it for the session")
        held = self.approvals.decide(name, allowed, reason, by=by)
        if held is not None:
            self.store.append_event(name, verb, request=held.request, reason=reason, via="hook", by=by)
            return {"name": name, "answered": verb, "request": held.request, "via": "hook"}
        with self.agent_lock(name):
            agent = self.get(name)
            profile = get_profile(agent.profile)
            screen = self.panes.capture(agent) if agent.state.live else ""
            if screen is None:
                raise SupervisorError(f"{name}'s pane is gone: there is no dialog to answer",
                                      hint=f"`supervisor restart {name}` starts it again")
            # The dialog may be on screen a moment before the watcher's next tick says `waiting`: what the
            # screen shows now decides.
            if profile.read(screen).verdict != Verdict.WAITING:
                if agent.state != State.WAITING:
                    raise self.approvals.nothing_to_answer(agent)
                if profile.answer_keys(screen, allowed) is None:
                    # Waiting as last seen, and no dialog on the screen (yet): a request an engine held before a
                    # restart comes back as the CLI's own dialog; a state read before the restart may be stale.
                    found = await_dialog(lambda: self.panes.capture(agent) or "", profile, allowed, DIALOG_WAIT)
                    if found is None:
                        raise self.approvals.nothing_to_answer(agent)
                    screen = found
            how = answering.plan(profile, screen, allowed, always=always)
            if how is None and always:
                raise SupervisorError(f"{name}'s dialog has no option that allows it always or for the session",
                                      hint=f"`supervisor approve {name}` allows this one call")
            if how is None:  # it stays waiting, with its question
                raise SupervisorError(f"cannot tell which option of {name}'s dialog means {verb!r}: it offers "
                                      f"{offers(screen)}", hint=f"answer it in the pane: `supervisor attach {name}`")
            failed = answering.carry_out(how, lambda *keys: self.panes.send_keys(agent, *keys),
                                         lambda: self.panes.capture(agent) or "")
            if failed is not None:
                raise SupervisorError(f"{name}'s dialog cannot be answered: {failed}",
                                      hint=f"`supervisor attach {name}`")
            keys = " ".join([*how.moves, how.key, *how.then])
            if not wait_for(lambda: profile.answer_taken(screen, self.panes.capture(agent) or ""), 5.0):
                raise SupervisorError(f"{name}'s dialog did not take the answer", hint=f"`supervisor attach {name}`")
            self.store.append_event(name, verb, request=agent.waiting_reason, reason=reason, via="screen",
                                    keys=keys, by=by, **({"always": True} if always else {}))
            if not allowed and reason:  # the agent hears why, as its next instruction
                self._wait_ready(agent)
                self._deliver(agent, reason, "sent")
            return {"name": name, "answered": verb, "request": agent.waiting_reason, "via": "screen"}

    def op_report(self, waiting_for: list[str] | None = None, _caller: Agent | None = None) -> dict[str, Any]:
        """An agent says whom it waits for (deadlock detection reads these)."""
        if _caller is None:
            raise SupervisorError("report comes from inside an agent's pane")
        with self.agent_lock(_caller.name):
            agent = self.get(_caller.name)
            agent.extra["waiting_for"] = sorted(set(waiting_for or []))
            self.store.save_agent(agent, "report", waiting_for=agent.extra["waiting_for"])
            return views.agent_view(agent, self.live.get(agent.name))

    # timeouts, interrupts, restarts ---------------------------------------------------------------------

    def timeout_of(self, agent: Agent) -> float | None:
        override = agent.extra.get("timeout")
        if override:
            return float(override)
        limits = self.config.limits
        return limits.session_timeout if agent.parent is None else limits.helper_timeout

    def descendants(self, name: str) -> list[Agent]:
        """The agent's helpers and theirs, deepest first."""
        found = [a for a in self.store.agents() if a.name.startswith(name + ".")]
        return sorted(found, key=lambda a: -a.level)

    def family_to_end(self, name: str, left: Callable[[Agent], bool] = lambda a: a.state.live) -> Iterator[str]:
        """The names to end so that `name` ends with all its helpers: theirs deepest first, then `name`,
        then those still `left` (live, by default) once it has ended. A helper is started or restarted while
        its parent is live, and ending the parent takes seconds (the grace of a stop, the wait for its
        pane), so one started in that time would outlive it. Listed under `admission` once the parent has
        ended, every helper let in is seen, and no more are let in."""
        yield from (a.name for a in self.descendants(name))
        yield name
        for _round in range(10):  # a round ends what its own helpers let in meanwhile; one round is the rule
            with self.admission:
                late = [a.name for a in self.descendants(name) if left(a)]
            if not late:
                return
            yield from late

    def kill_for_timeout(self, name: str, timeout: float) -> None:
        """`timeout`: kill the agent's tree and its helpers' trees; state killed."""
        self.get(name)
        for member in self.family_to_end(name):
            with self.ending(member):
                current = self.get(member)
                if not current.state.live:
                    continue
                why = f"timed out after {format_duration(timeout)}" if current.name == name else \
                    f"its parent {name} timed out"
                self._end(current, grace=0.0, why=why)
                current.reason = why
                screen = self.screen_tail(current) if current.name == name else []
                with self.store.transaction():
                    self.set_state(current, State.KILLED, "killed", reason=current.reason)
                    if current.name == name:
                        fire(self.store, current, Trigger.TIMEOUT, current.reason, screen=screen)

    def interrupt(self, agent: Agent) -> None:
        if self.panes.send_keys(agent, "C-c"):
            self.store.append_event(agent.name, "interrupted", why="on_stall")

    def restart_quietly(self, name: str) -> None:
        try:
            self.op_restart(name)
        except SupervisorError as exc:
            log.warning("%s: restart failed: %s", name, exc)

    def relaunch(self, agent: Agent, reason: str) -> None:
        """Start an ended agent again in its pane (the caller holds its lock). A helper is not started when
        its parent is not live or already has its Max helpers live: a `not_restarted` event says why, and
        `exited` alerts, as for any agent that will not be restarted."""
        with self._admission_of(agent):
            refusal = self._restart_refusal(agent)
            if refusal is not None:
                agent.reason = f"{agent.reason or 'exited'}; not restarted: {refusal[0]}"
                with self.store.transaction():
                    self.store.save_agent(agent, "not_restarted", why=refusal[0], policy=reason)
                    fire(self.store, agent, Trigger.EXITED, agent.reason, exit_code=agent.exit_code)
                return
            self._relaunch(agent, reason)

    def _relaunch(self, agent: Agent, reason: str) -> None:
        agent.restarts += 1
        fresh = (agent.extra.get("restart") or self.config.limits.restart) == "always"
        self.store.append_event(agent.name, "restarting", why=reason, restarts=agent.restarts)
        if not self._launch(agent, resume=not fresh):
            self.give_task_again(agent)

    def give_task_again(self, agent: Agent) -> None:
        """A new conversation knows nothing yet: it gets its task again (a swarm's "claim your next job", an agent
        whose CLI could not resume its own), once its prompt shows (the caller holds its lock)."""
        if agent.task and agent.state.live:
            self.live[agent.name].pending_prompt = True
            threading.Thread(target=self._deliver_quietly, args=(agent.name, agent.task), daemon=True).start()

    # send, stop, restart, rm --------------------------------------------------------------------------

    def op_send(self, name: str, text: str) -> dict[str, Any]:
        with self.agent_lock(name):
            agent = self.get(name)
            if not agent.state.live or agent.pane is None:
                raise SupervisorError(f"{name} is {agent.state}; there is nothing to type into",
                                      hint=f"`supervisor restart {name}` starts it again")
            self._deliver(agent, text, "sent")
            return views.agent_view(agent, self.live.get(name))

    def op_stop(self, name: str, kill: bool = False) -> dict[str, Any]:
        """Stop the agent and all its helpers (deepest first, so none outlives its parent)."""
        self.stop_tree(name, "killed on request" if kill else "stopped on request", kill=kill)
        return views.agent_view(self.get(name), self.live.get(name))

    def stop_tree(self, name: str, reason: str, kill: bool = False) -> None:
        """Stop the agent (for `reason`) and all its helpers, as `supervisor stop` does."""
        self.get(name)
        for member in self.family_to_end(name):
            self._stop_one(member, kill, reason if member == name else f"its parent {name} was stopped")

    def _stop_one(self, name: str, kill: bool, reason: str) -> dict[str, Any]:
        with self.ending(name):
            agent = self.get(name)
            if agent.state.live:
                self._end(agent, grace=0.0 if kill else self.config.limits.stop_grace, why=reason)
                final = State.KILLED if kill else State.STOPPED
                agent.reason = reason
                self.set_state(agent, final, "killed" if kill else "stopped", reason=agent.reason)
            elif agent.state == State.QUEUED:  # never started: it stays out of its plan's way
                agent.reason = "stopped before it started"
                self.set_state(agent, State.STOPPED, "stopped", reason=agent.reason)
            elif agent.state == State.EXITED and any([agent.extra.pop("restart_at", None),
                                                      agent.extra.pop(RESTORABLE, None)]):
                # Waiting out its restart backoff, or its pane went with the tmux server (`restore --all` would
                # bring it back): a stop means it stays down.
                agent.reason = f"{agent.reason or 'exited'}; not restarted: {reason}"
                self.set_state(agent, State.STOPPED, "stopped", reason=agent.reason)
            self._end_state_holders(agent, grace=0.0)  # a daemon that outlived the CLI's own exit
            return views.agent_view(agent, self.live.get(name))

    def _end(self, agent: Agent, grace: float, why: str) -> None:
        """End the agent's whole process tree, and anything that escaped it carrying its socket (its own, unique to
        this repository's agent of that name, in SUPERVISOR_SOCKET); a request its
        hook held is dropped first (`why`), since no answer can reach it. The tree is the one its own pane runs
        now: a pid recorded before its tmux server died may be another's by now."""
        self.approvals.drop(agent.name, why)
        panes = self.tmux.list_panes()
        own = self.panes.own(agent, panes)
        survivors = self.host.end(agent, own, grace, agent.started_at)
        survivors += self._end_state_holders(agent, grace)
        if survivors:
            self.store.append_event(agent.name, "kill_incomplete", pids=survivors)
            raise SupervisorError(f"{agent.name}: processes {survivors} survived SIGKILL")
        if agent.pane:
            wait_for(lambda: not self.panes.alive(agent), 5.0)
            self.end_transcript(agent)

    def _end_state_holders(self, agent: Agent, grace: float) -> list[int]:
        """End what is left in the agent's cgroup, and what runs on the agent's own CLI state folder (a CLI's
        daemon, started in any earlier run of the agent, outside its pane's tree); the pids that survived."""
        left = end_confined(agent)
        variable = get_profile(agent.profile).state_env
        if variable is None:
            return left
        return left + kill_tree(None, grace, env_key=variable, env_value=str(self.paths.agent_state(agent.name)),
                         spare=self.tmux.keepers(self.tmux.list_panes()))

    def end_transcript(self, agent: Agent) -> None:
        """Close the transcript of the agent's run: the history lines it lacks, then the last screen. Done
        once per run, by whoever sees the end first (the watcher, a stop, a restart)."""
        if agent.pane is None or self.transcripts.ended(agent.name):
            return
        info = self.panes.own(agent)
        if info is None:  # gone before the watcher saw it go: its live screen, as last written, closes it
            self.transcripts.end(agent.name, agent.pane, None, 0, None)
            return
        screen, scrolled = self.look_at(agent, info)
        if screen is not None:
            self.transcripts.end(agent.name, info.pane, scrolled, info.history_limit, screen.splitlines(),
                                 info.history)

    def resync_transcript(self, agent: Agent, info: PaneInfo) -> None:
        """Before a look: when the pane's size changed since the transcript's last look (a user attached from
        another terminal), its history's rows moved; the transcript finds its place again by their text."""
        if not self.transcripts.resized(agent.name, info.server, info.pane, info.size):
            self.transcripts.sized(agent.name, info.pane, info.size)
            return
        try:
            grid = self.tmux.grid(info.pane, RESYNC_ROWS)
        except TmuxError:
            return
        if grid is not None:
            self.transcripts.resync(agent.name, info.pane, grid, info.size)

    def look_at(self, agent: Agent, info: PaneInfo) -> tuple[str | None, Scrolled | None]:
        """One pane's screen and the history lines its transcript lacks, taken together (None: gone)."""
        self.resync_transcript(agent, info)
        due = self.transcripts.due(agent.name, info.server, info.pane, info.history, info.history_limit)
        try:
            screens, scrolled = self.tmux.look([info.pane], {info.pane: due} if due else {})
        except TmuxError:
            return None, None
        return screens.get(info.pane), scrolled.get(info.pane)

    def op_restart(self, name: str) -> dict[str, Any]:
        with self.agent_lock(name):
            self.start_again(self.get(name), "restarted")
            agent = self.get(name)
            if agent.state == State.FAILED:
                raise SupervisorError(f"{name} failed to start: {agent.reason}")
            return views.agent_view(agent, self.live.get(name))

    def start_again(self, agent: Agent, verb: str) -> bool:
        """Start the agent again in its own worktree (ended first if it runs), in its own conversation where its
        CLI can resume it, else afresh with its task (the caller holds its lock). `verb`: what the human asked
        (`restarted`, `restored`), for the refusals. Returns whether its conversation was resumed."""
        name = agent.name
        with self._admission_of(agent):  # a helper's place under its parent is checked and taken at once
            refusal = self._restart_refusal(agent)
            if refusal is not None:
                raise SupervisorError(f"{name} cannot be {verb}: {refusal[0]}", hint=refusal[1])
            # Live or not: what its last run left (a tool that ignored the hangup when its tmux server died)
            # still holds its worktree and ports; a second copy is never started beside it.
            self._end(agent, grace=self.config.limits.stop_grace, why=f"it was {verb}")
            if not Path(agent.worktree).is_dir():
                raise SupervisorError(f"{name}'s worktree {agent.worktree} is gone; it cannot be {verb}")
            agent.restarts += 1
            agent.extra.pop("quick_exits", None)  # a human's restart starts the policy's count afresh
            agent.state = State.STARTING
            resumed = self._launch(agent, resume=True)
            if not resumed:
                self.give_task_again(agent)
            return resumed

    def _admission_of(self, agent: Agent) -> contextlib.AbstractContextManager[object]:
        """`admission` for a helper (its parent's count of live helpers changes), nothing for a session."""
        return self.admission if agent.parent is not None else contextlib.nullcontext()

    def _restart_refusal(self, agent: Agent) -> tuple[str, str] | None:
        """Why a helper may not run again now (see `slot_refusal`); None for a session."""
        return None if agent.parent is None else slot_refusal(self, agent.parent, agent.name)

    def op_rm(self, name: str, force: bool = False) -> dict[str, Any]:
        """Remove the agent's worktree and branch, and its helpers' (their worktrees live inside its own)."""
        family = [*self.descendants(name), self.get(name)]
        if not force:
            for agent in family:
                if agent.state.live:
                    raise SupervisorError(
                        f"{agent.name} is still running ({agent.state})",
                        hint=f"`supervisor stop {name}` first, or `supervisor rm --force {name}`")
            problems, any_commits = [], False
            for agent in family:
                unmerged = worktrees.unmerged_commits(self.paths.root, agent.branch, agent.target)
                dirty = worktrees.uncommitted_changes(Path(agent.worktree))
                any_commits = any_commits or bool(unmerged)
                details = [f"{len(unmerged)} commit(s) not in {agent.target}"] if unmerged else []
                details += [f"{len(dirty)} uncommitted change(s)"] if dirty else []
                if details:
                    problems.append(", ".join(details) if agent.name == name else f"{agent.name}: {', '.join(details)}")
            if problems:
                # A merge takes commits only: with nothing but uncommitted edits, "merge first" would send the
                # user round in a circle.
                hint = f"`supervisor merge {name}` first, or `supervisor rm --force {name}` to drop it" if any_commits \
                    else f"commit them in {self.get(name).worktree} (then `supervisor merge {name}`), or " \
                         f"`supervisor rm --force {name}` to drop them"
                raise SupervisorError(f"{name} has unmerged work: {'; '.join(problems)}", hint=hint)
        helpers = []
        for member in self.family_to_end(name, left=lambda a: True):  # lazily: late ones are seen once it is gone
            self._remove(member)
            helpers += [member] if member != name else []
        return {"name": name, "removed": True, "helpers": helpers}

    def _remove(self, name: str) -> None:
        with self.ending(name):
            agent = self.get(name)
            if agent.state.live:
                self._end(agent, grace=0.0, why="it was removed")
            self._end_state_holders(agent, grace=0.0)  # a daemon that outlived the CLI's own exit
            if agent.parent is None:
                self.tmux.kill_session(name)
            elif (own := self.panes.own(agent)) is not None:
                self.tmux.kill_pane(own.pane)
            worktrees.remove_worktree(self.paths.root, Path(agent.worktree), agent.branch)
            self.store.delete_agent(name)
            self.live.pop(name, None)
            self.transcripts.forget(name)
            self.close_socket(name)
            shutil.rmtree(self.paths.agent_runtime(name), ignore_errors=True)  # its socket, spool and contract file
            shutil.rmtree(self.paths.agent_state(name), ignore_errors=True)  # its CLI's own config and sessions
            self.usage.forget(name)  # last: no pass can read its files again, or save a read of them after this


def _answerer(by: str) -> str:
    """Who answered, as the event log says it: `cli` or `dashboard` (a Slack reply is named by the engine)."""
    if by not in ("cli", "dashboard"):
        raise UsageError(f"by must be cli or dashboard, not {by!r}")
    return by


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


def _missing_program(command: str, cwd: Path) -> str | None:
    """The program of a simple command line when it cannot be found; None when found or not simple."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words or any(ch in command for ch in ";|&$`()<>") or "=" in words[0]:
        return None  # shell syntax: let the shell decide, and read its verdict from the exit status
    program = words[0]
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else cwd / program
        return None if os.access(path, os.X_OK) else program
    return None if shutil.which(program) else program
