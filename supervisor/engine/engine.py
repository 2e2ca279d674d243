"""The engine: one long-lived process per repository that owns the agents.

Requests arrive on the control socket (one thread each); the watch loop runs in the main thread. Every
change to an agent happens under that agent's lock and is written to the store (with its event) before
anything else is told, so the engine can be killed at any instant and re-adopt the same world.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import psutil

from supervisor import __version__
from supervisor.agents import get_profile, profile_for
from supervisor.config import Config, load_config
from supervisor.core.model import Agent, State, validate_name
from supervisor.core.store import Store
from supervisor.engine import views
from supervisor.engine.delivery import DeliveryError, deliver, wait_for
from supervisor.engine.processes import kill_tree
from supervisor.engine.server import ControlServer
from supervisor.engine.transcripts import size_of, tail_lines
from supervisor.engine.watcher import Live, Watcher
from supervisor.errors import SupervisorError, UsageError
from supervisor.git import worktrees
from supervisor.paths import RepoPaths
from supervisor.tmux.server import Tmux, TmuxError

log = logging.getLogger(__name__)

PORT_BASE = 20000
PORT_BLOCK = 10
READY_TIMEOUT = 60.0
STOP_GRACE = 5.0

# What a process inside an agent's tree may ask for: its own business, nothing about other agents.
AGENT_METHODS = frozenset({"ping", "status", "ls", "show"})


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
        self.store = Store(paths.db_path)
        self.tmux = Tmux(paths.tmux_socket, paths.tmux_conf)
        self.live: dict[str, Live] = {}
        self._agent_locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self._gate = LaunchGate()
        self._stopping = threading.Event()
        self.started_at = time.time()
        self.watcher = Watcher(self)
        # Subsystems with threads of their own (alert delivery); each may offer `op_*` requests.
        from supervisor.alerts.service import AlertService

        self.services: list[Service] = [AlertService(self)]

    # running ------------------------------------------------------------------------------------------

    def acquire_singleton(self) -> None:
        handle = open(self.paths.engine_lock, "a")  # noqa: SIM115 - held for the engine's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SupervisorError("an engine is already running for this repository") from None
        self._lock_file = handle

    def serve(self) -> None:
        """Run until asked to stop: adopt what exists, answer requests, watch every tick."""
        self.acquire_singleton()
        self.tmux.ensure_server()
        self.store.set_meta("engine_pid", str(os.getpid()))
        self.store.append_event(None, "engine_started", pid=os.getpid(), version=__version__)
        self.watcher.adopt()
        for service in self.services:
            service.start()
        server = ControlServer(self.paths.engine_socket, self.handle)
        server.serve_in_thread()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: self._stopping.set())
        log.info("engine %d serving %s", os.getpid(), self.paths.root)
        try:
            self.watcher.run(self._stopping)
        finally:
            server.shutdown()
            server.server_close()
            for service in self.services:
                service.stop()
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
        except SupervisorError as exc:
            log.warning("keeping the previous configuration: %s", exc)
            self.store.append_event(None, "config_invalid", error=str(exc))

    @contextmanager
    def agent_lock(self, name: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._agent_locks.setdefault(name, threading.RLock())
        with lock:
            yield

    def try_agent_lock(self, name: str) -> threading.RLock | None:
        with self._locks_guard:
            lock = self._agent_locks.setdefault(name, threading.RLock())
        return lock if lock.acquire(blocking=False) else None

    # requests -----------------------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any], peer_pid: int, token: str | None) -> Any:
        caller = self._caller(peer_pid, token)
        if caller is not None and method not in AGENT_METHODS:
            raise SupervisorError(
                f"agent {caller.name} may not call {method}",
                hint="agents may spawn their own helpers, message and report; ask the human for the rest",
            )
        handler = next((getattr(owner, f"op_{method}") for owner in (self, *self.services)
                        if hasattr(owner, f"op_{method}")), None)
        if handler is None:
            raise UsageError(f"unknown request {method!r}")
        try:
            return handler(**params)
        except TypeError as exc:
            if "argument" not in str(exc):
                raise
            raise UsageError(f"bad parameters for {method}: {exc}") from None

    def _caller(self, peer_pid: int, token: str | None) -> Agent | None:
        """The agent whose process tree the peer runs in, if any."""
        agents = self.store.agents()
        by_pid = {a.pid: a for a in agents if a.pid and a.state.live}
        found: Agent | None = None
        try:
            process = psutil.Process(peer_pid)
            for proc in [process, *process.parents()]:
                if proc.pid in by_pid:
                    found = by_pid[proc.pid]
                    break
        except psutil.Error:
            pass
        if token:
            by_token = next((a for a in agents if secrets.compare_digest(a.token, token)), None)
            if by_token is None and found is None:
                return None  # a stale token from an agent that is gone; the tree decides
            if found is not None and by_token is not None and by_token.name != found.name:
                raise SupervisorError("the agent token does not belong to the calling agent")
            found = found or by_token
        return found

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
            "store": str(self.paths.db_path),
            "tick_seconds": self.watcher.last_tick_seconds,
        }

    def op_shutdown(self) -> str:
        self.request_stop()
        return "stopping"

    def op_ls(self) -> list[dict[str, Any]]:
        return [views.agent_view(a, self.live.get(a.name)) for a in views.tree_order(self.store.agents())]

    def op_show(self, name: str, events: int = 20) -> dict[str, Any]:
        agent = self._get(name)
        view = views.agent_view(agent, self.live.get(name))
        view["events"] = [views.event_view(e) for e in self.store.events(name, limit=events)]
        view["screen"] = self._last_screen(agent, 15)
        view["transcript"] = str(self.paths.transcript(name))
        view["command"] = agent.command
        view["profile"] = agent.profile
        view["reason"] = agent.reason
        view["port"] = agent.port
        view["restarts"] = agent.restarts
        return view

    def op_events(self, name: str | None = None, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Events of one agent (or all), oldest first: the newest `limit` after id `after`."""
        if name is not None:
            self._get(name)
        return [views.event_view(e) for e in self.store.events(name, after=after, limit=limit)]

    def op_changes(self, after: int = 0, timeout: float = 10.0, limit: int = 500) -> dict[str, Any]:
        """Long poll: waits up to `timeout` for events after id `after`; returns them and the newest id.

        A client keeps `last` and calls again, so it sees every change within moments, without polling."""
        last = self.store.wait_for_events(after, min(max(timeout, 0.0), 60.0))
        events = self.store.events(None, after=after, limit=limit) if last > after else []
        return {"last": last, "events": [views.event_view(e) for e in events]}

    def op_screen(self, name: str, history: int = 0, ansi: bool = False) -> dict[str, Any]:
        """The agent's pane as it is now (with `history` lines of scrollback, colours with `ansi`)."""
        agent = self._get(name)
        if agent.pane is None or agent.pane not in self.tmux.list_panes():
            return {"name": name, "text": "", "available": False}
        try:
            text = self.tmux.capture(agent.pane, history=history, ansi=ansi)
        except TmuxError:
            return {"name": name, "text": "", "available": False}
        return {"name": name, "text": text, "available": True}

    def op_diffstat(self) -> dict[str, dict[str, int]]:
        """Per agent: files changed and lines added/removed in its worktree against its base commit."""
        result = {}
        for agent in self.store.agents():
            stat = worktrees.diffstat(Path(agent.worktree), agent.base)
            if stat is not None:
                result[agent.name] = stat
        return result

    def op_attach_info(self, name: str) -> dict[str, Any]:
        agent = self._get(name)
        panes = self.tmux.list_panes()
        if agent.pane is None or agent.pane not in panes:
            raise SupervisorError(f"{name} has no pane to attach to",
                                  hint=f"`supervisor restart {name}` starts it again")
        return {"pane": agent.pane, "session": panes[agent.pane].session,
                "socket": str(self.paths.tmux_socket)}

    def _get(self, name: str) -> Agent:
        agent = self.store.get_agent(name)
        if agent is None:
            raise UsageError(f"no agent named {name!r}", hint="`supervisor ls` lists the agents")
        return agent

    def screen_tail(self, agent: Agent, count: int = 15) -> list[str]:
        """The last non-blank lines of the agent's screen (evidence for events and alerts)."""
        return [line for line in self._last_screen(agent, count * 2) if line.strip()][-count:]

    def _last_screen(self, agent: Agent, count: int) -> list[str]:
        if agent.pane is None:
            return []
        try:
            return tail_lines(self.tmux.capture(agent.pane), count)
        except TmuxError:
            return []

    # state --------------------------------------------------------------------------------------------

    def set_state(self, agent: Agent, state: State, event: str | None = None, **data: Any) -> None:
        """Change an agent's state and record the transition (the caller holds the agent's lock)."""
        now = time.time()
        previous = agent.state
        agent.state = state
        agent.state_since = now
        live = self.live.get(agent.name)
        if live is not None and live.last_output:
            agent.last_activity_at = live.last_output
        self.store.save_agent(agent, event or "state", previous=str(previous), state=str(state), **data)
        log.info("%s: %s -> %s %s", agent.name, previous, state, data or "")

    # start --------------------------------------------------------------------------------------------

    def op_start(
        self,
        name: str,
        task: str | None = None,
        command: str | None = None,
        profile: str | None = None,
        base: str = "HEAD",
        wait: bool = True,
    ) -> dict[str, Any]:
        validate_name(name)
        if "." in name:
            raise UsageError("a session name cannot contain '.'", hint="helpers are started with `supervisor helper`")
        self.reload_config_if_changed()
        config = load_config(self.paths.root)  # refuse a broken file now, before anything starts
        chosen = get_profile(profile or (profile_for(command) if command else config.agent.profile))
        line = command or (config.agent.command if chosen.name == config.agent.profile else None)
        line = line or chosen.default_command
        if not line:
            raise UsageError(f"profile {chosen.name} needs a command", hint="pass --command or set agent.command")
        root = self.paths.root
        base_commit = worktrees.resolve(root, base)
        target = (worktrees.current_branch(root) if base == "HEAD" else base) or base_commit
        worktree = self._worktree_path(config, name)
        now = time.time()
        agent = Agent(
            name=name, profile=chosen.name, command=line, worktree=str(worktree), branch=f"agent/{name}",
            base=base_commit, target=target, token=secrets.token_hex(16), task=task,
            state=State.STARTING, state_since=now, started_at=now, port=self._free_port(),
        )
        with self.agent_lock(name):  # held from the first row on, so the watcher never sees it half-made
            self.store.add_agent(agent)  # atomic: a second start of the same name stops here
            try:
                worktrees.ensure_excludes(self.paths.common_dir)
                worktrees.add_worktree(root, worktree, agent.branch, base_commit)
            except SupervisorError:
                self.store.delete_agent(name)  # nothing was created: leave no trace but the event
                raise
            self.store.append_event(name, "worktree_created", worktree=str(worktree), branch=agent.branch,
                                    base=base_commit)
            self._setup_worktree(agent, config)
            self._launch(agent, resume=False)
            if task and agent.state.live:
                self.live[name].pending_prompt = True  # the watcher keeps it `starting` until delivered
                if wait:
                    self._deliver_first_prompt(agent.name, task)
                else:
                    threading.Thread(target=self._deliver_quietly, args=(name, task), daemon=True).start()
        agent = self._get(name)
        if agent.state == State.FAILED:
            raise SupervisorError(f"{name} failed to start: {agent.reason}",
                                  hint=f"`supervisor show {name}` has the details; `supervisor rm {name}` clears it")
        return views.agent_view(agent, self.live.get(name))

    def _worktree_path(self, config: Config, name: str) -> Path:
        return Path(os.path.normpath(config.worktrees.dir / name))

    def _free_port(self) -> int:
        used = {a.port for a in self.store.agents()}
        port = PORT_BASE
        while port in used:
            port += PORT_BLOCK
        return port

    def _agent_env(self, agent: Agent) -> dict[str, str]:
        compose = f"{self.paths.name}-{agent.name}".lower().replace(".", "-")
        return {
            "SUPERVISOR_AGENT": agent.name,
            "SUPERVISOR_TOKEN": agent.token,
            "SUPERVISOR_PORT": str(agent.port),
            "COMPOSE_PROJECT_NAME": "".join(c for c in compose if c.isalnum() or c in "-_"),
        }

    def _setup_worktree(self, agent: Agent, config: Config) -> None:
        """Run `worktrees.setup` in the new worktree; a failing command fails the agent with its output."""
        env = {**os.environ, **self._agent_env(agent)}
        env.pop("SUPERVISOR_TOKEN")
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

    def _launch(self, agent: Agent, *, resume: bool) -> None:
        """Start the agent's command in its pane (the caller holds the agent's lock)."""
        if agent.state == State.FAILED and not resume:
            return  # setup failed
        profile = get_profile(agent.profile)
        missing = _missing_program(agent.command, Path(agent.worktree))
        if missing:
            agent.reason = f"command not found: {missing}"
            self.set_state(agent, State.FAILED, "failed", reason=agent.reason)
            return
        profile.prepare_worktree(self.paths.root, Path(agent.worktree), Path.home())
        self.tmux.ensure_server()
        command = profile.command_line(agent.command, resume=resume)
        stagger = self.config.agent.stagger if profile.name == self.config.agent.profile else profile.stagger
        self._gate.wait(profile.name, stagger)
        transcript = self.paths.transcript(agent.name)
        env = self._agent_env(agent)
        panes = self.tmux.list_panes()
        if agent.pane and agent.pane in panes:
            agent.pid = self.tmux.respawn(agent.pane, Path(agent.worktree), command, env)
            self.tmux.pipe_transcript(agent.pane, transcript)
        else:
            self.tmux.kill_session(agent.name)
            agent.pane, agent.pid = self.tmux.new_session(agent.name, Path(agent.worktree), command, env,
                                                          transcript)
        now = time.time()
        agent.extra["tmux_server"] = self.tmux.server_id()
        agent.started_at = now
        agent.exit_code = None
        agent.reason = None
        agent.waiting_reason = None
        self.live[agent.name] = Live(transcript_size=size_of(transcript), last_output=0.0, launched_at=now)
        self.set_state(agent, State.STARTING, "launched", pane=agent.pane, pid=agent.pid, command=command)

    def _deliver_quietly(self, name: str, task: str) -> None:
        try:
            self._deliver_first_prompt(name, task)
        except SupervisorError as exc:
            log.warning("%s: %s", name, exc)

    def _deliver_first_prompt(self, name: str, task: str) -> None:
        with self.agent_lock(name):
            agent = self._get(name)
            try:
                self._wait_ready(agent)
                self._deliver(agent, task, "task_delivered")
            finally:
                live = self.live.get(name)
                if live is not None:
                    live.pending_prompt = False

    def _wait_ready(self, agent: Agent) -> None:
        """Wait until the freshly launched CLI shows its input prompt (or, for an unknown CLI, goes quiet)."""
        assert agent.pane is not None
        profile = get_profile(agent.profile)
        transcript = self.paths.transcript(agent.name)
        state = {"size": -1, "since": time.monotonic()}

        def ready() -> bool:
            if not self._pane_alive(agent):
                return True
            verdict = profile.ready(self.tmux.capture(agent.pane or ""))
            if verdict is not None:
                return verdict
            size = size_of(transcript)
            if size != state["size"]:
                state["size"], state["since"] = size, time.monotonic()
                return False
            return size > 0 and time.monotonic() - state["since"] >= 0.5

        if not wait_for(ready, READY_TIMEOUT, interval=0.1):
            raise DeliveryError(f"{agent.name} did not show its input prompt within {READY_TIMEOUT:.0f}s",
                                hint=f"`supervisor attach {agent.name}` to see why")
        if not self._pane_alive(agent):
            self.watcher.check_now(agent)
            current = self._get(agent.name)
            raise SupervisorError(f"{agent.name} ended before it was ready: {current.reason or current.state}",
                                  hint=f"`supervisor log {agent.name}` shows its output")

    def _pane_alive(self, agent: Agent) -> bool:
        info = self.tmux.list_panes().get(agent.pane or "")
        return info is not None and not info.dead

    def _deliver(self, agent: Agent, text: str, event: str) -> None:
        assert agent.pane is not None
        try:
            deliver(self.tmux, agent.pane, text, pane_alive=lambda: self._pane_alive(agent))
        except DeliveryError as exc:
            self.store.append_event(agent.name, "delivery_failed", error=str(exc), text=text[:200])
            raise SupervisorError(f"{agent.name}: {exc}", hint=exc.hint) from None
        live = self.live.get(agent.name)
        if live is not None:
            live.last_output = time.time()
        self.set_state(agent, State.WORKING, event, text=text[:200])

    # send, stop, restart, rm --------------------------------------------------------------------------

    def op_send(self, name: str, text: str) -> dict[str, Any]:
        with self.agent_lock(name):
            agent = self._get(name)
            if not agent.state.live or agent.pane is None:
                raise SupervisorError(f"{name} is {agent.state}; there is nothing to type into",
                                      hint=f"`supervisor restart {name}` starts it again")
            self._deliver(agent, text, "sent")
            return views.agent_view(agent, self.live.get(name))

    def op_stop(self, name: str, kill: bool = False) -> dict[str, Any]:
        with self.agent_lock(name):
            agent = self._get(name)
            if agent.state.live:
                self._end(agent, grace=0.0 if kill else STOP_GRACE)
                final = State.KILLED if kill else State.STOPPED
                agent.reason = "killed on request" if kill else "stopped on request"
                self.set_state(agent, final, "killed" if kill else "stopped", reason=agent.reason)
            return views.agent_view(agent, self.live.get(name))

    def _end(self, agent: Agent, grace: float) -> None:
        """End the agent's whole process tree, and anything that escaped it carrying its token."""
        survivors = kill_tree(agent.pid, grace, env_key="SUPERVISOR_TOKEN", env_value=agent.token,
                              since=agent.started_at)
        if survivors:
            self.store.append_event(agent.name, "kill_incomplete", pids=survivors)
            raise SupervisorError(f"{agent.name}: processes {survivors} survived SIGKILL")
        if agent.pane:
            wait_for(lambda: not self._pane_alive(agent), 5.0)

    def op_restart(self, name: str) -> dict[str, Any]:
        with self.agent_lock(name):
            agent = self._get(name)
            if agent.state.live:
                self._end(agent, grace=STOP_GRACE)
            if not Path(agent.worktree).is_dir():
                raise SupervisorError(f"{name}'s worktree {agent.worktree} is gone; it cannot be restarted")
            agent.restarts += 1
            agent.state = State.STARTING
            self._launch(agent, resume=True)
            agent = self._get(name)
            if agent.state == State.FAILED:
                raise SupervisorError(f"{name} failed to start: {agent.reason}")
            return views.agent_view(agent, self.live.get(name))

    def op_rm(self, name: str, force: bool = False) -> dict[str, Any]:
        with self.agent_lock(name):
            agent = self._get(name)
            if agent.state.live and not force:
                raise SupervisorError(f"{name} is still running ({agent.state})",
                                      hint=f"`supervisor stop {name}` first, or `supervisor rm --force {name}`")
            root = self.paths.root
            if not force:
                unmerged = worktrees.unmerged_commits(root, agent.branch, agent.target)
                dirty = worktrees.uncommitted_changes(Path(agent.worktree))
                if unmerged or dirty:
                    details = [f"{len(unmerged)} commit(s) not in {agent.target}"] if unmerged else []
                    details += [f"{len(dirty)} uncommitted change(s)"] if dirty else []
                    raise SupervisorError(
                        f"{name} has unmerged work: {', '.join(details)}",
                        hint=f"`supervisor merge {name}` first, or `supervisor rm --force {name}` to drop it",
                    )
            if agent.state.live:
                self._end(agent, grace=0.0)
            self.tmux.kill_session(name)
            worktrees.remove_worktree(root, Path(agent.worktree), agent.branch)
            self.store.delete_agent(name)
            self.live.pop(name, None)
            return {"name": name, "removed": True}


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
