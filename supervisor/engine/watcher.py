"""The watch loop: once a tick, every agent's pane, process tree and output, turned into states.

A tick costs one `tmux list-panes -a` (which also tells, per window, when it last printed, and per pane, how
many lines scrolled into its history), one more query for the screens of the panes that may have printed
since the last look and the history lines the transcripts lack, and a look at the process trees of the
agents whose state may hang on their CPU right now: working agents whose screen showed no progress this
tick (a silent test run is progress, a spinner is not). Every SLOW_CHECK_EVERY ticks all trees are read
(CPU and memory for `ls`, a quiet agent's tools waking up) along with the costlier checks. Ticks run at a
fixed rate and never overlap (a slow tick delays the next one).

What decides an agent's state, strongest first:
1. a dialog on its screen (waiting: a hook may arrive seconds later, or never for an unknown dialog);
2. the CLI's own hook events (Claude Code), once it has sent any;
3. the profile's screen markers, newest line first;
4. activity: output that changed the screen's content, or CPU used by its tools.
Progress (for `stalled`) is content that changed, a hook event, or CPU of the tools the agent runs; a
spinner that keeps animating during a hung request is not progress.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from supervisor.agents import get_profile
from supervisor.agents.base import Profile
from supervisor.agents.limits import around
from supervisor.agents.screens import Reading, ScreenRules, Verdict
from supervisor.agents.session_ids import valid
from supervisor.core.durations import format_duration
from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.engine import limits as limit_records
from supervisor.engine import restart_cap, sandbox_faults, undelivered
from supervisor.engine.changes import RefWatch
from supervisor.engine.delivery import wait_for
from supervisor.engine.hostticks import HostTicks
from supervisor.engine.once import last_hook
from supervisor.engine.panes import SOCKET_GONE, TMUX_ENDED, WINDOW_CLOSED
from supervisor.engine.processes import CpuMeter, Snapshot, scan
from supervisor.engine.records import AgentRecords
from supervisor.engine.screentext import strip_ansi
from supervisor.engine.server_ended import ServerEnded
from supervisor.engine.sites import Site, local_site, site_of
from supervisor.engine.slow_checks import SlowChecks
from supervisor.engine.transcripts import last_words
from supervisor.engine.turns import Turns
from supervisor.hostsconfig import LOCAL
from supervisor.hostside.history import new_lines
from supervisor.tmux.server import PaneInfo, Scrolled

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
CPU_BUSY_PERCENT = 3.0  # tools using more than this are working even when silent (a long test run)
# Ticks start on a fixed grid, but their clock is read after the tick's tmux query, which takes a few ms more
# or less each time: progress seen at one tick and a deadline a whole number of ticks later would otherwise
# fall one tick late about half the time.
TICK_JITTER = 0.1
SETTLE_SECONDS = 1.0  # an idle screen counts once it has been still this long
MAX_BACKOFF = 60.0
SLOW_CHECK_EVERY = 5  # ticks between the costlier checks (every tree's CPU, escapes, deadlocks)
_CPU_DECIDES = (State.WORKING, State.STALLED, State.STARTING)  # states whose next step may hang on tool CPU
# States in which a look that found nothing new and no tree read leaves the decision to the clock alone (see
# `Watcher._unchanged`); the others may hang on tool CPU read every tick.
_QUIET_STATES = (State.IDLE, State.WAITING)
_STATES = {Verdict.WORKING: State.WORKING, Verdict.IDLE: State.IDLE, Verdict.WAITING: State.WAITING}


@dataclass
class Live:
    """What the engine measures of a live agent; not stored, rebuilt on adoption."""

    activity: int = -1  # its window's last output (whole seconds) when its screen was last captured
    looked: int = 0  # the whole second of the tick that last captured its screen
    history: int = 0  # its pane's history lines at that capture
    scrolled: int = 0  # lines that scrolled off its screen since launch: numbers screen rows for errors
    counted: set[tuple[int, str]] = field(default_factory=set)  # error lines already counted (row, text)
    size: str = ""  # its pane's size at that capture: a new one rewraps the rows (`_look_at_output`)
    last_output: float = 0.0  # wall-clock time of the last output seen since launch or adoption
    last_progress: float = 0.0  # content changed, a hook event, or its tools used CPU
    launched_at: float = 0.0
    cpu_percent: float = 0.0
    tool_cpu_percent: float = 0.0
    rss_bytes: int = 0
    pids: tuple[int, ...] = ()
    pending_prompt: bool = False  # the first prompt is still being delivered
    ready: bool = False  # its input box was seen ready since launch (a text typed earlier may be lost)
    progress_key: str | None = None
    reading: Reading = field(default_factory=lambda: Reading(None))
    reading_since: float = 0.0
    screen_changed_at: float = 0.0  # when a look last saw its content change (not spinners, not a first look)
    hook_state: State | None = None  # the state the CLI's hooks last reported
    hook_reason: str | None = None
    last_hook: float = 0.0
    prompted_at: float = 0.0  # when its hook last reported a prompt taken (UserPromptSubmit)
    worked_at: float = 0.0  # when its hook last told of a turn (running, asking, or ended by a Stop), even late
    turns: Turns = field(default_factory=Turns)  # prompts taken and queued, as its hooks told
    session_id: str | None = None  # the CLI's own id of its conversation, as its hooks told
    errors: dict[str, deque[float]] = field(default_factory=dict)
    screen: str | None = None  # the last screen captured (evidence for events, without another capture)
    adopted: bool = False  # rebuilt by a new engine: its first look at the screen is not news
    # Resumed: the CLI prints its old conversation again (its old screen may still show meanwhile); no error
    # in it is new, until a new turn starts.
    replaying: bool = False
    timing_out: bool = False  # its timeout kill is under way (in memory: a new engine, or a failed kill, retries)
    limit_notices: list[tuple[str, float]] = field(default_factory=list)  # limits its hooks told, not yet applied
    # Until when a tick with nothing new for it need not judge it again (`Watcher._unchanged`), and what its
    # judgement depended on then.
    quiet_until: float = 0.0
    quiet_key: tuple[object, ...] | None = None


@dataclass(frozen=True)
class Look:
    """What one query brought back: screens, and history lines new to the transcripts, by pane."""

    second: int  # the whole second of the listing the look followed
    screens: dict[str, str]
    scrolled: dict[str, Scrolled]


class Watcher:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.meter = CpuMeter()
        self.last_tick_seconds: float | None = None
        self.ticks = 0
        self._records = AgentRecords(engine.store)
        self.server_ended = ServerEnded(engine)
        self.refs = RefWatch(engine.store, engine.paths.common_dir, engine.folders)
        self.hosts = HostTicks(self, TICK_SECONDS)  # agents on hosts: a tick per host, in threads of their own
        self.slow_checks = SlowChecks(engine, self._locked)

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            started = time.monotonic()
            try:
                self.engine.disk.retry()  # what a full disk or a read-only folder refused, until it takes it
                self.hosts.tend(stopping)
                self.tick()
            except Exception:
                log.exception("watch tick failed")
            self.last_tick_seconds = round(time.monotonic() - started, 4)
            # A fixed rate, never overlapping: the next tick starts a period after this one started, or at
            # once when this one took longer.
            stopping.wait(max(0.0, TICK_SECONDS - (time.monotonic() - started)))
        self.engine.transcripts.close()

    def adopt(self, progress: Callable[[int, int], None] = lambda done, of: None) -> None:
        """Take over the agents a previous engine left running: same panes, transcripts continued. `progress`
        is told how many of them are done, as it goes."""
        engine = self.engine
        panes = engine.tmux.list_panes()
        agents = [agent for agent in engine.store.agents() if agent.state.live and watched_here(agent)]
        for done, agent in enumerate(agents):
            progress(done, len(agents))
            live = engine.live[agent.name] = self.fresh_live(agent)
            hooked = last_hook(engine.store, agent.name)  # maybe recorded and never applied (a kill between)
            if hooked is not None:
                live.hook_state, live.hook_reason, live.last_hook = hooked
            pane = engine.panes.own(agent, panes)
            if pane is not None:
                engine.transcripts.adopt(agent.name, pane.server, pane.pane, pane.history)
            engine.store.append_event(agent.name, "adopted", pane=agent.pane, state=str(agent.state))
        progress(len(agents), len(agents))
        self.tick()

    def fresh_live(self, agent: Agent) -> Live:
        seen = agent.last_activity_at or 0.0
        # Becoming idle (or waiting) is no progress: counting it as such would read an agent adopted just
        # after it went idle as working again for idle_after.
        progress = seen if agent.state in (State.IDLE, State.WAITING) else max(seen, agent.state_since)
        return Live(last_output=seen, last_progress=progress, launched_at=agent.started_at, adopted=True,
                    session_id=valid(agent.extra.get("session_id")))

    # the tick --------------------------------------------------------------------------------------------

    def tick(self) -> None:
        # The services that wait for the store's changes wake once for the tick's writes, not once per write.
        with self.engine.store.notices_held():
            self._tick()

    def _tick(self) -> None:
        engine = self.engine
        engine.reload_config_if_changed()
        engine.ingest_spool_if_changed()
        observed = time.time()
        panes = engine.tmux.list_panes()
        self.server_ended.tend(panes)
        agents, versions = self._records.read()
        live_agents = [a for a in agents if a.state.live and watched_here(a)]
        owned = {a.name: engine.panes.own(a, panes) for a in live_agents}
        roots = [info.pid for info in owned.values() if info and info.pid]
        slow = self.ticks % SLOW_CHECK_EVERY == 0
        snapshot = scan(roots) if slow else None  # every tree; between slow ticks, only the trees needed
        self.meter.forget(roots)
        looks = self._looks(live_agents, owned)
        screens, scrolled = engine.tmux.look([pane for pane, _due in looks.values()],
                                             {pane: due for pane, due in looks.values() if due})
        now = time.time()
        for candidate in live_agents:
            look = Look(int(observed), screens, scrolled) if candidate.name in looks else None
            trees = snapshot
            pane = owned.get(candidate.name)
            if look is None and self._unchanged(candidate, versions.get(candidate.name, 0), pane, now):
                if snapshot is None or pane is None or self._quiet_tree(candidate, pane, snapshot, now):
                    continue
                trees = None  # metered just now: judged by what that found
            self._locked(candidate.name,
                         lambda agent, seen=look, read=trees: self.evaluate(agent, panes, now, observed, seen, read),
                         read=(candidate, versions.get(candidate.name, 0)))
        self.server_ended.settle()
        for candidate in agents:
            due = candidate.extra.get("restart_at")
            if candidate.state == State.EXITED and due and float(due) <= now:
                self._locked(candidate.name, self._restart_due)
        # A moved ref wakes the services that depend on refs (the conflict radar).
        self.refs.look(agents, self._records.written)
        self.ticks += 1
        if snapshot is not None:
            self.slow_checks.run(snapshot, live_agents, panes)

    def tick_site(self, site: Site, agents: list[Agent],
                  processes: Callable[[list[int]], Snapshot | None] | None = None, slow: bool = False,
                  versions: dict[str, int] | None = None) -> None:
        """One tick for the live agents of a host (`site`), judged as the local tick judges its own: one listing,
        one look at the screens that may have printed, then each agent under its lock. `processes`: the trees of
        panes' processes there, read by one request (engine/hostprocs.py) for the rules that use CPU: every
        tree on a `slow` tick, else those of agents whose state may hang on their tools' CPU now. `versions`: each
        record's store version as read, when known: a record not written since is judged as read, not decoded
        again."""
        engine = self.engine
        observed = time.time()
        panes = site.tmux.list_panes()
        owned = {agent.name: site.panes.own(agent, panes) for agent in agents}
        snapshot = None
        if processes is not None:
            roots = [info.pid for info in owned.values() if info is not None and info.pid]
            if slow:
                self.hosts.meter(site.host).forget(roots)
            else:
                roots = [info.pid for agent in agents if (info := owned[agent.name]) is not None and info.pid
                         and agent.state in _CPU_DECIDES and agent.name in engine.live
                         and engine.live[agent.name].last_progress < observed - TICK_SECONDS]
            snapshot = processes(roots) if roots else None
        for agent in agents:
            info = owned[agent.name]
            if agent.name not in engine.live and info is not None:  # an engine started since it was launched
                engine.live[agent.name] = self.fresh_live(agent)
                engine.transcripts.adopt(agent.name, info.server, info.pane, info.history)
        looks = self._looks(agents, owned)
        screens, scrolled = site.tmux.look([pane for pane, _due in looks.values()],
                                           {pane: due for pane, due in looks.values() if due})
        now = time.time()
        for candidate in agents:
            look = Look(int(observed), screens, scrolled) if candidate.name in looks else None
            # A tree read for others tells nothing of this one (its CPU stays as last read): judged as if none was.
            info = owned[candidate.name]
            measured = snapshot is not None and info is not None and info.pid in snapshot.procs
            if look is None and not measured \
                    and self._unchanged(candidate, engine.store.version(candidate.name), info, now):
                continue
            read = versions.get(candidate.name) if versions is not None else None
            self._locked(candidate.name,  # its record read again under its lock, unless not written since
                         lambda agent, seen=look: self.evaluate(agent, panes, now, observed, seen, snapshot, site),
                         read=None if read is None else (candidate, read))
        self.server_ended.settle()

    def _unchanged(self, agent: Agent, version: int, pane: PaneInfo | None, now: float) -> bool:
        """Whether judging the agent again this tick would find what the last judgement found: it printed
        nothing, no tree was read, nothing it is judged by changed (its record, its hooks, its approvals, the
        configuration), and no deadline of its (settling, idle_after, stall_after, its timeout) came since. A
        quiet agent then costs nothing per tick."""
        live = self.engine.live.get(agent.name)
        if live is None or live.quiet_key is None or now >= live.quiet_until or agent.state not in _QUIET_STATES:
            return False
        if pane is None or pane.dead or (pane.pid and pane.pid != agent.pid):
            return False
        return live.quiet_key == self._quiet_key(agent, version, live)

    def _quiet_key(self, agent: Agent, version: int, live: Live) -> tuple[object, ...]:
        """What a judgement of a quiet agent depends on, besides the clock (see `_decide`)."""
        return (version, self.engine.config, agent.state, live.hook_state, live.hook_reason, live.last_hook,
                live.pending_prompt, bool(live.limit_notices), live.last_progress, live.last_output, live.reading,
                live.reading_since, live.screen_changed_at, live.session_id, live.timing_out, live.launched_at,
                live.tool_cpu_percent >= CPU_BUSY_PERCENT, self.engine.approvals.pending(agent.name) is None)

    def _quiet_tree(self, agent: Agent, pane: PaneInfo, snapshot: Snapshot, now: float) -> bool:
        """On a tick that read every tree, for an agent `_unchanged` found quiet: its tree metered (CPU and memory,
        each tree metered since its own last reading), and whether its tools stayed under CPU_BUSY_PERCENT, so that
        judging it would find what the last judgement found. When they did not, it is judged (with what this
        metering found: metering twice from one snapshot would read no CPU at all)."""
        lock = self.engine.try_agent_lock(agent.name)
        if lock is None:
            return True  # an operation owns it right now: left for the next tick, as a judgement would be
        try:
            live = self.engine.live.get(agent.name)
            if live is None:
                return False
            self._meter(live, get_profile(agent.profile), pane, snapshot, local_site(self.engine), now)
            return live.tool_cpu_percent < CPU_BUSY_PERCENT
        finally:
            lock.release()

    def _settle_quiet(self, agent: Agent, live: Live, now: float) -> None:
        """After a judgement: until when the clock alone cannot change it (the earliest deadline still ahead),
        for an agent in a quiet state with no limit or undelivered task (their checks have clocks of their own)."""
        live.quiet_until, live.quiet_key = 0.0, None
        if agent.state not in _QUIET_STATES or limit_records.KEY in agent.extra or undelivered.MARK in agent.extra:
            return
        limits = self.engine.config.limits
        deadlines = [max(live.reading_since, live.last_progress) + SETTLE_SECONDS,
                     live.launched_at + limits.idle_after, live.last_progress + limits.idle_after,
                     max(live.last_progress, live.last_hook) + self._stall_after(agent) - TICK_JITTER]
        timeout = self.engine.timeout_of(agent)
        if timeout is not None:
            deadlines.append(agent.started_at + timeout)
        live.quiet_until = min((at for at in deadlines if at > now), default=math.inf)
        live.quiet_key = self._quiet_key(agent, self.engine.store.version(agent.name), live)

    def _looks(self, agents: list[Agent], owned: dict[str, PaneInfo | None]) -> dict[str, tuple[str, int]]:
        """Per agent worth a look this tick: its pane (`owned`: each one's, as this tick listed it), and how many
        history lines its transcript lacks.

        Worth a look: never looked at, or its window may have printed since the last look. tmux tells a
        window's last output in whole seconds, so output in the same second as the last look counts as
        maybe: the screen is captured again and compared."""
        wanted = {}
        for agent in agents:
            live = self.engine.live.get(agent.name)
            info = owned.get(agent.name)
            if info is None or info.dead:
                continue
            if live is None or live.progress_key is None or info.activity != live.activity \
                    or info.activity >= live.looked or info.history != live.history:
                if not self.engine.host_transcripts.catch_up(agent, info):  # what its host kept comes first
                    wanted[agent.name] = (info.pane, 0)
                    continue
                self.engine.resync_transcript(agent, info)
                due = self.engine.transcripts.due(agent.name, info.server, info.pane, info.history,
                                                  info.history_limit)
                wanted[agent.name] = (info.pane, due)
        return wanted

    def _locked(self, name: str, action: object, read: tuple[Agent, int] | None = None) -> bool:
        """Run `action` on the agent's current record under its lock (skipped while an operation holds it:
        False). `read`: the record as the tick read it, and its version then, used when still current."""
        lock = self.engine.try_agent_lock(name)
        if lock is None:
            return False  # an operation (start, send, stop) owns it right now
        try:
            if read is not None and self.engine.store.version(name) == read[1]:
                agent: Agent | None = read[0]
            else:
                agent = self.engine.store.get_agent(name)
            if agent is not None:
                action(agent)  # type: ignore[operator]
        finally:
            lock.release()
        return True

    def check_now(self, agent: Agent) -> None:
        """Evaluate one agent at once (the caller holds its lock)."""
        fresh = self.engine.store.get_agent(agent.name)
        if fresh is not None and fresh.state.live:
            site = site_of(self.engine, fresh)
            self.evaluate(fresh, site.tmux.list_panes(), time.time(), site=site)
            self.server_ended.settle()

    def decide_now(self, name: str) -> None:
        """Re-decide one agent's state from what is known (after a hook event; the caller holds its lock)."""
        agent = self.engine.store.get_agent(name)
        live = self.engine.live.get(name)
        if agent is None or live is None or not agent.state.live or live.pending_prompt \
                or agent.state == State.UNREACHABLE:  # its host's return judges it (engine/readopt.py)
            return
        self._decide(agent, live, get_profile(agent.profile), time.time())

    def evaluate(self, agent: Agent, panes: dict[str, PaneInfo], now: float, observed: float | None = None,
                 look: Look | None = None, snapshot: Snapshot | None = None, site: Site | None = None) -> None:
        """Judge one agent from a tick's observations (the caller holds its lock). `snapshot`: every tree,
        when this tick read them all. `site`: where `panes` were listed (this machine's tmux by default)."""
        site = site or local_site(self.engine)
        if not agent.state.live or agent.host != site.host:
            return
        if observed is not None and agent.started_at >= observed:
            return  # (re)launched after the panes were listed: the next tick sees it as it is
        engine = self.engine
        live = engine.live.get(agent.name)
        if live is None:
            live = engine.live[agent.name] = self.fresh_live(agent)
        pane = site.panes.own(agent, panes)
        if pane is None or pane.dead:  # confirm an ending with a fresh look before recording it
            panes = site.tmux.list_panes()
            pane = site.panes.own(agent, panes)
        if pane is None:
            why = site.panes.why_gone(agent, panes)
            if why == SOCKET_GONE:
                self.server_ended.socket_gone(agent)  # it runs on: not ended, and the server gets its socket back
                return
            if not site.local:  # what its host kept of it while out of reach, if it did, closes its transcript
                engine.host_transcripts.take(agent)
            # The last screen seen is the best left of it: this engine's look, or else (an engine started since
            # the pane went) its live screen as the engine that watched it last wrote it down.
            engine.transcripts.end(agent.name, agent.pane or "", None, 0,
                                   None if live.screen is None else live.screen.splitlines())
            if why == TMUX_ENDED:
                self.server_ended.found(agent)  # ended with the others it took, at the end of the tick
                return
            agent.reason = f"its pane is gone ({WINDOW_CLOSED})"
            agent.exit_code = None
            engine.approvals.drop(agent.name, agent.reason)
            with engine.store.transaction():
                engine.set_state(agent, State.EXITED, "exited", reason=agent.reason)
                fire(engine.store, agent, Trigger.EXITED, agent.reason)
            return
        if pane.dead:
            self._ended(agent, pane, now, site)
            return
        if pane.pid and pane.pid != agent.pid:
            agent.pid = pane.pid  # respawned outside supervisor
        live.quiet_key = None  # judged again below, or ended: the next tick judges it whatever happens
        profile = get_profile(agent.profile)
        self._measure(agent, live, profile, pane, now, look, snapshot, site)
        if self._timed_out(agent, now):
            return
        if live.pending_prompt:
            return
        self._decide(agent, live, profile, now)
        self._settle_quiet(agent, live, now)

    # measuring -------------------------------------------------------------------------------------------

    def _measure(self, agent: Agent, live: Live, profile: Profile, pane: PaneInfo, now: float, look: Look | None,
                 snapshot: Snapshot | None, site: Site) -> None:
        if look is not None or live.progress_key is None:
            self._look_at_output(agent, live, profile, pane, now, look)
        progressed = live.last_progress == now
        if site.local and snapshot is None and pane.pid and agent.state in _CPU_DECIDES and not progressed:
            snapshot = scan([pane.pid])  # its tools' CPU may be all that keeps it from idle or stalled
        if snapshot is not None:
            self._meter(live, profile, pane, snapshot, site, now)

    def _meter(self, live: Live, profile: Profile, pane: PaneInfo, snapshot: Snapshot, site: Site,
               now: float) -> None:
        """The agent's tree as `snapshot` read it: its CPU since its last reading, and memory; tools that used
        CPU are progress."""
        if not pane.pid or (not site.local and pane.pid not in snapshot.procs):
            return  # its CPU and memory as last read, a few ticks ago at most (a host's: its tree not read now)
        meter = self.meter if site.local else self.hosts.meter(site.host)
        tree = meter.measure(snapshot, pane.pid)
        live.cpu_percent, live.rss_bytes, live.pids = tree.cpu_percent, tree.rss_bytes, tree.pids
        live.tool_cpu_percent = tree.tools_percent(profile.cli_processes) if profile.cli_processes \
            else tree.cpu_percent
        if live.tool_cpu_percent >= CPU_BUSY_PERCENT:
            live.last_progress = now

    def _look_at_output(self, agent: Agent, live: Live, profile: Profile, pane: PaneInfo, now: float,
                        look: Look | None) -> None:
        """What the pane printed since the last look: its screen (the transcript's live screen), the lines that
        scrolled off it (into the transcript), and errors among them."""
        engine = self.engine
        if look is None:  # a look outside the tick (check_now)
            screen, taken = engine.look_at(agent, pane)
            look = Look(int(time.time()), {} if screen is None else {pane.pane: screen},
                        {} if taken is None else {pane.pane: taken})
        screen = look.screens.get(pane.pane)
        if screen is None:
            return  # gone since the listing: the next tick sees how it ended
        scrolled = look.scrolled.get(pane.pane)
        history = pane.history if scrolled is None else scrolled.size  # the latter taken with the screen
        lines = [] if scrolled is None else engine.transcripts.append(agent.name, pane.pane, scrolled,
                                                                      pane.history_limit)
        engine.transcripts.show(agent.name, pane.pane, history, screen, agent.profile)  # written when it changed
        first = live.progress_key is None
        # A new size (a user attached from another terminal, a helper's pane split off) rewraps the history
        # and moves rows between it and the screen: what is on the screen then was seen already.
        resized = bool(live.size) and pane.size != live.size
        moved = 0 if first or resized else new_lines(live.history, history, pane.history_limit)
        printed = bool(screen.strip() or lines) if first else screen != live.screen or moved > 0
        live.scrolled += moved
        live.activity, live.looked, live.history, live.size = pane.activity, look.second, history, pane.size
        # What shows after a resize, a resumed conversation's replay or an engine's restart was seen already.
        if (resized or live.replaying or live.adopted) and profile.screen is not None:
            live.counted = {(live.scrolled + index, line) for index, line in enumerate(screen.split("\n"))
                            if _matches(profile.screen, line)}
        elif printed and not live.adopted and profile.screen is not None \
                and (lines or profile.screen.may_hold_errors(screen)):
            self._count_errors(agent, live, profile, lines or [], screen, now)
        if printed and not live.adopted:
            live.last_output = now
        live.screen = screen
        key = profile.screen.progress_key(screen) if profile.screen is not None else f"{live.scrolled}:{hash(screen)}"
        reading = profile.read(screen)
        if reading.verdict in (Verdict.WORKING, Verdict.WAITING):
            live.replaying = False  # a new turn: what it prints from now on is new
        if live.adopted:  # what the screen shows was already there before the engine came back
            live.adopted = False
            # An idle agent's idle screen had settled before it was recorded idle.
            settled = agent.state == State.IDLE and reading.verdict == Verdict.IDLE
            live.progress_key, live.reading = key, reading
            live.reading_since = 0.0 if settled else agent.state_since
            return
        if key != live.progress_key:
            if live.progress_key is not None:  # a first look finds the screen, it does not see it change
                live.screen_changed_at = now
            live.progress_key = key
            live.last_progress = now
        if reading.verdict != live.reading.verdict:
            live.reading_since = now
        live.reading = reading

    def _count_errors(self, agent: Agent, live: Live, profile: Profile, scrolled: list[str], screen: str,
                      now: float) -> None:
        """Error lines printed since the last look: `errors` when one repeats; a limit line makes the agent
        `limited` (engine/limits.py), it is no error.

        A line counts once where it was printed: the screen's rows are numbered from the pane's start (lines
        scrolled off before them), so a line still on screen at the next look is not counted again, and of
        the lines that scrolled off, only those that passed between two looks are new."""
        rules = profile.screen
        assert rules is not None
        # Of the lines that scrolled off, the oldest were on the last screen seen; the rest passed unseen.
        seen_rows = live.screen.count("\n") + 1 if live.screen is not None else 0
        # Every row printed since the last look, oldest first: a limit's reset may be worded on the rows after it.
        rows = [*map(strip_ansi, scrolled[seen_rows:]), *screen.split("\n")]
        unseen = len(rows) - screen.count("\n") - 1
        fresh = [index for index in range(unseen) if _matches(rules, rows[index])]
        live.counted = {(row, text) for row, text in live.counted if row >= live.scrolled}
        if rules.may_hold_errors(screen):
            for index, line in enumerate(screen.split("\n")):
                if (live.scrolled + index, line) not in live.counted and _matches(rules, line):
                    live.counted.add((live.scrolled + index, line))
                    fresh.append(unseen + index)
        hits = [index for index in fresh if any(p.search(rows[index]) for p in rules.limits)]
        if hits:
            self.engine.limits.seen(agent, [rows[index] for index in hits], [around(rows, index) for index in hits],
                                    now, working=rules.read(screen).verdict == Verdict.WORKING)
        for line in (rows[index] for index in fresh if index not in hits):
            for pattern in rules.errors:
                if not pattern.search(line):
                    continue
                limits = self.engine.config.limits
                seen = live.errors.setdefault(pattern.pattern, deque())
                seen.append(now)
                while seen and seen[0] < now - limits.error_window:
                    seen.popleft()
                if len(seen) >= limits.error_repeats:
                    seen.clear()
                    within = format_duration(limits.error_window)
                    fire(self.engine.store, agent, Trigger.ERRORS,
                         f"the same error {limits.error_repeats} times within {within}: {line.strip()}",
                         rule=pattern.pattern, line=line.strip(), screen=self.engine.screen_tail(agent))

    # deciding --------------------------------------------------------------------------------------------

    def _decide(self, agent: Agent, live: Live, profile: Profile, now: float) -> None:
        if live.session_id and agent.extra.get("session_id") != live.session_id:
            agent.extra["session_id"] = live.session_id
            self.engine.store.save_agent(agent, "session", session_id=live.session_id)
        reading = live.reading
        rule: str | None
        if live.hook_state is not None and self._idle_since_last_hook(live, now) \
                and self.engine.approvals.pending(agent.name) is None:  # a held request waits, whatever shows
            live.hook_state = live.hook_reason = None  # the screen decides until the next hook event
            live.turns.settled()
        if reading.verdict == Verdict.WAITING:
            new, rule, reason = State.WAITING, reading.rule, reading.reason
        elif live.hook_state is not None:
            new, rule, reason = live.hook_state, "hook", live.hook_reason
        elif reading.verdict == Verdict.WORKING:
            new, rule, reason = State.WORKING, reading.rule, None
        elif reading.verdict == Verdict.IDLE:
            # An idle screen must settle before it ends a turn; an idle agent whose idle screen changes (a
            # passing footer notice, the footer's hints going) stays idle: no turn began.
            settled = agent.state == State.IDLE or now - max(live.reading_since, live.last_progress) >= SETTLE_SECONDS
            new, rule, reason = (State.IDLE if settled else State.WORKING), reading.rule, None
        elif profile.screen is not None and live.last_output:
            # A CLI we can read showed neither an idle nor a waiting screen: unsure, so working (and,
            # without progress, stalled). Idle must be seen, never guessed from quiet.
            new, rule, reason = State.WORKING, "no idle marker", None
        else:
            new, rule, reason = self._by_activity(agent, live, now), "activity", None
        waits = undelivered.still_waiting(agent, new, rule)  # its task could not be typed into it: not idle
        if waits is not None:
            new, rule, reason = State.WAITING, undelivered.MARK, waits
        limited = self.engine.limits.holds(agent, live, now)  # whatever its screen shows, a limit holds it
        if limited is not None:
            new, rule, reason = State.LIMITED, "limit", limited
        if new == State.WORKING or (new == State.STALLED and agent.state == State.STALLED):
            stall_after = self._stall_after(agent)
            if now - max(live.last_progress, live.last_hook) >= stall_after - TICK_JITTER:
                new, rule = State.STALLED, "no output, hook event or tool CPU"
        if new == State.IDLE:
            live.turns.settled()  # whatever its hooks counted, no turn runs now
        if new == agent.state and (new != State.WAITING or agent.waiting_reason) \
                and (new != State.LIMITED or agent.waiting_reason == reason):
            return  # still waiting: the first reason (the most specific, e.g. the tool call) stands
        self._transition(agent, live, new, rule, reason, now)

    @staticmethod
    def _idle_since_last_hook(live: Live, now: float) -> bool:
        """Whether the screen changed after the last hook event and now shows idle, settled (a screen idle
        all along says nothing of the hook's turn). Claude Code sends no hook when a turn ends
        by Esc or by a No in its own dialog (tests/fixtures/claude/README.md): the last event would
        otherwise keep the agent working or waiting."""
        return live.reading.verdict == Verdict.IDLE and live.screen_changed_at > live.last_hook \
            and now - max(live.reading_since, live.last_progress) >= SETTLE_SECONDS

    def _by_activity(self, agent: Agent, live: Live, now: float) -> State:
        """working while output flows or the tree uses CPU; idle after `idle_after` of neither."""
        idle_after = self.engine.config.limits.idle_after
        busy = live.tool_cpu_percent >= CPU_BUSY_PERCENT
        if not live.last_output:  # nothing printed since launch (or adoption)
            if busy:
                return State.WORKING
            quiet_for = now - live.launched_at
            if agent.state in (State.STARTING, State.IDLE):
                return agent.state if quiet_for < idle_after else State.IDLE
            return State.WORKING if quiet_for < idle_after else State.IDLE
        if busy or now - live.last_progress < idle_after:
            return State.WORKING
        return State.IDLE

    def _stall_after(self, agent: Agent) -> float:
        override = agent.extra.get("stall_after")
        return float(override) if override else self.engine.config.limits.stall_after

    def _transition(self, agent: Agent, live: Live, new: State, rule: str | None, reason: str | None,
                    now: float) -> None:
        engine = self.engine
        previous = agent.state
        screen = engine.screen_tail(agent, 10) if new in (State.WAITING, State.STALLED, State.LIMITED) else []
        pending = new == State.IDLE and bool(agent.extra.get("pending_task") or agent.extra.get("inbox"))
        # A helper's `done` goes to its parent unless alerts.helper_done says otherwise (the router decides).
        done = new == State.IDLE and not pending and previous in (State.WORKING, State.STALLED)
        done_screen = engine.screen_tail(agent) if done else []
        agent.waiting_reason = reason if new in (State.WAITING, State.LIMITED) else None
        with engine.store.transaction():  # a reader never sees the state without the triggers it fired
            engine.set_state(agent, new, rule=rule, reason=reason, screen=screen or None,
                             cpu_percent=round(live.cpu_percent, 1))
            if previous == State.WAITING and new != State.WAITING:
                fire(engine.store, agent, Trigger.WAITING, "no longer waiting", active=False)
            if previous == State.STALLED and new != State.STALLED:
                fire(engine.store, agent, Trigger.STALLED, f"active again ({new})", active=False)
            if new == State.WAITING:
                fire(engine.store, agent, Trigger.WAITING, f"waiting: {reason or 'needs a human'}", screen=screen,
                     rule=rule, reason=reason)
            elif new == State.STALLED:
                silent = format_duration(now - max(live.last_progress, live.last_hook))
                fire(engine.store, agent, Trigger.STALLED, f"no progress for {silent}", screen=screen, rule=rule)
            elif done:
                fire(engine.store, agent, Trigger.DONE, "finished its turn and is waiting for the next instruction",
                     screen=done_screen)
        if new == State.STALLED and engine.config.limits.on_stall == "interrupt":
            engine.interrupt(agent)
        elif new == State.STALLED and engine.config.limits.on_stall == "restart":
            threading.Thread(target=engine.restart_quietly, args=(agent.name,), daemon=True).start()
        elif pending:
            threading.Thread(target=engine.deliver_pending, args=(agent.name,), daemon=True).start()

    def _timed_out(self, agent: Agent, now: float) -> bool:
        timeout = self.engine.timeout_of(agent)
        if timeout is None or now - agent.started_at < timeout:
            return False
        live = self.engine.live.get(agent.name)
        if live is None or live.timing_out:
            return True
        live.timing_out = True
        threading.Thread(target=self._kill_for_timeout, args=(agent.name, live, timeout), daemon=True).start()
        return True

    def _kill_for_timeout(self, name: str, live: Live, timeout: float) -> None:
        try:
            self.engine.kill_for_timeout(name, timeout)
        except Exception:  # a process that survived SIGKILL, tmux gone: the next tick tries again
            log.exception("%s: the timeout kill failed", name)
        finally:
            live.timing_out = False

    # endings and restarts -------------------------------------------------------------------------------

    def _ended(self, agent: Agent, pane: PaneInfo, now: float, site: Site) -> None:
        engine = self.engine
        code = pane.dead_status
        if code is None:
            # tmux marks a pane dead when its terminal closes, and learns the exit status when it reaps
            # the process, a moment later: wait for the status rather than record an unknown one.
            if not _wait_status(site, agent):
                log.warning("%s: pane %s is dead without an exit status", agent.name, pane.pane)
            code = (site.panes.own(agent) or pane).dead_status
        engine.end_transcript(agent)
        engine.approvals.drop(agent.name, "it exited")  # a request its hook held is answered by nobody now
        screen = last_words(engine.paths.transcript(agent.name))
        last = screen[-1] if screen else ""
        agent.exit_code = code
        starting = agent.state == State.STARTING and code not in (0, None)
        unmade = sandbox_faults.not_started(engine, agent) if starting else None  # never restarted: said once
        if starting:
            agent.reason = unmade or f"exited {code} while starting" + (f": {last}" if last else "")
        else:
            agent.reason = None if code == 0 else f"exited with code {code}" + (f": {last}" if last else "")
        delay = None if unmade else self._restart_delay(agent, code, now)
        capped = restart_cap.refusal(agent, engine.config.limits, now) if delay is not None else None
        if capped is not None:  # however long each run lasted: no restart storm
            delay = None
            agent.reason = f"{agent.reason or 'exited'}; not restarted: {capped}; `supervisor restart " \
                           f"{agent.name}` starts it again"
            engine.store.append_event(agent.name, "not_restarted", why=capped, policy="restart policy")
        if delay is None:
            if agent.extra.get("gave_up"):
                agent.reason = f"{agent.reason or 'exited'}; gave up after {agent.extra['gave_up']} quick restarts"
            final = State.FAILED if starting or agent.extra.get("gave_up") else State.EXITED
            summary = f"failed: {agent.reason}" if final == State.FAILED else agent.reason or "exited (code 0)"
            with engine.store.transaction():
                engine.set_state(agent, final, str(final), exit_code=code, reason=agent.reason, screen=screen)
                fire(engine.store, agent, Trigger.EXITED, summary, screen=screen, exit_code=code)
            return
        agent.extra["restart_at"] = now + delay
        engine.set_state(agent, State.EXITED, "exited", exit_code=code, reason=agent.reason, screen=screen,
                         restart_in=round(delay, 1))

    def _restart_delay(self, agent: Agent, code: int | None, now: float) -> float | None:
        """Seconds until the restart policy starts the agent again, or None when it will not."""
        limits = self.engine.config.limits
        policy = agent.extra.get("restart") or limits.restart
        if policy == "never" or (policy == "on-failure" and code == 0):
            return None
        quick = now - agent.started_at < limits.start_seconds
        failures = int(agent.extra.get("quick_exits", 0)) + 1 if quick else 0
        agent.extra["quick_exits"] = failures
        if failures > limits.max_restarts:
            agent.extra["gave_up"] = failures - 1
            return None
        return min(MAX_BACKOFF, 2.0 ** failures) if failures else 1.0

    def _restart_due(self, agent: Agent) -> None:
        if agent.state != State.EXITED or not agent.extra.pop("restart_at", None):
            return
        self.engine.relaunch(agent, reason="restart policy")


def watched_here(agent: Agent) -> bool:
    """Whether the local tick judges the agent: one on this machine. An agent on another host is judged by its
    host's own tick (`HostTicks`), from that host's panes: they are not among this tmux server's, and a local
    look would end it."""
    return agent.host == LOCAL


def _matches(rules: ScreenRules, line: str) -> bool:
    return any(p.search(line) for p in (*rules.limits, *rules.errors))


def _wait_status(site: Site, agent: Agent, timeout: float = 2.0) -> bool:
    site.tmux.reap()

    def known() -> bool:
        info = site.panes.own(agent)
        return info is None or info.dead_status is not None

    return wait_for(known, timeout)
