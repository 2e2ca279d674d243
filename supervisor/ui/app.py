"""The dashboard: every agent as a tree, what needs a human, a live preview of the selected pane, events.

This module is the layout, the keys and what they do; how data flows in (threads, the long poll, recovery)
and how it is drawn is `supervisor.ui.live`. Every action is also a CLI command (`supervisor.ui.actions`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, Select, Static

from supervisor.paths import RepoPaths
from supervisor.repositories import SEPARATOR, qualify
from supervisor.ui import settings
from supervisor.ui.actions import ACTIONS, BY_NAME
from supervisor.ui.footer import FittedFooter, fit
from supervisor.ui.header import SteadyHeader
from supervisor.ui.hostchoice import Refused, Started, start_request
from supervisor.ui.hosts import ALL_HOSTS, HostActions
from supervisor.ui.marked import MarkedActions
from supervisor.ui.model import LIVE_STATES, STATE_FILTERS
from supervisor.ui.pane import PaneView
from supervisor.ui.review import CompareScreen, DiffScreen
from supervisor.ui.screens import (
    ConfirmScreen,
    HelpScreen,
    NewHelperScreen,
    NewSessionScreen,
    PromptScreen,
    RestoreScreen,
)
from supervisor.ui.source import RequestFailed
from supervisor.ui.steady import SteadyLog
from supervisor.ui.tables import AgentTable, AttentionTable, SyncTable
from supervisor.ui.taskboard import TaskBoardScreen

if TYPE_CHECKING:
    from supervisor.tmux.attach import AttachPlan

LONG_REQUEST_SECONDS = 3600.0  # requests that may run long (merge): a result late is still a result


class AgentCommands(Provider):
    """The command palette's "go to an agent" entries."""

    def _entries(self) -> list[tuple[str, str]]:
        app = self.app
        assert isinstance(app, SupervisorApp)
        return [(name, str(app.board.agents[name].get("task") or "")) for name in app.board.order]

    async def discover(self) -> Hits:
        app = self.app
        assert isinstance(app, SupervisorApp)
        for name, task in self._entries():
            yield DiscoveryHit(f"Go to {name}", partial(app.select_agent, name), help=task)

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, SupervisorApp)
        matcher = self.matcher(query)
        for name, task in self._entries():
            title = f"Go to {name}"
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(app.select_agent, name), help=task)


