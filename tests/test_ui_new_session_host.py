"""The new-session form's Host field against the real engine: `local` and each host of supervisor.yaml with its
free places and whether it is up; the chosen host goes to the engine's start as `start --host` sends it; a host
that is full, or down, is refused in the form in the engine's own words (the form stays, to choose again), and
a host that has room starts the session there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from supervisor.core.model import State
from supervisor.ui.screens import NewSessionScreen
from supervisor.ui.testing import loaded, run, screen_is, wait_for
from tests.conftest import Sandbox
from tests.test_host_watch import place_agent
from tests.test_hosts_placement import configure
from tests.test_ui_engine import engine, make

__all__ = ["engine"]


def test_the_form_offers_each_host_and_refuses_a_full_or_down_one_in_the_engines_words(engine: Sandbox,
                                                                                       tmp_path: Path) -> None:
    configure(engine, tmp_path, local=2, box1=3, box2=1)  # both hosts at an address nothing listens on: down
    place_agent(engine, "far", "box2", State.WORKING)  # box2's one place is taken
    engine.sv("start", "near", "--task", "hello")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: [(row["name"], row["state"]) for row in app.hosts]
                       == [("local", "up"), ("box1", "down"), ("box2", "down")], message="the hosts' rows")
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        form = app.screen
        host = form.query_one("#host", Select)
        assert [str(option[0]) for option in host._options] == [
            "local · 1 of 2 places free · up", "box1 · 3 of 3 places free · down",
            "box2 · 0 of 1 places free · down"]
        assert host.value == "local"
        form.query_one("#name", Input).value = "api"
        form.query_one("#task", Input).value = "first task"

        def said() -> str:
            return str(form.query_one("#error", Static).render())

        host.value = "box2"
        form.query_one("#name", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "is full" in said(), message="box2 refused: full")
        assert "host box2 is full: 1 of its 1 places are taken (hosts.box2.max_agents)" in said()
        assert app.screen is form and "api" not in engine.ls()

        host.value = "box1"
        form.query_one("#name", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "box1" in said() and "starting" not in said(), timeout=60,
                       message="box1 refused: down")
        assert said().startswith("host box1 is unreachable now (could not connect")
        assert "hint: `supervisor hosts check box1`" in said()
        assert app.screen is form and "api" not in engine.ls()

        host.value = "local"
        form.query_one("#name", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewSessionScreen), message="the form closed")
        await wait_for(pilot, lambda: app.selected == "api", message="api started and selected")
        assert engine.ls()["api"]["host"] == "local"

    run(app, scenario)
