"""Starting agents: new sessions and best-of-N, their worktrees, setup and launch; launching them again (restart, a
relaunch by the restart policy)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.agents import get_profile, profile_for
from supervisor.agents.session_ids import valid
from supervisor.config import DEFAULT_COMMANDS, Config, load_config
from supervisor.core.contract import Contract, parse_contract
from supervisor.core.model import Agent, State, validate_name
from supervisor.core.roles import default_session_contract
from supervisor.core.triggers import Trigger, fire
from supervisor.engine import cli_folder, restart_cap, undelivered, views
from supervisor.engine.environments import agent_identity
from supervisor.engine.helpers import slot_refusal, with_terms
from supervisor.engine.panes import place
from supervisor.engine.server_ended import RESTORABLE
from supervisor.engine.transcripts import tail_lines
from supervisor.engine.watcher import Live
from supervisor.errors import SupervisorError, UsageError
from supervisor.git import worktrees
from supervisor.git.refs import agent_branch
from supervisor.hosts import placement
from supervisor.hosts.base import ISOLATED, CannotIsolate
from supervisor.hosts.isolation import NONE as NO_ISOLATION
from supervisor.hosts.isolation import choose as isolation_choice
from supervisor.hosts.isolation import valid as isolation_valid
from supervisor.hosts.remote.host import RemoteHost
from supervisor.hostsconfig import LOCAL
from supervisor.paths import agent_file_name

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

PORT_BASE = 20000
PORT_BLOCK = 10
MAX_BEST_OF = 10


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


class Launcher:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.gate = LaunchGate()

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
        host: str = LOCAL,
    ) -> dict[str, Any]:
        validate_name(name)
        if "." in name:
            raise UsageError("a session name cannot contain '.'", hint="helpers are started with `supervisor helper`")
        self.engine.reload_config_if_changed()
        config = load_config(self.engine.paths.root)  # refuse a broken file now, before anything starts
        terms = parse_contract(contract, contract_path or "SESSION.md") if contract is not None else \
            default_session_contract(self.engine.paths.root)
        isolation = isolation_valid(isolation)
        host = placement.check_host(config, host)
        if best_of is None:
            admission = self.admission_on(host, config)  # a full host is said before it is reached
            agent = self.new_session(name, task, command, profile, base, config, host=host)
            isolation_choice(agent, isolation)
            return self.create(agent, terms, config, wait=wait, **admission)
        return self._start_best_of(name, best_of, task, command, profile, base, config, terms, wait, isolation,
                                   host)

    def admission_on(self, host: str, config: Config, wanted: int = 1) -> dict[str, Any]:
        """`create`'s `admit` and `admission` for a session on `host`: refused when the host is full (checked
        again right before its row is added, under the lock, so that two starts cannot take its last place).
        `wanted`: the places the whole request takes (a best-of-N), checked before the first is started."""
        if placement.capacity(config, host) is None:
            return {}
        refusal = placement.room_refusal(config, self.engine.store.agents(), host, wanted=wanted)
        if refusal is not None:
            raise SupervisorError(*refusal)

        def admit() -> None:
            found = placement.room_refusal(config, self.engine.store.agents(), host)
            if found is not None:
                raise SupervisorError(*found)

        return {"admit": admit, "admission": self.engine.admission}

    def _start_best_of(self, name: str, count: int, task: str | None, command: str | None, profile: str | None,
                       base: str, config: Config, terms: Contract, wait: bool,
                       isolation: str | None = None, host: str = LOCAL) -> dict[str, Any]:
        """N sessions NAME-1 … NAME-N on the same task, from the same commit (`compare` shows them side by
        side; merging one removes the others)."""
        if not 2 <= count <= MAX_BEST_OF:
            raise UsageError(f"--best-of takes 2 to {MAX_BEST_OF} sessions, not {count}")
        if not task:
            raise UsageError("--best-of needs a task: the same one is given to every candidate")
        names = [f"{name}-{i}" for i in range(1, count + 1)]
        for candidate in names:
            validate_name(candidate)
            if self.engine.store.get_agent(candidate) is not None:
                raise UsageError(f"an agent named {candidate!r} already exists",
                                 hint=f"pick another name, or `supervisor rm {candidate}` first")
        base_commit = worktrees.resolve(self.engine.paths.root, base)  # one commit for all, even if HEAD moves
        self.admission_on(host, config, wanted=count)  # all of them fit, or none starts
        started = []
        for candidate in names:
            agent = self.new_session(candidate, task, command, profile, base, config, host=host)
            agent.base = base_commit
            agent.extra["best_of"] = name
            isolation_choice(agent, isolation)
            started.append(self.create(agent, terms, config, wait=wait, **self.admission_on(host, config)))
        return {"name": name, "candidates": started}

    def new_session(self, name: str, task: str | None, command: str | None, profile: str | None, base: str,
                    config: Config, *, queued: bool = False, host: str = LOCAL) -> Agent:
        """A level-1 agent's record (not stored yet), on `host`. A queued one gets its base commit when it
        starts."""
        chosen = get_profile(profile or (profile_for(command) if command else config.agent.profile))
        line = command or (config.agent.command if chosen.name == config.agent.profile else None)
        line = line or DEFAULT_COMMANDS.get(chosen.name)
        if not line:
            raise UsageError(f"profile {chosen.name} needs a command", hint="pass --command or set agent.command")
        root = self.engine.paths.root
        base_commit = "" if queued else worktrees.resolve(root, base)
        if base == "HEAD":
            target = worktrees.current_branch(root) or worktrees.resolve(root, base)
        else:
            target = base if queued or worktrees.branch_exists(root, base) else base_commit
        now = time.time()
        return Agent(
            name=name, profile=chosen.name, command=line, worktree=self._worktree_path(config, name, host),
            branch=agent_branch(name), base=base_commit, target=target, task=task,
            state=State.QUEUED if queued else State.STARTING, state_since=now, started_at=0.0 if queued else now,
            port=None if queued else self.free_port(), host=host,
        )

    def create(self, agent: Agent, terms: Contract, config: Config, *, wait: bool = True,
               admit: Callable[[], None] | None = None, admission: threading.Lock | None = None) -> dict[str, Any]:
        """Make the agent's worktree (SESSION.md, guard, setup), launch it and deliver its task.

        `admit` runs under `admission` right before the agent's row is added (a parent's helper count is
        checked there, so two concurrent spawns cannot both take its last place)."""
        name = agent.name
        with_terms(agent, terms, self.engine.contracts.seal)
        with self.engine.agent_lock(name):  # held from the first row on, so the watcher never sees it half-made
            with admission or contextlib.nullcontext():
                if admit is not None:
                    admit()
                self.engine.store.add_agent(agent)  # atomic: a second start of the same name stops here
            try:
                self._make_worktree(agent)
            except SupervisorError:
                self.engine.store.delete_agent(name)  # nothing was created: leave no trace but the event
                raise
            self._bring_up(agent, config, wait=wait)
        agent = self.engine.get(name)
        if agent.state == State.FAILED:
            raise SupervisorError(f"{name} failed to start: {agent.reason}",
                                  hint=f"`supervisor show {name}` has the details; `supervisor rm {name}` clears it")
        return views.agent_view(agent, self.engine.live.get(name))

    def start_queued(self, name: str) -> None:
        """Start a `queued` agent (a plan's session whose turn came): its branch forks from its target's
        tip now, so it begins with the work merged before it."""
        config = load_config(self.engine.paths.root)
        with self.engine.agent_lock(name):  # (its place is its own already: a queued session holds one)
            agent = self.engine.get(name)
            if agent.state != State.QUEUED or self._no_room_yet(agent, config):
                return
            try:
                agent.base = worktrees.resolve(self.engine.paths.root, agent.target)
                agent.port = self.free_port()
                agent.started_at = time.time()
                self.engine.set_state(agent, State.STARTING, "dequeued", base=agent.base)
                self._make_worktree(agent)
            except SupervisorError as exc:
                agent.reason = f"could not start: {exc.message}"
                self.engine.set_state(agent, State.FAILED, "failed", reason=agent.reason)
                return
            self._bring_up(agent, config, wait=False)

    def _no_room_yet(self, agent: Agent, config: Config) -> bool:
        """A queued session holds its place on its host; should the host have less room now (its max_agents
        lowered, agents started there past it), it waits for a place, saying so once (its `reason`)."""
        refusal = placement.room_refusal(config, self.engine.store.agents(), agent.host, besides=agent.name)
        if refusal is None:
            return False
        why = f"waits for a place: {refusal[0]}"
        if agent.reason != why:
            agent.reason = why
            self.engine.store.save_agent(agent, "no_room", host=agent.host, reason=refusal[0])
        return True

    def _make_worktree(self, agent: Agent) -> None:
        owner = self.engine.store.get_agent(agent.parent) if agent.parent else None
        host = self.engine.host_of(agent)
        agent.extra[worktrees.GIT_DIR_KEY] = host.make_worktree(agent, agent.base,
                                                                owner.worktree if owner is not None else None)
        self.engine.store.append_event(agent.name, "worktree_created", worktree=agent.worktree, branch=agent.branch,
                                       base=agent.base)

    def _bring_up(self, agent: Agent, config: Config, *, wait: bool) -> None:
        """Contract, guard and setup in the new worktree; launch; deliver the task (the caller holds the lock)."""
        self.engine.host_of(agent).write_session(agent, agent.extra["contract"])
        self._setup_worktree(agent, config)
        self._launch(agent, resume=False)
        task = agent.task
        if task and agent.state.live:
            self.engine.live[agent.name].pending_prompt = True  # the watcher keeps it `starting` until delivered
            if wait:
                self.engine.prompter.deliver_first_prompt(agent.name, task)
            else:
                threading.Thread(target=self.engine.prompter.deliver_quietly, args=(agent.name, task),
                                 daemon=True).start()

    def _worktree_path(self, config: Config, name: str, host: str = LOCAL) -> str:
        """Where a session's worktree goes: under `worktrees.dir` here, or in the repository's folder on its host
        (a path on that host, as text)."""
        if host == LOCAL:
            return os.path.normpath(config.worktrees.dir / agent_file_name(name))
        remote = self.engine.host_named(host)
        if not isinstance(remote, RemoteHost):
            raise UsageError(f"unknown host {host!r}", hint="hosts are named under `hosts:` in supervisor.yaml")
        return remote.layout().worktree(name)

    def free_port(self) -> int:
        used = {a.port for a in self.engine.store.agents()}
        port = PORT_BASE
        while port in used:
            port += PORT_BLOCK
        return port

    def _setup_worktree(self, agent: Agent, config: Config) -> None:
        """Run `worktrees.setup` in the new worktree; a failing command fails the agent with its output."""
        env = {**self.engine.agents_env, **agent_identity(self.engine.paths, agent), "TERM": "dumb"}
        host = self.engine.host_of(agent)
        for command in config.worktrees.setup:
            try:  # the agent's own code (its Makefile, its package.json): sandboxed as the agent is
                done = host.run_isolated(agent, command, agent.worktree, env)
            except CannotIsolate as exc:
                agent.reason = f"not started: {exc.message}; {exc.hint}"
                self.engine.set_state(agent, State.FAILED, "failed", reason=agent.reason)
                return
            output = tail_lines("\n".join(done.lines), 5)
            self.engine.store.append_event(agent.name, "setup", command=command, exit_code=done.exit_code,
                                           output=output)
            if done.exit_code != 0:
                agent.reason = f"setup command `{command}` exited {done.exit_code}: {' / '.join(output)}"
                self.engine.set_state(agent, State.FAILED, "failed", reason=agent.reason)
                return

    def _launch(self, agent: Agent, *, resume: bool) -> bool:
        """Start the agent's command in its pane (the caller holds the agent's lock); with `resume`, in its own
        conversation, by the id recorded of it, where its CLI can. Returns whether it was resumed so: if not,
        it begins a new conversation, and its task is for the caller to give again."""
        if agent.state == State.FAILED and not resume:
            return False  # setup failed
        profile = get_profile(agent.profile)
        host = self.engine.host_of(agent)
        missing = host.missing_program(agent, agent.command)
        if missing:
            agent.reason = f"command not found: {missing}"
            self.engine.set_state(agent, State.FAILED, "failed", reason=agent.reason)
            return False
        state = Path(host.prepare_launch(agent))  # its hooks in its worktree, a tmux server, its CLI's own folder
        if agent.extra.pop("pending_task", None):
            resume = False  # its first task never went in (a dialog held it): afresh, and the caller gives it
        known = valid(agent.extra.get("session_id"))
        folder, reader = host.cli_files(agent)  # where its CLI keeps its conversations, on its machine
        if resume and known is None:  # kept in its CLI's files, stopped before the watcher read them
            known = valid(profile.find_session(Path(folder), Path(agent.worktree), agent.started_at, reader))
        session = known if resume else None
        resumed = profile.resume_line(agent.command, session, Path(folder), reader) if resume else None
        if resumed is None:
            agent.extra.pop("session_id", None)  # a new conversation: its id is told (or found) anew
        elif session is not None:
            agent.extra["session_id"] = session
        command = resumed or agent.command
        agents = self.engine.config.agent
        stagger = agents.stagger if profile.name == agents.profile else profile.stagger
        self.gate.wait(profile.name, stagger)
        self.engine.contracts.publish(agent)  # what its commit guard reads
        unmade = self.engine.open_socket(agent.name)  # before its first process: its hooks talk through it
        if unmade is not None and host.isolation_of(agent) != NO_ISOLATION:
            agent.reason = (f"not started: its own socket to the engine could not be made at "
                            f"{self.engine.paths.agent_socket(agent.name)} ({unmade})")
            self.engine.set_state(agent, State.FAILED, "failed", reason=agent.reason)
            return False
        # Without a sandbox it runs all the same, known by its lineage alone (your socket is within its reach
        # anyway, and judged so): a full or read-only runtime folder does not stop all work. It is never told
        # your socket: its commands say its own is gone, and the `socket_unavailable` event says why.
        env = agent_identity(self.engine.paths, agent)
        prepared = cli_folder.prepare(self.engine.store, agent, profile, state, self.engine.paths.root,
                                      host.hook_command(agent))
        if isinstance(prepared, str):  # what the agent left there cannot be replaced (a folder with files in it)
            agent.reason = f"not started: {prepared}"
            self.engine.set_state(agent, State.FAILED, "failed", reason=agent.reason)
            return False
        env.update(prepared)
        own = host.own_pane(agent)  # respawned only into its own pane, never one of a new server
        if own is not None:
            self.engine.screens.end_transcript(agent)  # what its last run left on screen, if nobody wrote it yet
        try:
            launched = host.launch(agent, command, env, own)
        except CannotIsolate as exc:
            agent.reason = f"not started: {exc.message}; {exc.hint}"
            self.engine.set_state(agent, State.FAILED, "failed", reason=agent.reason)
            return False
        ref, agent.pid, history = launched.ref, launched.pid, launched.history
        if launched.unconfined:
            log.warning("%s: %s", agent.name, launched.unconfined)
            self.engine.store.append_event(agent.name, "cgroup_join_failed", why=launched.unconfined)
        place(agent, ref)
        self.engine.transcripts.begin(agent.name, ref.server, ref.pane, history)
        now = time.time()
        for stale in ("restart_at", "timing_out", "escaped", "deadlock", "gave_up", undelivered.MARK, RESTORABLE):
            agent.extra.pop(stale, None)
        agent.started_at = now
        agent.exit_code = None
        agent.reason = None
        agent.waiting_reason = None
        self.engine.live[agent.name] = Live(last_output=0.0, launched_at=now, replaying=resumed is not None,
                                     session_id=session if resumed is not None else None)
        agent.extra[ISOLATED] = launched.isolation
        self.engine.set_state(agent, State.STARTING, "launched", pane=agent.pane, pid=agent.pid, command=command,
                       isolation=launched.isolation)
        return resumed is not None

    def restart_quietly(self, name: str) -> None:
        """`on_stall: restart`: an automatic restart, within `restart_cap` (a stalled agent past it runs on)."""
        try:
            with self.engine.agent_lock(name):
                self.start_again(self.engine.get(name), "restarted", automatic=True)
        except SupervisorError as exc:
            log.warning("%s: restart failed: %s", name, exc)

    def relaunch(self, agent: Agent, reason: str) -> None:
        """Start an ended agent again in its pane (the caller holds its lock). A helper is not started when
        its parent is not live or already has its Max helpers live: a `not_restarted` event says why, and
        `exited` alerts, as for any agent that will not be restarted."""
        with self._admission_of(agent):
            refusal = self._restart_refusal(agent)
            capped = restart_cap.refusal(agent, self.engine.config.limits, time.time())
            if refusal is None and capped is not None:
                refusal = (f"{capped}; `supervisor restart {agent.name}` starts it again", "")
            if refusal is not None:
                agent.reason = f"{agent.reason or 'exited'}; not restarted: {refusal[0]}"
                with self.engine.store.transaction():
                    self.engine.store.save_agent(agent, "not_restarted", why=refusal[0], policy=reason)
                    fire(self.engine.store, agent, Trigger.EXITED, agent.reason, exit_code=agent.exit_code)
                return
            self._relaunch(agent, reason)

    def _relaunch(self, agent: Agent, reason: str) -> None:
        agent.restarts += 1
        restart_cap.count(agent, self.engine.config.limits, time.time())
        fresh = (agent.extra.get("restart") or self.engine.config.limits.restart) == "always"
        self.engine.store.append_event(agent.name, "restarting", why=reason, restarts=agent.restarts)
        if not self._launch(agent, resume=not fresh):
            self.give_task_again(agent)

    def give_task_again(self, agent: Agent) -> None:
        """A new conversation knows nothing yet: it gets its task again (a swarm's "claim your next job", an agent
        whose CLI could not resume its own), once its prompt shows (the caller holds its lock)."""
        if agent.task and agent.state.live:
            self.engine.live[agent.name].pending_prompt = True
            threading.Thread(target=self.engine.prompter.deliver_quietly, args=(agent.name, agent.task),
                             daemon=True).start()

    def op_restart(self, name: str) -> dict[str, Any]:
        with self.engine.agent_lock(name):
            self.start_again(self.engine.get(name), "restarted")
            agent = self.engine.get(name)
            if agent.state == State.FAILED:
                raise SupervisorError(f"{name} failed to start: {agent.reason}")
            return views.agent_view(agent, self.engine.live.get(name))

    def start_again(self, agent: Agent, verb: str, *, automatic: bool = False) -> bool:
        """Start the agent again in its own worktree (ended first if it runs), in its own conversation where its
        CLI can resume it, else afresh with its task (the caller holds its lock). `verb`: what the human asked
        (`restarted`, `restored`), for the refusals; `automatic`: the engine asked (`on_stall`, `restore:
        auto`), within `restart_cap`. Returns whether its conversation was resumed."""
        name = agent.name
        limits = self.engine.config.limits
        with self._admission_of(agent):  # a helper's place under its parent is checked and taken at once
            refusal = self._restart_refusal(agent)
            capped = restart_cap.refusal(agent, limits, time.time()) if automatic else None
            if refusal is None and capped is not None:
                self.engine.store.append_event(name, "not_restarted", why=capped, policy=verb)
                refusal = (capped, f"`supervisor restart {name}` starts it again")
            if refusal is not None:
                raise SupervisorError(f"{name} cannot be {verb}: {refusal[0]}", hint=refusal[1])
            # Live or not: what its last run left (a tool that ignored the hangup when its tmux server died)
            # still holds its worktree and ports; a second copy is never started beside it.
            self.engine.endings.end(agent, grace=self.engine.config.limits.stop_grace, why=f"it was {verb}")
            if not self.engine.host_of(agent).worktree_exists(agent):
                raise SupervisorError(f"{name}'s worktree {agent.worktree} is gone; it cannot be {verb}")
            agent.restarts += 1
            agent.extra.pop("quick_exits", None)  # a restart starts the policy's count of quick exits afresh
            if automatic:
                restart_cap.count(agent, limits, time.time())
            else:  # and a human's, the count of automatic restarts too
                restart_cap.forget(agent)
            agent.state = State.STARTING
            resumed = self._launch(agent, resume=True)
            if not resumed:
                self.give_task_again(agent)
            return resumed

    def _admission_of(self, agent: Agent) -> contextlib.AbstractContextManager[object]:
        """`admission` for a helper (its parent's count of live helpers changes) and for an agent that takes a
        place again on a host with a limit; nothing otherwise."""
        takes_place = not agent.state.live and placement.capacity(self.engine.config, agent.host) is not None
        return self.engine.admission if agent.parent is not None or takes_place else contextlib.nullcontext()

    def _restart_refusal(self, agent: Agent) -> tuple[str, str] | None:
        """Why the agent may not run again now: a helper's place under its parent (see `slot_refusal`), or an
        ended agent's place on its host (a running one keeps its own). None: it may."""
        if agent.parent is not None:
            refusal = slot_refusal(self.engine, agent.parent, agent.name)
            if refusal is not None:
                return refusal
        if agent.state.live:
            return None
        return placement.room_refusal(self.engine.config, self.engine.store.agents(), agent.host, besides=agent.name)
