"""The watch loop: once a tick, every agent's pane, process tree and output, turned into states.

A tick costs one `tmux list-panes -a`, one scan of the process table, and one stat of each transcript
(whose growth is the pane's output activity), whatever the number of agents. Ticks never overlap: the next
one starts a full interval after the previous one ended.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.delivery import wait_for
from supervisor.engine.processes import CpuMeter, TreeUsage, scan
from supervisor.engine.transcripts import last_words, rotate_if_needed, size_of
from supervisor.tmux.server import PaneInfo, TmuxError

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
CPU_BUSY_PERCENT = 3.0  # a tree using more than this is working even when silent (a long test run)


@dataclass
class Live:
    """What the engine measures of a live agent; not stored, rebuilt on adoption."""

    transcript_size: int = 0
    last_output: float = 0.0  # wall-clock time of the last output seen since launch or adoption
    launched_at: float = 0.0
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    pending_prompt: bool = False  # the first prompt is still being delivered


class Watcher:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.meter = CpuMeter()
        self.last_tick_seconds: float | None = None
        self.server_id: str | None = None

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:
                log.exception("watch tick failed")
            self.last_tick_seconds = round(time.monotonic() - started, 4)
            stopping.wait(TICK_SECONDS)

    def adopt(self) -> None:
        """Take over the agents a previous engine left running: same panes, transcripts re-attached."""
        engine = self.engine
        panes = engine.tmux.list_panes()
        self.server_id = engine.tmux.server_id() if panes else None
        for agent in engine.store.agents():
            if not agent.state.live:
                continue
            engine.live[agent.name] = Live(
                transcript_size=size_of(engine.paths.transcript(agent.name)),
                last_output=agent.last_activity_at or 0.0,
                launched_at=agent.started_at,
            )
            pane = panes.get(agent.pane or "") if agent.extra.get("tmux_server") == self.server_id else None
            if pane is not None and not pane.dead:
                try:
                    engine.tmux.pipe_transcript(pane.pane, engine.paths.transcript(agent.name))
                except TmuxError as exc:
                    log.warning("%s: could not re-attach its transcript: %s", agent.name, exc)
            engine.store.append_event(agent.name, "adopted", pane=agent.pane, state=str(agent.state))
        self.tick()

    def tick(self) -> None:
        engine = self.engine
        engine.reload_config_if_changed()
        panes = engine.tmux.list_panes()
        self.server_id = engine.tmux.server_id() if panes else None
        snapshot = scan()
        agents = [a for a in engine.store.agents() if a.state.live]
        roots = [panes[a.pane].pid for a in agents if a.pane in panes and panes[a.pane].pid]
        usage = self.meter.usage(snapshot, [pid for pid in roots if pid is not None])
        now = time.time()
        for candidate in agents:
            lock = engine.try_agent_lock(candidate.name)
            if lock is None:
                continue  # an operation (start, send, stop) owns it right now
            try:
                agent = engine.store.get_agent(candidate.name)
                if agent is not None and agent.state.live:
                    self.evaluate(agent, panes, usage, now)
            finally:
                lock.release()

    def check_now(self, agent: Agent) -> None:
        """Evaluate one agent at once (the caller holds its lock)."""
        fresh = self.engine.store.get_agent(agent.name)
        if fresh is not None and fresh.state.live:
            panes = self.engine.tmux.list_panes()
            self.server_id = self.engine.tmux.server_id() if panes else None
            self.evaluate(fresh, panes, {}, time.time())

    def evaluate(self, agent: Agent, panes: dict[str, PaneInfo], usage: dict[int, TreeUsage], now: float) -> None:
        engine = self.engine
        live = engine.live.setdefault(agent.name, Live(last_output=agent.last_activity_at or 0.0,
                                                       launched_at=agent.started_at))
        same_server = agent.extra.get("tmux_server") == self.server_id
        pane = panes.get(agent.pane or "") if same_server else None
        if pane is None:
            server = "the tmux server ended" if not same_server else "its window was closed"
            agent.reason = f"its pane is gone ({server})"
            agent.exit_code = None
            engine.set_state(agent, State.EXITED, "exited", reason=agent.reason)
            fire(engine.store, agent, Trigger.EXITED, agent.reason)
            return
        if pane.dead:
            self._ended(agent, pane)
            return
        if pane.pid and pane.pid != agent.pid:
            agent.pid = pane.pid  # respawned outside supervisor
        transcript = engine.paths.transcript(agent.name)
        size = size_of(transcript)
        if size != live.transcript_size:
            live.transcript_size = size
            live.last_output = now
        if rotate_if_needed(transcript, engine.config.logs.max_bytes):
            live.transcript_size = size_of(transcript)
        tree = usage.get(pane.pid or -1)
        if tree is not None:
            live.cpu_percent, live.rss_bytes = tree.cpu_percent, tree.rss_bytes
        if live.pending_prompt or agent.state not in (State.STARTING, State.WORKING, State.IDLE):
            return
        new = self._activity_state(agent, live, now)
        if new != agent.state:
            previous = agent.state
            engine.set_state(agent, new, cpu_percent=round(live.cpu_percent, 1))
            if previous == State.WORKING and new == State.IDLE and agent.parent is None:
                fire(engine.store, agent, Trigger.DONE, "finished its turn and is waiting for the next instruction",
                     screen=engine.screen_tail(agent))

    def _activity_state(self, agent: Agent, live: Live, now: float) -> State:
        """working while output flows or the tree uses CPU; idle after `idle_after` of neither."""
        idle_after = self.engine.config.limits.idle_after
        busy_cpu = live.cpu_percent >= CPU_BUSY_PERCENT
        if not live.last_output:  # nothing printed since launch (or adoption)
            if busy_cpu:
                return State.WORKING
            quiet_since = live.launched_at
            if agent.state == State.STARTING:
                return State.STARTING if now - quiet_since < idle_after else State.IDLE
            return agent.state if now - quiet_since < idle_after else State.IDLE
        if busy_cpu or now - live.last_output < idle_after:
            return State.WORKING
        return State.IDLE

    def _ended(self, agent: Agent, pane: PaneInfo) -> None:
        engine = self.engine
        code = pane.dead_status
        if code is None:
            # tmux marks a pane dead when its terminal closes, and learns the exit status when it reaps
            # the process, a moment later: wait for the status rather than record an unknown one.
            if not _wait_status(engine, pane.pane):
                log.warning("%s: pane %s is dead without an exit status", agent.name, pane.pane)
            code = engine.tmux.list_panes().get(pane.pane, pane).dead_status
        screen = last_words(engine.paths.transcript(agent.name))
        agent.exit_code = code
        last = screen[-1] if screen else ""
        if agent.state == State.STARTING and code not in (0, None):
            agent.reason = f"exited {code} while starting" + (f": {last}" if last else "")
            engine.set_state(agent, State.FAILED, "failed", exit_code=code, reason=agent.reason, screen=screen)
            fire(engine.store, agent, Trigger.EXITED, f"failed to start: {agent.reason}", screen=screen,
                 exit_code=code)
        else:
            agent.reason = None if code == 0 else f"exited with code {code}" + (f": {last}" if last else "")
            engine.set_state(agent, State.EXITED, "exited", exit_code=code, reason=agent.reason, screen=screen)
            fire(engine.store, agent, Trigger.EXITED, agent.reason or "exited (code 0)", screen=screen,
                 exit_code=code)


def _wait_status(engine: Engine, pane: str, timeout: float = 2.0) -> bool:
    engine.tmux.reap()

    def known() -> bool:
        info = engine.tmux.list_panes().get(pane)
        return info is None or info.dead_status is not None

    return wait_for(known, timeout)
