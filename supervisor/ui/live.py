"""The dashboard's data flow: requests in threads, the long poll, recovery, and redrawing what changed.

It talks to the engine only through a `DataSource` (the client API), and never on its event loop: every
request runs in a thread of the loop's pool and hands its result back with `call_from_thread`. It
learns about changes from the engine's `changes` long poll (one daemon thread), refreshes `ls` when
something changed (and slowly anyway, for CPU and memory), `diffstat` every few seconds and when turns
end, and the preview of the selected pane twice a second. Tables are updated cell by cell, never rebuilt.
When the engine goes away, a banner says so, and the dashboard starts it again and carries on from the
same event id.

The layout, the keys and the actions are in `supervisor.ui.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from rich.text import Text
from textual import events, on
from textual.app import App
from textual.reactive import Reactive
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Input, RichLog, Select, Static

from supervisor.ui.actions import ACTIONS
from supervisor.ui.layout import SCROLLBAR, Split, cut, fit_columns, split
from supervisor.ui.model import (
    ATTENTION_LABELS,
    COLUMN_MIN_WIDTH,
    COLUMN_PRIORITY,
    COLUMNS,
    HOST_COLUMN,
    LIVE_STATES,
    LOCAL_HOST,
    TASK_MIN_WIDTH,
    Attention,
    Board,
    event_line,
    state_text,
)
from supervisor.ui.pacing import REDRAW_SECONDS, Pacer
from supervisor.ui.palette import palette
from supervisor.ui.pane import PaneView, screen_lines
from supervisor.ui.quietgc import QuietCollector
from supervisor.ui.screens import RefusalScreen
from supervisor.ui.source import LONG_POLL_SECONDS, DataSource, EngineDown, EngineSlow, NotAvailable, RequestFailed
from supervisor.ui.tables import AgentTable, AttentionTable
from supervisor.ui.taskboard import TASK_EVENTS, TaskBoardScreen, task_summary

T = TypeVar("T")

AGENT_TABLES = (AgentTable, AttentionTable)  # the tables whose cursor selects an agent (not the task board's)
TURN_ENDS = frozenset({"idle", "waiting", "exited", "failed", "stopped", "killed"})  # work may have landed
DIFFSTAT_GAP = 3.0
LONG_REFUSAL_LINES, LONG_REFUSAL_CHARS = 2, 160  # a refusal this long opens a dialog rather than a toast
SETTLE_SECONDS = 0.1  # the cursor stayed this long on an agent: fetch and draw its pane and events
HOST_EVENTS = frozenset({"host_down", "host_up", "host_removed"})  # a host's state changed: the banner follows


def _unexpected(future: asyncio.Future[None]) -> None:
    """A request's thread ended with an error it does not expect (its own are handed to the app): retrieved,
    so that asyncio does not report it as lost (a thread worker that failed was left as failed, too)."""
    if not future.cancelled():
        future.exception()


def hosts_banner(down: list[dict[str, Any]]) -> str:
    """`host box2 down: Connection refused · 2 agents unreachable`, one part per host down."""
    parts = []
    for row in down:
        agents = row.get("agents") or 0
        unreachable = f" · {agents} agent{'s' if agents != 1 else ''} unreachable" if agents else ""
        parts.append(f"host {row.get('name')} down: {row.get('error') or 'cannot be reached'}{unreachable}")
    return "  |  ".join(parts) + "  (supervisor hosts)"


class LiveDashboard(App[None]):
    """State, engine I/O and drawing; the subclass composes the widgets declared here."""

    # The counts in the header change with every agent's state: as the App's own reactive, each change would
    # repaint every widget of the screen (≈40 ms at 100 agents); the header watches it and repaints its title.
    sub_title: Reactive[str] = Reactive("", compute=False, repaint=False)

    banner: Static
    filter_input: Input
    state_select: Select[str]
    attention_table: AttentionTable
    agents_table: AgentTable
    preview: PaneView
    event_log: RichLog

    def __init__(self, source: DataSource, *, clock: Callable[[], float] = time.time, refresh_seconds: float = 2.0,
                 diffstat_seconds: float = 5.0, screen_seconds: float = 0.5, history: int = 500,
                 long_poll: float = LONG_POLL_SECONDS, settle_seconds: float = SETTLE_SECONDS,
                 remember_settings: bool = False, demo: bool = False, redraw_seconds: float = REDRAW_SECONDS) -> None:
        super().__init__()
        self.demo = demo  # the demo's dashboard: quitting asks whether to end the demo
        self.end_demo = False  # … and the answer was to end it
        self.remember_settings = remember_settings  # the theme kept in the user's config (`supervisor ui`)
        self.settle_seconds = settle_seconds
        self.source = source
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.diffstat_seconds = diffstat_seconds
        self.screen_seconds = screen_seconds
        self.history = history
        self.long_poll = long_poll
        self.board = Board()
        self.selected: str | None = None
        self.marked: set[str] = set()  # rows marked to act on together (supervisor.ui.marked)
        self.state_filter = "all"
        self.text_filter = ""
        self.events_scope = "agent"  # or "all"
        self.engine_down: str | None = None
        self.hosts: list[dict[str, Any]] = []  # the `hosts` rows, `local` first (supervisor.ui.hosts)
        self.hosts_down: list[dict[str, Any]] = []  # the `hosts` rows of hosts that are down (a banner says so)
        self.host_filter = "all"  # or a host's name: only its agents
        self.loaded = False  # the first listing arrived
        self.last_event = 0
        self.unavailable: set[str] = set()  # requests this engine said it does not have
        self.tasks: list[dict[str, Any]] | None = None  # the task board, once the engine listed it
        self.restore_offered: list[str] = []  # the agents last offered for restore: offered again once they change
        self._stopping = threading.Event()
        self._busy: dict[str, bool] = {}  # request kind -> in flight
        self._again: set[str] = set()  # request kinds asked for while in flight
        # Agents this app just started, with when: a listing asked before that does not know them yet.
        self._announced: dict[str, tuple[float, dict[str, Any]]] = {}
        self._preview_of: str | None = None
        self._preview_raw: str | None = None  # the capture shown, compared in threads to skip parsing
        self._titles: dict[str, tuple[str, str | None]] = {}
        self._split: Split | None = None
        self._cell_widths: dict[str, tuple[dict[str, Text], dict[str, int]]] = {}  # name -> (cells, their widths)
        self._diffstat_at = 0.0
        self._preview_ticks = 0
        self._diffstat_timer: Timer | None = None
        self._settle_timer: Timer | None = None
        self.events_of: str | None = None  # whose events the log shows (None: everyone's)
        self.events_shown: list[str] = []  # the event log's lines as text (a wrapped event is one line here)
        self.sync_seconds: list[float] = []  # how long each table refresh took (for the benchmark)
        self.collector = QuietCollector()
        self._input_at = time.monotonic()  # the last key press
        self._refreshed_at = 0.0  # the last redraw of the tables (monotonic)
        self._drawn_clock = 0.0  # … by the app's clock, and when an age it showed next changes (`_tick_ages`)
        self._ages_due = 0.0
        self._listed_at = 0.0  # the last listing received (monotonic)
        self.pacer = Pacer(self.set_timer, self._news_due, redraw_seconds)  # news drawn at most once per redraw_seconds
        self._acted_at: float | None = None  # the user's last action: the listing asked after it is drawn at once
        self._unlogged: list[dict[str, Any]] = []  # events come for the log, written with the next drawing
        self._logged_up_to = 0  # the newest event id in the log

    def start_feeds(self) -> None:
        """The long poll and the periodic refreshes (once the widgets are mounted)."""
        self._start_changes_loop()
        # Timers of the same period share one: each tick of a timer is a message through the app's event loop.
        self.set_interval(1.0, self._every_second)
        self.set_interval(self.refresh_seconds, self._listing_due)
        self.set_interval(self.diffstat_seconds, self._diffstat_and_silences)
        self.set_interval(self.screen_seconds, self._tick_preview)

    def _every_second(self) -> None:
        self._tick_ages()
        self.collector.tick(time.monotonic() - self._input_at)

    def _diffstat_and_silences(self) -> None:
        self.request_diffstat()
        self.request_silences()

    def apply_theme_colours(self) -> None:
        """States, badges and diffs in the colours of the theme now shown (`supervisor.ui.palette`): drawn
        again, rows and events (a cell compares equal whatever its colour, so the tables start afresh)."""
        self.board.set_palette(palette(self.get_css_variables()))
        if not self.loaded:
            return
        for table in (self.agents_table, self.attention_table):
            table.start_afresh()
        self.refresh_tables()
        self.load_events()

    def on_unmount(self) -> None:
        self._stopping.set()
        self.collector.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._input_at = time.monotonic()
        await super().on_event(event)

    # talking to the engine (always in threads) --------------------------------------------------------

    def _in_thread(self, kind: str, fetch: Callable[[], T], done: Callable[[T], None] | None = None,
                   *, coalesce: bool = False, background: bool = False,
                   failed: Callable[[str], None] | None = None) -> None:
        """Run `fetch` in a thread worker and hand its result to `done` on the event loop.

        With `coalesce`, a request of a kind already in flight is not sent twice: one more runs after it.
        A `background` read the engine does not offer is noted quietly (no notification, no retry). `failed`
        hears why there is no result (besides the usual notification), for a screen that waits for it."""
        if coalesce:
            if self._busy.get(kind):
                self._again.add(kind)
                return
            self._busy[kind] = True

        def work() -> None:
            down_before = self.engine_down is not None
            try:
                result = fetch()
            except (EngineDown, EngineSlow, NotAvailable, RequestFailed) as exc:
                if isinstance(exc, EngineDown):
                    self._from_thread(self._engine_lost, str(exc))
                elif isinstance(exc, EngineSlow):  # running but busy: no banner; an action says it may still finish
                    if not coalesce and not background:
                        self._from_thread(self._slow, exc)
                elif isinstance(exc, NotAvailable):
                    if background:
                        self.unavailable.add(exc.method)
                    else:
                        self._from_thread(self._not_available, exc.method)
                else:
                    self._from_thread(self._failed, exc)
                if failed is not None:
                    self._from_thread(failed, exc.message if isinstance(exc, RequestFailed) else str(exc))
            else:
                if down_before:  # asked while it was thought gone, and it answered: it is back
                    self._from_thread(self._engine_back)
                if done is not None:
                    self._from_thread(done, result)
            finally:
                if coalesce:
                    self._from_thread(self._finished, kind)

        # In the loop's pool of threads, as Textual's thread workers run, but without a worker: each of those
        # posted messages to the app as it started and ended, each dispatched up the app's classes, about half
        # a millisecond of the event loop per request (the preview alone asks twice a second).
        try:
            asyncio.get_running_loop().run_in_executor(None, work).add_done_callback(_unexpected)
        except RuntimeError:  # no event loop here (not running yet)
            self.run_worker(work, name=kind, group=kind, thread=True, exit_on_error=False)

    def _from_thread(self, callback: Callable[..., Any], *args: Any) -> None:
        if self._stopping.is_set():
            return
        # While the app closes, the loop may be gone (RuntimeError) or the widgets (NoMatches…): nobody to tell.
        with contextlib.suppress(Exception):
            self.call_from_thread(callback, *args)

    def _finished(self, kind: str) -> None:
        self._busy[kind] = False
        if kind in self._again:
            self._again.discard(kind)
            {"ls": self.request_ls, "diffstat": self.request_diffstat, "screen": self.request_screen,
             "silences": self.request_silences, "tasks": self.request_tasks,
             "restorable": self.request_restorable, "hosts": self.request_hosts}[kind]()

    def _start_changes_loop(self) -> None:
        self._changes_thread = threading.Thread(target=self._changes_loop, name="supervisor-changes", daemon=True)
        self._changes_thread.start()

    def _changes_loop(self) -> None:
        """First the listing and recent events, then a long poll on the event log for as long as the app
        runs; when the engine goes away, a banner, and the engine is started again.

        A daemon thread rather than a Textual worker: a long poll may be blocked for its whole timeout, and
        the app must be able to quit without waiting for it."""
        after: int | None = None
        down_since: float | None = None
        while not self._stopping.is_set():
            try:
                if down_since is not None:
                    try:
                        self.source.ensure_engine()
                    except EngineDown as exc:  # why a start failed says more than "not running": it stays shown
                        self._from_thread(self._engine_lost, str(exc), True)
                        self._stopping.wait(0.5 if time.monotonic() - down_since < 5 else 2.0)
                        continue
                    down_since = None
                    self._from_thread(self._engine_back)
                if after is None:
                    agents = self.source.call("ls")
                    events = list(self.source.call("events", {"limit": 500}))
                    after = max((int(e["id"]) for e in events), default=0)
                    self._from_thread(self._bootstrapped, agents, events)
                    continue
                result = self.source.call("changes", {"after": after, "timeout": self.long_poll},
                                          timeout=self.long_poll + 15)
            except EngineDown as exc:
                if down_since is None:
                    down_since = time.monotonic()
                self._from_thread(self._engine_lost, str(exc))
                self._stopping.wait(0.5 if time.monotonic() - down_since < 5 else 2.0)
                continue
            except EngineSlow as exc:
                # It took the request but has not answered: busy or stuck, not gone. Starting another engine
                # would be refused (one per repository), so only say so, and go on asking.
                if not self._answers_ping():
                    self._from_thread(self._engine_busy, str(exc))
                self._stopping.wait(0.5)
                continue
            except (NotAvailable, RequestFailed) as exc:
                self._from_thread(self._failed, RequestFailed(f"watching for changes: {exc}"))
                self._stopping.wait(self.refresh_seconds)
                continue
            if self.engine_down is not None:  # it answered after all
                self._from_thread(self._engine_back)
            events = list(result.get("events") or [])
            after = int(result.get("last", after))
            if events:
                self._from_thread(self._got_events, events)

    def _answers_ping(self) -> bool:
        try:
            self.source.call("ping", timeout=5.0)
        except EngineDown as exc:
            self._from_thread(self._engine_lost, str(exc))
            return False
        except (EngineSlow, NotAvailable, RequestFailed):
            return False
        return True

    def _bootstrapped(self, agents: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        self.board.apply_events(events)
        self.last_event = max((int(e["id"]) for e in events), default=0)
        self._got_agents(agents, at_once=True)
        everyone = self.events_scope == "all" or self.selected is None
        self._fill_events(events if everyone else [e for e in events if e.get("agent") == self.selected],
                          None if everyone else self.selected)
        self.request_diffstat()
        self.request_silences()
        self.request_tasks()
        self.request_restorable()
        self.request_hosts()
        self.call_after_refresh(self.collector.start)  # the heap as built: see supervisor.ui.quietgc

    def _tick_ages(self) -> None:
        """Time in state ticks locally, once a second: a redraw that just happened (a listing came) showed it.
        A tick is news like any other: drawn by the pacer, at most once per its gap. Only when an age shown
        changes its text (past its first minute, an agent's age changes once a minute), or while the task
        board, whose ages tick on their own, is open; a clock set back draws too."""
        now = self.clock()
        if self._drawn_clock <= now < self._ages_due and not isinstance(self.screen, TaskBoardScreen):
            return
        if time.monotonic() - self._refreshed_at >= 0.9:
            self.pacer.soon()

    def _listing_due(self) -> None:
        """The listing again for CPU and memory, unless one came since (changes bring one each)."""
        if time.monotonic() - self._listed_at >= self.refresh_seconds * 0.9:
            self.request_ls()

    def request_ls(self, *, acted: bool = False) -> None:
        """The listing; `acted`: it follows an action of the user's, whose effect is drawn as soon as listed."""
        if acted:
            self._acted_at = time.monotonic()

        def fetch() -> tuple[float, list[dict[str, Any]]]:
            asked = time.monotonic()
            return asked, list(self.source.call("ls"))

        self._in_thread("ls", fetch, lambda got: self._listed(*got), coalesce=True)

    def _listed(self, asked: float, agents: list[dict[str, Any]]) -> None:
        acted = self._acted_at is not None and asked >= self._acted_at
        if acted:
            self._acted_at = None
        self._got_agents(agents, asked=asked, at_once=acted)

    def announce(self, agent: dict[str, Any]) -> None:
        """An agent this app has just started: listed at once, and kept through listings asked before."""
        self._announced[str(agent["name"])] = (time.monotonic(), agent)
        # The board's own list, taken as older than the announcement: the agent is added to it.
        self._got_agents(list(self.board.agents.values()), asked=0.0, at_once=True)

    def request_diffstat(self) -> None:
        self._diffstat_at = time.monotonic()
        self._in_thread("diffstat", lambda: self.source.call("diffstat", timeout=60), self._got_diffstat,
                        coalesce=True)

    def _diffstat_soon(self) -> None:
        """A turn ended, so files probably changed: diff stats a moment later, but never more often than
        every DIFFSTAT_GAP seconds (the engine runs git only for the agents whose branch or worktree moved)."""
        if self._diffstat_timer is None:
            delay = max(1.0, self._diffstat_at + DIFFSTAT_GAP - time.monotonic())
            self._diffstat_timer = self.set_timer(delay, self._diffstat_due)

    def _diffstat_due(self) -> None:
        self._diffstat_timer = None
        self.request_diffstat()

    def request_silences(self) -> None:
        if "silences" not in self.unavailable:
            self._in_thread("silences", lambda: self.source.call("silences"), self._got_silences, coalesce=True,
                            background=True)

    def _got_silences(self, silences: list[dict[str, Any]]) -> None:
        before = self.board.silenced
        self.board.set_silences(silences)
        if self.board.silenced != before:
            self.refresh_tables()

    def request_tasks(self) -> None:
        if "task_ls" not in self.unavailable:
            self._in_thread("tasks", lambda: self.source.call("task_ls"), self._got_tasks, coalesce=True,
                            background=True)

    def _got_tasks(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = list(tasks)
        if isinstance(self.screen, TaskBoardScreen):
            self.refresh_tables()  # the board open shows them at once
        else:
            self.pacer.soon()

    def request_hosts(self) -> None:
        """The hosts' states: asked at the start and when a host goes up or down (its events say so)."""
        if "hosts" not in self.unavailable:
            self._in_thread("hosts", lambda: self.source.call("hosts"), self._got_hosts, coalesce=True,
                            background=True)

    def _got_hosts(self, rows: list[dict[str, Any]]) -> None:
        shown = self.show_hosts
        self.hosts = list(rows)
        self.hosts_down = [row for row in rows if row.get("state") == "down"]
        self._show_banner()
        self.hosts_changed()
        if self.show_hosts != shown and self.loaded:
            self.refresh_tables()  # the Host column comes (or goes)

    @property
    def show_hosts(self) -> bool:
        """Whether hosts are there to show (a Host column, a host filter): supervisor.yaml names one besides
        this machine, or an agent runs on one."""
        return len(self.hosts) > 1 or any(host != LOCAL_HOST for host in self.board.hosts())

    def hosts_changed(self) -> None:
        """The hosts or the agents' hosts changed (the app's: supervisor.ui.hosts)."""

    def _show_banner(self) -> None:
        """The hosts' banner while one is down (the engine's own banner, while it is away, comes first)."""
        if self.engine_down is not None:
            return
        if not self.hosts_down:
            self.banner.remove_class("-down")
            return
        self.banner.update(hosts_banner(self.hosts_down))
        self.banner.add_class("-down")

    def request_restorable(self, *, asked: bool = False) -> None:
        """Agents whose panes went with the tmux server: offered for restore once per set when `limits.restore`
        is `ask` (`asked`: the human asked, whatever the setting)."""
        if "restorable" not in self.unavailable:
            self._in_thread("restorable", lambda: self.source.call("restorable"),
                            lambda found: self.offer_restore(found, asked=asked), coalesce=not asked,
                            background=not asked)

    def offer_restore(self, found: dict[str, Any], *, asked: bool) -> None:
        """Show the offer (the app's)."""

    def request_screen(self) -> None:
        name = self.selected
        if name is None:
            return
        history = self.history

        def fetch() -> tuple[str, dict[str, Any], list[Text] | None]:
            screen = self.source.call("screen", {"name": name, "history": history, "ansi": True})
            raw = str(screen.get("text") or "")
            # Parsing the colours is the costly part: done here, off the event loop, and only on change.
            unchanged = self._preview_of == name and raw == self._preview_raw
            return name, screen, None if unchanged else screen_lines(raw)

        self._in_thread("screen", fetch, self._got_screen, coalesce=True)

    def _tick_preview(self) -> None:
        """Capture the selected pane again: every tick while it works, every fourth while it waits or idles
        (each capture costs the engine two tmux calls), never once it has ended."""
        agent = self.board.agents.get(self.selected or "")
        self._preview_ticks += 1
        if agent is None or agent.get("state") not in LIVE_STATES or self._settle_timer is not None:
            return  # (the cursor is passing by: its pane is fetched once it settles)
        if agent.get("state") in ("working", "starting") or self._preview_ticks % 4 == 0:
            self.request_screen()

    # results ------------------------------------------------------------------------------------------

    def _got_agents(self, agents: list[dict[str, Any]], asked: float | None = None, *, at_once: bool = False) -> None:
        """A listing, asked at `asked` (monotonic; None: now): agents announced after it was asked and
        missing from it are kept; a listing asked later is believed. Drawn with the next news (`at_once`: now)."""
        listed = {str(a["name"]) for a in agents}
        for name, (at, record) in list(self._announced.items()):
            if asked is not None and at > asked:
                if name not in listed:
                    agents = [*agents, record]
            else:
                del self._announced[name]
        if self.loaded and not at_once and agents == list(self.board.agents.values()):
            self._listed_at = time.monotonic()  # what is shown already (CPU and memory listed again, unchanged)
            return
        hosts = self.board.hosts()
        self.board.set_agents(agents)
        if self.board.hosts() != hosts:
            self.hosts_changed()  # an agent on a host not seen before (or the last one there gone)
        first = not self.loaded
        self.loaded = True
        self._listed_at = time.monotonic()
        if at_once or first:
            self.refresh_tables()
        else:
            self.pacer.soon()

    def _got_diffstat(self, stats: dict[str, dict[str, int]]) -> None:
        if stats == self.board.diffstat:
            return  # nothing moved: no redraw
        self.board.set_diffstat(stats)
        self.pacer.soon()

    def _news_due(self) -> None:
        if self.loaded and self.screen_stack and not self._stopping.is_set():  # (not while the app closes)
            self.refresh_tables()

    def _got_events(self, events: list[dict[str, Any]]) -> None:
        self.last_event = max(self.last_event, *(int(e["id"]) for e in events))
        self.board.apply_events(events)
        self._unlogged.extend(events)
        self.pacer.soon()
        for event in events:
            if event.get("kind") == "config_invalid":  # no agent's: it would show only in the "all" events
                self.notify(f"{event.get('error')}\nThe engine keeps the configuration it read before.",
                            title="supervisor.yaml not applied", severity="error", timeout=15)
        self.request_ls()
        if any(e.get("kind") in TASK_EVENTS for e in events):
            self.request_tasks()
        if any(e.get("kind") in HOST_EVENTS for e in events):
            self.request_hosts()
        if any(e.get("kind") == "exited" and e.get("restorable") for e in events):
            self.request_restorable()  # the tmux server ended under a running dashboard: the offer, now
        if any(e.get("kind") in ("created", "removed", "launched")
               or (e.get("kind") == "state" and e.get("state") in TURN_ENDS) for e in events):
            self._diffstat_soon()

    def _got_screen(self, result: tuple[str, dict[str, Any], list[Text] | None]) -> None:
        name, screen, lines = result
        if name != self.selected:
            return
        new_agent = self._preview_of != name
        self._preview_of = name
        if not screen.get("available"):
            self._preview_raw = None
            self.preview.message(f"{name} has no pane any more; `supervisor log {name}` shows its transcript")
        elif lines is not None:
            self._preview_raw = str(screen.get("text") or "")
            self.preview.show(self._preview_raw, lines, reset=new_agent)

    def _engine_lost(self, reason: str, start_failed: bool = False) -> None:
        """The engine is gone: a banner with why. A failed start's reason replaces "not running", and is not
        replaced by the "not running" other requests keep meeting meanwhile (the banner would flicker)."""
        if self.engine_down is None or start_failed:
            self.engine_down = reason
        banner = self.banner
        banner.update(f"engine restarting…  ({self.engine_down})")
        banner.add_class("-down")

    def _engine_busy(self, reason: str) -> None:
        """The engine runs but does not answer: a banner until it does (nothing to restart)."""
        if self.engine_down is None:
            self.engine_down = reason
        self.banner.update(f"engine not answering…  ({reason}; it is running, busy or stuck)")
        self.banner.add_class("-down")

    def _slow(self, exc: EngineSlow) -> None:
        self.notify(f"{exc}: it may still be doing it; its events will say so", title="Still waiting",
                    severity="warning", timeout=8)

    def _engine_back(self) -> None:
        if self.engine_down is None:
            return
        self.engine_down = None
        self._show_banner()
        self.notify("the engine is back", timeout=3)
        self.request_ls()
        self.request_diffstat()
        self.request_screen()
        self.request_tasks()
        self.request_restorable()  # a new engine: the tmux server may have gone with the old one
        self.request_hosts()

    def _not_available(self, method: str) -> None:
        self.unavailable.add(method)
        action = next((a for a in ACTIONS if a.name == method or (a.cli or "").split(" ")[1:2] == [method]), None)
        command = f"`{action.cli.split(' NAME')[0]}`" if action and action.cli else method
        self.notify(f"{command} is not available yet: this engine has no {method} request", title="Not available",
                    severity="warning")

    def _failed(self, exc: RequestFailed) -> None:
        """A refusal: a short one as a notification; a long one (a merge audit's findings) in a dialog that
        stays until dismissed, since a notification would vanish before it was read."""
        text = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
        if exc.message.count("\n") >= LONG_REFUSAL_LINES or len(exc.message) > LONG_REFUSAL_CHARS:
            self.push_screen(RefusalScreen("Refused", text))
            return
        self.notify(text, title="Failed", severity="error", timeout=8)

    # drawing ------------------------------------------------------------------------------------------

    def refresh_tables(self) -> None:
        """Draw the tables, their titles and the header from what is known now, and log the events that came."""
        started = time.perf_counter()
        self._refreshed_at = time.monotonic()
        self.pacer.drawn()
        now = self.clock()
        visible = self.board.visible(self.state_filter, self.text_filter, self.host_filter)
        self.marked &= set(self.board.agents)
        rows = [(name, self._marked(name, self.board.cells(name, now, context_only=context)))
                for name, context in visible]
        self.agents_table.show_columns(self._agent_columns(rows))
        self.agents_table.sync(rows)
        items = self.board.attention()
        self.attention_table.sync(self._attention_rows(items, now))
        self._drawn_clock = now
        self._ages_due = self.board.ages_change_at([*(name for name, _ in visible), *(item.name for item in items)],
                                                   now)
        self._title(self.attention_table, f"Needs you ({len(items)})" if items else "Needs you (nothing now)")
        self.apply_layout()
        total = len(self.board.agents)
        shown = f"{len(visible)} of {total}" if len(visible) != total else str(total)
        self._title(self.agents_table, f"Agents ({shown})")
        live = sum(1 for a in self.board.agents.values() if a.get("state") in LIVE_STATES)
        tasks = task_summary(self.tasks)
        self.sub_title = f"{total} agents · {live} live · {len(items)} need you · {self.board.total_cost} spent" + (
            f" · {tasks}" if tasks else "")
        if isinstance(self.screen, TaskBoardScreen):
            self.screen.show(self.tasks or [])  # its ages tick too, while it is open
        if self.selected not in self.board.agents:
            self._select(self.agents_table.current_key or (items[0].name if items else None))
        self._update_preview_title()
        self._log_news()
        self.sync_seconds.append(time.perf_counter() - started)
        del self.sync_seconds[:-1000]

    def apply_layout(self) -> None:
        """Rows for "Needs you", the agents and the preview (`supervisor.ui.layout`), set only when they change."""
        rows = split(self.size.height, len(self.board.order))
        if rows != self._split:
            self._split = rows
            self.attention_table.styles.height = rows.needs
            self.agents_table.styles.height = rows.agents

    def _marked(self, name: str, cells: dict[str, Text]) -> dict[str, Text]:
        """A marked row's cells: its name after a mark (a copy: the board's cells stay as they are)."""
        if name not in self.marked:
            return cells
        mark = Text("● ", style=self.board.palette.mark)
        mark.append_text(cells["name"])
        return {**cells, "name": mark}

    def _agent_columns(self, rows: list[tuple[str, dict[str, Text]]]) -> list[tuple[str, int]]:
        """The agents list's columns and their widths for this screen (`supervisor.ui.layout.fit_columns`):
        each as wide as its widest value or header; the task takes the rest, never a sideways scroll."""
        needed = {key: max(len(label), COLUMN_MIN_WIDTH.get(key, 0)) for key, label in COLUMNS}
        for name, cells in rows:
            widths = self._cell_widths.get(name)
            if widths is None or widths[0] is not cells:
                # A changed row mostly holds the same cells as before (`Board.cells`): only new ones are measured.
                was, known = widths if widths is not None else ({}, {})
                widths = (cells, {key: known[key] if was.get(key) is value else value.cell_len
                                  for key, value in cells.items()})
                self._cell_widths[name] = widths
            for key, width in widths[1].items():
                if width > needed[key]:
                    needed[key] = width
        if len(self._cell_widths) > 2 * len(rows) + 100:
            shown = {name for name, _ in rows}
            self._cell_widths = {name: found for name, found in self._cell_widths.items() if name in shown}
        room = self.size.width - 2 - SCROLLBAR
        hidden = () if self.show_hosts else (HOST_COLUMN,)
        return fit_columns([key for key, _ in COLUMNS if key not in hidden],
                           [key for key in COLUMN_PRIORITY if key not in hidden], needed, room, flexible="task",
                           flexible_min=TASK_MIN_WIDTH)

    def _attention_rows(self, items: list[Attention], now: float) -> list[tuple[str, dict[str, Text]]]:
        """The rows of "Needs you", each reason cut with … to the width the other columns leave: a long
        question never makes the list scroll sideways. The other columns' widths depend on the screen and the
        agents' names only, not on the items: a change of widths redraws the whole table."""
        table = self.attention_table
        widths = {"name": max([len("Agent"), *(len(name) for name in self.board.order)]),
                  "kind": max(len(label) for label in ATTENTION_LABELS.values()), "for": len("1h30m")}
        for column, width in widths.items():
            table.fix_width(column, width)
        room = max(self.size.width - 2 - SCROLLBAR - sum(w + 2 for w in widths.values()) - 2, 8)
        table.fix_width("reason", room)
        rows = []
        for item in items:
            label = ATTENTION_LABELS[item.kind]
            rows.append((item.name, {"name": Text(item.name, style="bold"),
                                     "kind": Text(label, style=self.board.palette.badge(label)),
                                     "for": self.board.age_cell(item.name, now),
                                     "reason": Text(cut(item.reason.splitlines()[0] if item.reason else "", room))}))
        return rows

    def _fill_events(self, events: Iterable[dict[str, Any]], owner: str | None) -> None:
        self.events_of = owner
        self.event_log.clear()
        self.events_shown.clear()
        self._logged_up_to = 0
        for event in events:
            self._write_event(event)

    def _log_news(self) -> None:
        """The events that came since the last drawing, those of the log's agent (or all), each once."""
        news, self._unlogged = self._unlogged, []
        for event in news:
            if self.events_of is None or event.get("agent") == self.events_of:
                self._write_event(event)

    def _write_event(self, event: dict[str, Any]) -> None:
        number = int(event.get("id") or 0)
        if number and number <= self._logged_up_to:
            return  # already there (the log was filled since it came)
        self._logged_up_to = max(self._logged_up_to, number)
        line = event_line(event, with_agent=self.events_scope == "all", palette=self.board.palette)
        self.event_log.write(line)
        self.events_shown.append(line.plain)
        del self.events_shown[:-1000]

    def _title(self, widget: Widget, title: str, subtitle: str | None = None) -> None:
        """Set a border title only when it changes: setting one repaints the whole widget (a 100-row table)."""
        if self._titles.get(widget.id or "") != (title, subtitle):
            self._titles[widget.id or ""] = (title, subtitle)
            widget.border_title = title
            if subtitle is not None:
                widget.border_subtitle = subtitle

    def _update_preview_title(self) -> None:
        agent = self.board.agents.get(self.selected or "")
        title = "Preview" if agent is None else f"{self.selected} — {state_text(agent, self.board.palette).plain}"
        self._title(self.preview, title, "p: scroll history · ⏎: attach" if agent is not None else "")

    def _update_events_title(self) -> None:
        scope = "all agents" if self.events_scope == "all" or self.selected is None else self.selected
        self._title(self.event_log, f"Events — {scope}", "e: agent/all")

    def load_events(self) -> None:
        name = None if self.events_scope == "all" else self.selected
        self._update_events_title()

        def fetch() -> list[dict[str, Any]]:
            # Enough to fill the panel and scroll back a little: writing a line into the log renders it at once,
            # on the event loop, and this runs on every move of the cursor.
            return list(self.source.call("events", {"name": name, "limit": 60 if name else 150}))

        def done(events: list[dict[str, Any]]) -> None:
            if name == (None if self.events_scope == "all" else self.selected):
                self._fill_events(events, name)

        self._in_thread("events", fetch, done)

    # selection ----------------------------------------------------------------------------------------

    def _select(self, name: str | None) -> None:
        """The cursor is on `name`: its name and state show at once; its pane and its events once the cursor
        has settled there (`settle_seconds`), so running down the list does not fetch and draw each agent's."""
        if name == self.selected:
            return
        first = self.selected is None
        self.selected = name
        self._update_preview_title()
        if self._settle_timer is not None:
            self._settle_timer.stop()
            self._settle_timer = None
        if name not in self.board.agents:
            self.preview.message("no agent selected")
        if first:
            self._settled()
        else:
            self._settle_timer = self.set_timer(self.settle_seconds, self._settled)

    def _settled(self) -> None:
        self._settle_timer = None
        if self.selected in self.board.agents:
            self.request_screen()
        if self.events_scope == "agent":
            self.load_events()

    def select_agent(self, name: str) -> None:
        """Highlight `name` in the agent list (clearing a filter that hides it) and focus the list."""
        if name not in self.board.agents:
            return
        if not self.agents_table.select_key(name):
            self._set_state_filter("all")
            self.filter_input.value = ""
            self.text_filter = ""
            self.host_filter = "all"
            self.hosts_changed()
            self.refresh_tables()
            self.agents_table.select_key(name)
        self.agents_table.focus()
        self._select(name)

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if not isinstance(table, AGENT_TABLES) or table.name_of(event.row_key) != table.current_key:
            return  # the cursor has moved on since (a sync, or a selection made in code): stale news
        if table.has_focus or self.selected is None:
            self._select(table.name_of(event.row_key))

    @on(DataTable.RowSelected, "#attention")
    def _attention_chosen(self, event: DataTable.RowSelected) -> None:
        self.select_agent(self.attention_table.name_of(event.row_key))

    def on_descendant_focus(self) -> None:
        """The table taking the focus takes the one cursor shown: the agent under it is the one every key acts
        on. (Focus on the preview or the filter leaves the cursor where it was.)"""
        focused = self.focused
        if isinstance(focused, AGENT_TABLES):
            for table in (self.agents_table, self.attention_table):
                table.show_cursor = table is focused
            if focused.current_key is not None:
                self._select(focused.current_key)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.text_filter = event.value
        self.refresh_tables()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.agents_table.focus()

    @on(Select.Changed, "#state")
    def _state_changed(self, event: Select.Changed) -> None:
        self.state_filter = str(event.value)
        self.refresh_tables()

    def _set_state_filter(self, value: str) -> None:
        self.state_filter = value
        self.state_select.value = value
