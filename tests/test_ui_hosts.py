"""Hosts in the dashboard: while a host is down, a banner naming it and why, its agents `unreachable` with what
they were doing, the engine's own banner first while the engine is away, and nothing once the host is back; a
Host column, a filter by host and the hosts view while there are hosts, and none of them without."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from supervisor.core.model import State
from supervisor.ui.actions import ACTIONS
from supervisor.ui.app import SupervisorApp
from supervisor.ui.fake import NOW, FakeSource
from supervisor.ui.hosts import HostsScreen
from supervisor.ui.screens import HelpScreen
from supervisor.ui.testing import loaded, run, screen_is, wait_for
from tests.conftest import Sandbox
from tests.test_host_watch import place_agent
from tests.test_hosts_placement import configure
from tests.test_ui_engine import engine, make

__all__ = ["engine"]

REFUSED = "could not connect (exit 255): ssh: connect to host 10.0.0.7 port 22: Connection refused"


def test_a_host_down_shows_a_banner_until_it_is_back() -> None:
    source = FakeSource.sample()
    source.hosts = [{"name": "box1", "state": "up", "agents": 0, "max_agents": 10, "load": None,
                     "latency_ms": 3.1, "last_seen": None, "error": None}]
    app = SupervisorApp(source, clock=lambda: NOW, screen_seconds=0.2)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        banner = app.banner
        await wait_for(pilot, lambda: any(method == "hosts" for method, _ in source.calls), message="hosts asked")
        assert not banner.display  # every host up: no banner

        source.set_state("api", "unreachable", last_state="working")
        source.set_host("box1", "down", REFUSED, agents=1)
        await wait_for(pilot, lambda: banner.display, message="the host's banner")
        assert str(banner.render()) == f"host box1 down: {REFUSED} · 1 agent unreachable  (supervisor hosts)"
        await wait_for(pilot, lambda: app.agents_table.get_cell("api", "state").plain == "unreachable (working)",
                       message="the agent unreachable, with what it was doing")

        source.go_down(restartable=False)  # the engine away: its banner, not the host's
        await wait_for(pilot, lambda: "engine restarting" in str(banner.render()), message="the engine's banner")
        source.restartable = True
        await wait_for(pilot, lambda: app.engine_down is None and "host box1 down" in str(banner.render()),
                       message="the host's banner again")

        source.set_state("api", "working", last_state=None)
        source.set_host("box1", "up")
        await wait_for(pilot, lambda: not banner.display, message="the banner gone with the host back")

    run(app, scenario)


def test_host_column_filter_and_hosts_view_against_the_real_engine(engine: Sandbox, tmp_path: Path) -> None:
    """With a host in supervisor.yaml (at an address where nothing listens: down at once), the agents list has a
    Host column, F filters by host, and H lists each host with its state, agents against its places and why it
    is down; Enter on one shows its agents."""
    configure(engine, tmp_path, box1=3)
    place_agent(engine, "far", "box1", State.WORKING)  # what a launch there made (launching there is not built)
    engine.sv("start", "near", "--task", "hello")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        table = app.agents_table
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: "host" in table.shown_columns, message="the Host column")
        assert table.shown_columns[:3] == ["name", "state", "host"]
        await wait_for(pilot, lambda: table.get_cell("far", "state").plain == "unreachable (working)",
                       message="far unreachable, with what it was doing")
        assert (table.get_cell("far", "host").plain, table.get_cell("near", "host").plain) == ("box1", "local")
        assert app.host_select.display

        await pilot.press("F")  # all → local → box1 → all
        await wait_for(pilot, lambda: table.keys == ["near"], message="local's agents only")
        assert app.host_select.value == "local"
        await pilot.press("F")
        await wait_for(pilot, lambda: table.keys == ["far"], message="box1's agents only")
        await pilot.press("F")
        await wait_for(pilot, lambda: sorted(table.keys) == ["far", "near"], message="every agent again")

        await pilot.press("H")
        await screen_is(pilot, HostsScreen)
        view = app.screen
        assert isinstance(view, HostsScreen)
        await wait_for(pilot, lambda: view.table.keys == ["local", "box1"], message="the hosts")
        await wait_for(pilot, lambda: view.table.get_cell("box1", "state").plain == "down", message="box1 down")
        row = {key: view.table.get_cell("box1", key).plain for key in ("agents", "error")}
        assert row["agents"] == "1/3" and "refused" in row["error"].lower(), row
        assert view.table.get_cell("local", "state").plain == "up"
        assert view.table.get_cell("local", "agents").plain == "1"  # no limit set for this machine
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, HostsScreen), message="the view closed")
        await wait_for(pilot, lambda: table.keys == ["far"] and app.host_filter == "box1",
                       message="box1's agents, as chosen")

        await pilot.press("question_mark")
        await screen_is(pilot, HelpScreen)
        keys = [(action.display_key, action.title) for action in ACTIONS]
        assert ("F", "Host filter") in keys and ("H", "Hosts") in keys
        await pilot.press("escape")

    run(app, scenario)


def test_no_host_column_without_hosts(engine: Sandbox) -> None:
    engine.sv("start", "near", "--task", "hello")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: any(method == "hosts" for method in app._busy), message="hosts asked")
        await wait_for(pilot, lambda: app.hosts, message="the hosts' rows")
        assert [row["name"] for row in app.hosts] == ["local"]
        assert "host" not in app.agents_table.shown_columns and not app.host_select.display
        await pilot.press("F")  # says there are none
        assert app.host_filter == "all"

    run(app, scenario)
