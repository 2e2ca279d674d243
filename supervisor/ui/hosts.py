"""Hosts in the dashboard (SPEC §12): a filter by host (`F` cycles it; the list beside the state filter), and
the hosts view (`H`): each host with its state, load, agents against its places, latency, when it last
answered and why it is down, as `supervisor hosts` shows them (the engine's `hosts` request, which never waits
on a host). The view is asked again every HOSTS_SECONDS while it is open, and at once when a host goes up or
down; Enter on a host shows its agents (the host filter), Esc closes it.

Both appear only while there are hosts: supervisor.yaml names one, or an agent runs on one. With none, the
dashboard looks as it always did (no Host column, no host filter).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Label, Select

from supervisor.ui.live import LiveDashboard
from supervisor.ui.model import LOCAL_HOST, parse_ts
from supervisor.ui.screens import MODAL_CSS
from supervisor.ui.tables import SyncTable

HOSTS_SECONDS = 2.0  # the hosts view asks again this often while open (latency and load move every ping)
ALL_HOSTS = "all"
STATE_STYLES = {"up": "bold green", "down": "bold red", "connecting": "yellow"}


def load_text(row: dict[str, Any]) -> str:
    load = row.get("load") or {}
    if load.get("load1") is None:
        return "-"
    cores = load.get("cores")
    return f"{load['load1']:.2f}" + (f" / {cores} cores" if cores else "")


def agents_text(row: dict[str, Any]) -> Text:
    """`3/10`, red when the host is full; `3` for a host without a limit (local without max_agents)."""
    agents, places = row.get("agents"), row.get("max_agents")
    shown = "-" if agents is None else str(agents)
    if places is None:
        return Text(shown, justify="right")
    return Text(f"{shown}/{places}", justify="right",
                style="bold red" if agents is not None and agents >= places else "")


def host_cells(row: dict[str, Any], now: float) -> dict[str, Text]:
    """One row of the hosts view."""
    state = str(row.get("state") or "?")
    latency = row.get("latency_ms")
    seen = parse_ts(row.get("last_seen"))
    return {
        "name": Text(str(row.get("name")), style="bold"),
        "state": Text(state, style=STATE_STYLES.get(state, "")),
        "agents": agents_text(row),
        "load": Text(load_text(row)),
        "latency": Text("-" if latency is None else f"{latency:.0f} ms", justify="right"),
        "seen": Text("-" if seen is None else f"{max(0, int(now - seen))}s ago", style="dim"),
        "error": Text(str(row.get("error") or ""), style="red"),
    }


class HostTable(SyncTable):
    COLUMNS = (("name", "Host"), ("state", "State"), ("agents", "Agents"), ("load", "Load"),
               ("latency", "Latency"), ("seen", "Seen"), ("error", "Why down"))


class HostsScreen(ModalScreen[str | None]):
    """Every host, as `supervisor hosts` lists it; Enter: show that host's agents (dismissed with its name)."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS + """
    HostsScreen > Vertical { width: 124; max-width: 96%; }
    HostsScreen HostTable { height: auto; max-height: 30; margin: 1 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,H", "close", "Close")]

    def __init__(self, rows: list[dict[str, Any]], now: float) -> None:
        super().__init__()
        self.rows = rows
        self.now = now
        self.table = HostTable(id="hosts")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Hosts", style="bold"))
            yield self.table
            yield Label(Text("⏎ its agents (the host filter) · esc close · same as `supervisor hosts`; "
                             "`supervisor hosts check NAME` says what a host lacks", style="dim"))

    def on_mount(self) -> None:
        self.show(self.rows, self.now)
        self.table.focus()

    def show(self, rows: list[dict[str, Any]], now: float) -> None:
        self.rows = rows
        self.table.sync([(str(row["name"]), host_cells(row, now)) for row in rows])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(self.table.name_of(event.row_key))

    def action_close(self) -> None:
        self.dismiss(None)


class HostActions(LiveDashboard):
    """The host filter and the hosts view (the app composes the filter's list: `host_select`)."""

    host_select: Select[str]
    _hosts_timer: Timer | None = None
    _host_choices: list[str] | None = None

    @property
    def host_names(self) -> list[str]:
        """Every host there is: those the engine lists (supervisor.yaml's), then any an agent runs on."""
        names = [str(row.get("name")) for row in self.hosts]
        return names + [host for host in self.board.hosts() if host not in names] if names else \
            self.board.hosts()

    def hosts_changed(self) -> None:
        """The hosts' rows (or the agents' hosts) changed: the host filter's choices, and the view if open."""
        shown = self.show_hosts
        choices = [ALL_HOSTS, *self.host_names] if shown else [ALL_HOSTS]
        if self.host_filter not in choices:
            self.host_filter = ALL_HOSTS
        if self._host_choices != choices:
            self._host_choices = choices
            self.host_select.set_options([("all hosts" if host == ALL_HOSTS else f"on {host}", host)
                                          for host in choices])
        if self.host_select.value != self.host_filter:
            self.host_select.value = self.host_filter
        self.host_select.display = shown
        if isinstance(self.screen, HostsScreen):
            self.screen.show(self.hosts, self.clock())

    def set_host_filter(self, host: str) -> None:
        self.host_filter = host
        self.host_select.value = host
        self.refresh_tables()

    def action_cycle_host_filter(self) -> None:
        if not self.show_hosts:
            self.notify("no hosts: agents run on this machine only (`hosts:` in supervisor.yaml adds some)",
                        severity="warning", timeout=4)
            return
        choices = [ALL_HOSTS, *self.host_names]
        current = choices.index(self.host_filter) if self.host_filter in choices else 0
        self.set_host_filter(choices[(current + 1) % len(choices)])

    def action_hosts_view(self) -> None:
        if isinstance(self.screen, HostsScreen):
            return
        if "hosts" in self.unavailable:
            self._not_available("hosts")
            return
        rows = self.hosts or [{"name": LOCAL_HOST, "state": "up", "agents": None, "max_agents": None}]

        def chosen(host: str | None) -> None:
            if self._hosts_timer is not None:
                self._hosts_timer.stop()
                self._hosts_timer = None
            if host:
                self.set_host_filter(host if self.show_hosts else ALL_HOSTS)
                self.agents_table.focus()

        self.push_screen(HostsScreen(rows, self.clock()), chosen)
        self.request_hosts()
        self._hosts_timer = self.set_interval(HOSTS_SECONDS, self.request_hosts)

    @on(Select.Changed, "#host")
    def _host_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.host_filter:
            self.host_filter = event.value
            self.refresh_tables()