class SupervisorApp(MarkedActions, HostActions):
    TITLE = "supervisor"
    COMMANDS = App.COMMANDS | {AgentCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(a.key, a.name, a.footer_label, show=a.footer, tooltip=a.help) for a in ACTIONS),
        Binding("escape", "leave_input", "Back", show=False),
    ]
    CSS: ClassVar[str] = """
    #banner { height: 1; padding: 0 1; background: $error; color: $text; text-style: bold; display: none; }
    #banner.-down { display: block; }
    #filters { height: 1; padding: 0 1; }
    #filters Label { width: auto; color: $text-muted; padding-right: 1; }
    #filter { width: 1fr; }
    #state { width: 24; margin-left: 1; }
    #host { width: 20; margin-left: 1; display: none; }
    SyncTable, #preview, #events { border: round $foreground 30%; border-title-color: $foreground;
                                   border-subtitle-color: $foreground 70%; }
    SyncTable { background: $surface; }
    SyncTable:focus { border: round $accent; }
    #attention { height: 8; border: round $error; overflow-x: hidden; }
    #attention:focus { border: round $accent; }
    #agents { height: 12; }
    #bottom { height: 1fr; min-height: 5; }
    #preview { width: 3fr; }
    #preview:focus { border: round $accent; }
    #events { width: 2fr; background: $surface; scrollbar-size-vertical: 1; }
    #events:focus { border: round $accent; }
    """

    # layout -------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: `query_one` searches the active screen, which may be a modal form.
        self.banner = Static("", id="banner")
        self.filter_input = Input(placeholder="text in name, task, state or reason   (/)", id="filter", compact=True)
        self.state_select = Select([(label, value) for value, label in STATE_FILTERS], value="all",
                                   allow_blank=False, id="state", compact=True)
        self.host_select = Select([("all hosts", ALL_HOSTS)], value=ALL_HOSTS, allow_blank=False, id="host",
                                  compact=True)  # shown while there are hosts (supervisor.ui.hosts)
        self.attention_table = AttentionTable(id="attention")
        self.agents_table = AgentTable(id="agents")
        self.preview = PaneView(id="preview")
        self.event_log = SteadyLog(id="events", max_lines=1000, wrap=True, min_width=20, markup=False,
                                 auto_scroll=True)
        yield SteadyHeader(icon="◆")
        yield self.banner
        with Horizontal(id="filters"):
            yield Label("Filter")
            yield self.filter_input
            yield self.state_select
            yield self.host_select
        yield self.attention_table
        yield self.agents_table
        with Horizontal(id="bottom"):
            yield self.preview
            yield self.event_log
        self.footer = FittedFooter()
        yield self.footer

    def on_resize(self, event: events.Resize) -> None:
        """The footer's keys as many as fit, each whole (supervisor.ui.footer)."""
        self.footer.apply(fit(((a.name, self.get_key_display(Binding(a.key.split(",")[0], a.name)), a.footer_label)
                               for a in ACTIONS if a.footer), event.size.width))
        self.apply_layout()
        if self.loaded:
            self.refresh_tables()  # long reasons cut again to the new width

    def on_mount(self) -> None:
        self.title = f"supervisor — {self.source.title}"
        self._remember_theme()
        self.apply_theme_colours()
        self.theme_changed_signal.subscribe(self, lambda _: self.apply_theme_colours())
        self.attention_table.show_cursor = False  # one row is selected: the agents list's, until focus moves
        self._title(self.attention_table, "Needs you")
        self.apply_layout()
        self._title(self.agents_table, "Agents")
        self._title(self.preview, "Preview")
        self.preview.message("select an agent to see its pane")
        self._update_events_title()
        self.agents_table.focus()
        self.start_feeds()

    def _remember_theme(self) -> None:
        """The theme chosen last time (ctrl+p, "Change theme"), and every change of it saved for next time."""
        if not self.remember_settings:
            return
        saved, problem = settings.load()
        if problem:
            self.notify(problem, title="Settings", severity="warning", timeout=6)
        theme = saved.get("theme")
        if isinstance(theme, str) and theme in self.available_themes:
            self.theme = theme

        def changed(theme: Any) -> None:
            problem = settings.save(theme=theme.name)
            if problem:
                self.notify(problem, title="Settings", severity="warning", timeout=6)

        self.theme_changed_signal.subscribe(self, changed)

    # actions ------------------------------------------------------------------------------------------

    def _agent(self) -> str | None:
        if self.selected is None or self.selected not in self.board.agents:
            self.notify("select an agent first", severity="warning", timeout=3)
            return None
        return self.selected

    def _request(self, method: str, params: dict[str, Any], done: str | Callable[[Any], None] | None = None,
                 timeout: float | None = 120) -> None:
        """An action's request; on success a short notification (or `done`), then a refresh."""

        def finish(result: Any) -> None:
            if callable(done):
                done(result)
            elif done:
                self.notify(done, timeout=3)
            self.request_ls(acted=True)

        self._in_thread(method, lambda: self.source.call(method, params, timeout=timeout), finish)

    def _unavailable_now(self, method: str) -> bool:
        if method in self.unavailable:
            self._not_available(method)
            return True
        return False

    @on(DataTable.RowSelected, "#agents")
    def _agent_chosen(self, event: DataTable.RowSelected) -> None:
        self._select(self.agents_table.name_of(event.row_key))
        self.action_attach()

    def action_attach(self) -> None:
        name = self._agent()
        if name is None:
            return

        def plan() -> AttachPlan:
            from supervisor.tmux.attach import plan_for

            info = self.source.call("attach_info", {"name": name})
            try:  # reads the user's tmux (prefix, version, client): in this thread, not on the event loop
                planned = plan_for(info)  # an agent on a host: over ssh, as `supervisor attach`
            except (OSError, subprocess.SubprocessError) as exc:
                raise RequestFailed(f"cannot attach to {name}: {exc}") from exc
            return planned

        self._in_thread("attach", plan, partial(self._attach_to, name))

    def _attach_to(self, name: str, plan: AttachPlan) -> None:
        """Hand the terminal to tmux on the agent's pane until the user detaches, like `supervisor attach`
        (see `supervisor.tmux.attach`: from inside the user's own tmux, a popup of it)."""
        if plan.how == "switch":  # the dashboard runs in supervisor's own tmux: switch this client
            self._in_thread("attach", lambda: subprocess.run(plan.argv, check=False, capture_output=True))
            return
        try:
            with self.suspend():
                subprocess.run(plan.argv, check=False, env=plan.env)
        except SuspendNotSupported:
            self.notify(f"attaching needs a terminal: run `supervisor attach {name}`", severity="warning")
            return
        self.request_ls(acted=True)
        self._preview_of = None
        self.request_screen()

    def action_new_session(self) -> None:
        where = self.source.repository_of(self.selected)  # `ui --all`: the selected agent's repository

        def qualified(form: dict[str, Any]) -> str:
            return str(form["name"]) if where is None else qualify(where, str(form["name"]))

        def start(form: dict[str, Any], answered: Callable[[Started | Refused], None]) -> None:
            params = {**form, "name": qualified(form)}
            self._in_thread("start", lambda: start_request(self.source.call, params), answered,
                            failed=lambda why: answered(Refused(why)))

        def submitted(form: dict[str, Any] | None) -> None:
            if form is not None:
                self._started(qualified(form), form["agent"])

        hosts = self.hosts if self.show_hosts and where is None else None  # `ui --all`: each repository has its own
        self.push_screen(NewSessionScreen(where, hosts, start), submitted)
        self.request_hosts()  # fresh places for the next form

    def _started(self, name: str, agent: dict[str, Any]) -> None:
        self.notify(f"{name}: {agent.get('state')} in {agent.get('worktree')}", timeout=4)
        if name not in self.board.agents:
            self.announce({**agent, "name": name})
        self.request_ls(acted=True)
        self.call_after_refresh(self.select_agent, name)

    def action_new_helper(self) -> None:
        parent = self._agent()
        if parent is None or self._unavailable_now("helper"):
            return

        def submitted(form: dict[str, Any] | None) -> None:
            if form is not None:
                self._request("helper", form, f"{parent}.{form['name']}: started")

        self.push_screen(NewHelperScreen(parent), submitted)

    def action_send(self) -> None:
        if self.act_on_marked("send"):
            return
        name = self._agent()
        if name is None:
            return

        def submitted(text: str | None) -> None:
            if text:
                self._request("send", {"name": name, "text": text}, f"{name}: sent")

        self.push_screen(PromptScreen(f"Send to {name} (typed and submitted)", "text"), submitted)

    def action_approve(self) -> None:
        if self.act_on_marked("approve"):
            return
        name = self._agent()
        if name is not None and not self._unavailable_now("approve"):
            self._request("approve", {"name": name, "by": "dashboard"}, f"{name}: approved")

    def action_deny(self) -> None:
        if self.act_on_marked("deny"):
            return
        name = self._agent()
        if name is None or self._unavailable_now("deny"):
            return

        def submitted(reason: str | None) -> None:
            if reason is not None:
                self._request("deny", {"name": name, "reason": reason.strip() or None, "by": "dashboard"},
                              f"{name}: denied")

        self.push_screen(PromptScreen(f"Deny {name}'s request: why? (optional)", "reason", allow_empty=True),
                         submitted)

    def action_stop(self) -> None:
        if self.act_on_marked("stop"):
            return
        name = self._agent()
        if name is None:
            return

        def chosen(choice: str | None) -> None:
            if choice in ("stop", "kill"):
                self._request("stop", {"name": name, "kill": choice == "kill"},
                              f"{name}: {'killed' if choice == 'kill' else 'stopped'}")

        self.push_screen(ConfirmScreen(f"Stop {name} and its whole process tree?",
                                       [("kill", "Kill now", "error"), ("stop", "Stop", "warning")]), chosen)

    def action_restart(self) -> None:
        if self.act_on_marked("restart"):
            return
        name = self._agent()
        if name is None:
            return
        # Asked either way, like s, m and x: an Enter meant for what comes next must not start an agent.
        running = self.board.agents[name].get("state") in LIVE_STATES
        question = f"{name} is running. Stop it and start it again?" if running else \
            f"Start {name} again in its worktree?"

        def chosen(choice: str | None) -> None:
            if choice == "restart":
                self._request("restart", {"name": name}, f"{name}: restarted")

        self.push_screen(ConfirmScreen(question, [("restart", "Restart", "warning")]), chosen)

    def action_merge(self) -> None:
        name = self._agent()
        if name is None or self._unavailable_now("merge"):
            return

        def chosen(choice: str | None) -> None:
            if choice == "merge":
                # An audit and a merge of a long branch can take a while: wait for the answer, and say what it was.
                self._request("merge", {"name": name}, partial(self._merged, name), timeout=LONG_REQUEST_SECONDS)

        target = self.board.agents[name].get("target") or "its target"
        self.push_screen(ConfirmScreen(f"Audit {name}'s commits and merge its branch into {target}?",
                                       [("merge", "Merge", "primary")]), chosen)

    def _merged(self, name: str, result: dict[str, Any]) -> None:
        count = result.get("commits")
        what = "already merged" if result.get("already_merged") else \
            f"merged {count} commit{'' if count == 1 else 's'} into {result.get('into')}" + \
            (" (fast-forward)" if result.get("fast_forward") else "")
        removed = result.get("removed") or []
        self.notify(f"{name}: {what}" + (f"; removed the other candidates {', '.join(removed)}" if removed else ""),
                    timeout=6)

    def action_remove(self) -> None:
        if self.act_on_marked("rm"):
            return
        name = self._agent()
        if name is None:
            return

        def chosen(choice: str | None) -> None:
            if choice in ("remove", "force"):
                self._request("rm", {"name": name, "force": choice == "force"}, f"{name}: removed")

        self.push_screen(ConfirmScreen(
            f"Remove {name}'s worktree and branch?\nForce also stops it and drops unmerged work.",
            [("force", "Force remove", "error"), ("remove", "Remove", "warning")]), chosen)

    def action_diff(self, name: str | None = None) -> None:
        name = name or self._agent()
        if name is None:
            return
        screen = DiffScreen(name, self.board.palette)

        def then(choice: str | None) -> None:
            if choice == "merge" and name in self.board.agents:
                self.select_agent(name)
                self.action_merge()

        self.push_screen(screen, then)
        self._in_thread("diff", lambda: self.source.call("diff", {"name": name}, timeout=LONG_REQUEST_SECONDS),
                        screen.show, failed=screen.failed)

    def action_compare(self) -> None:
        name = self._agent()
        if name is None:
            return
        group = self.board.agents[name].get("best_of")
        if not group:
            self.notify(f"{name} is not a candidate of a best-of-N; `supervisor start NAME --best-of N --task TEXT` "
                        "starts one", severity="warning", timeout=5)
            return
        label = name.rpartition(SEPARATOR)[0]  # `ui --all`: agents are REPO:NAME, and so is the group asked for

        def named(own: str) -> str:
            return qualify(label, own) if label else own

        screen = CompareScreen(str(group), self.board.palette)

        def then(choice: str | None) -> None:
            if not choice:
                return
            what, candidate = choice.split(" ", 1)
            candidate = named(candidate)
            self.select_agent(candidate)
            if what == "diff":
                self.action_diff(candidate)
            elif what == "merge":
                self.action_merge()

        self.push_screen(screen, then)
        self._in_thread("compare", lambda: self.source.call("compare", {"name": named(str(group))},
                                                           timeout=LONG_REQUEST_SECONDS),
                        screen.show, failed=screen.failed)

    def action_snooze(self) -> None:
        name = self._agent()
        if name is None or self._unavailable_now("snooze"):
            return

        def submitted(duration: str | None) -> None:
            if duration is not None:
                self._request("snooze", {"name": name, "duration": duration.strip() or "1h"},
                              partial(self._snoozed, name))

        self.push_screen(PromptScreen(f"Snooze {name}'s alerts for (e.g. 30m, 2h; blank: 1h)", "1h",
                                      allow_empty=True), submitted)

    def _snoozed(self, name: str, silence: dict[str, Any]) -> None:
        self.notify(f"{name}: alerts snoozed" + (f" for {silence['remaining']}" if silence.get("remaining") else ""),
                    timeout=3)
        self.request_silences()

    def action_restore(self) -> None:
        self.request_restorable(asked=True)

    def offer_restore(self, found: dict[str, Any], *, asked: bool) -> None:
        names = [str(name) for name in found.get("agents") or []]
        if not names:
            self.restore_offered = []
            if asked:
                self.notify("nothing to restore: no agent's pane went with the tmux server", timeout=4)
            return
        if isinstance(self.screen, RestoreScreen) or (not asked and (found.get("mode") != "ask"
                                                                     or names == self.restore_offered)):
            return
        self.restore_offered = names

        def chosen(choice: str | None) -> None:
            if choice == "restore":  # those shown, still restorable: one another restore took is passed over
                self._request("restore", {"names": names, "every": True}, self._restored,
                              timeout=LONG_REQUEST_SECONDS)
            elif choice == "stop":  # a stop clears their mark: neither offered again nor brought back by --all
                for name in names:
                    self._request("stop", {"name": name}, f"{name}: left stopped")

        self.push_screen(RestoreScreen(names), chosen)

    def _restored(self, result: dict[str, Any]) -> None:
        back = [agent["name"] for agent in result.get("restored") or []]
        failed = result.get("failed") or []
        if back:
            self.notify(f"restored {', '.join(back)}", timeout=5)
        for failure in failed:
            self.notify(f"{failure['name']} not restored: {failure['error']}" +
                        (f"\nhint: {failure['hint']}" if failure.get("hint") else ""),
                        title="Failed", severity="error", timeout=10)

    def action_task_board(self) -> None:
        if self._unavailable_now("task_ls") or isinstance(self.screen, TaskBoardScreen):
            return
        self.push_screen(TaskBoardScreen(self.tasks or [], self.clock, self._request, self._ask_line))
        self.request_tasks()

    def _ask_line(self, title: str, then: Callable[[str], None]) -> None:
        def submitted(text: str | None) -> None:
            if text and text.strip():
                then(text.strip())

        self.push_screen(PromptScreen(title, "text"), submitted)

    def action_filter_text(self) -> None:
        self.filter_input.focus()

    def action_cycle_state_filter(self) -> None:
        values = [value for value, _ in STATE_FILTERS]
        self._set_state_filter(values[(values.index(self.state_filter) + 1) % len(values)])

    def action_needs_me(self) -> None:
        self._set_state_filter("all" if self.state_filter == "attention" else "attention")

    def action_toggle_events(self) -> None:
        self.events_scope = "all" if self.events_scope == "agent" else "agent"
        self.load_events()

    def action_focus_preview(self) -> None:
        if self.preview.has_focus:
            self.agents_table.focus()
        else:
            self.preview.focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_leave_input(self) -> None:
        """Esc: back to the list from a field; in a list, the marks are cleared."""
        if not isinstance(self.focused, SyncTable):
            self.agents_table.focus()
        else:
            self.clear_marks()

    async def action_quit(self) -> None:
        """q: close the dashboard; the demo's asks first whether to end the demo or leave it running."""
        if not self.demo:
            self.exit()
            return

        def chosen(choice: str | None) -> None:
            if choice in ("end", "keep"):
                self.end_demo = choice == "end"
                self.exit()

        self.push_screen(ConfirmScreen(
            "Quit the demo. End it too (its agents, its engine and its tmux server, as `supervisor down` does), "
            "or keep it running to come back to with `supervisor`?\nIts repository stays on disk either way.",
            [("keep", "Keep it running", "primary"), ("end", "End the demo", "warning")]), chosen)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action in ACTIONS:
            if action.name in ("quit", "help"):
                continue
            target = f" {self.selected}" if action.on_agent and self.selected else ""
            help_text = action.help + (f"   ({action.cli.replace('NAME', self.selected or 'NAME')})"
                                       if action.cli else "")
            yield SystemCommand(f"{action.title}{target}", help_text, partial(self.run_named_action, action.name))

    def run_named_action(self, name: str) -> None:
        getattr(self, f"action_{BY_NAME[name].name}")()


def run_dashboard(paths: RepoPaths) -> int:
    """`supervisor ui`: the dashboard on the repository's engine (the caller has started it)."""
    from supervisor.ui.source import EngineSource

    SupervisorApp(EngineSource(paths), remember_settings=True).run()
    return 0


def run_demo_dashboard(paths: RepoPaths) -> bool:
    """The demo's dashboard (`supervisor demo`); True when the human chose, on quitting, to end the demo."""
    from supervisor.ui.source import EngineSource

    app = SupervisorApp(EngineSource(paths), remember_settings=True, demo=True)
    app.run()
    return app.end_demo
