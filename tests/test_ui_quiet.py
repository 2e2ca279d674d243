"""A quiet dashboard does next to nothing: the clock redraws only when an age shown changes its text, a listing
that changed nothing draws nothing, sums are made again only from new usages, and a request costs the event
loop no worker (bench/ui.py measures the CPU; these check the behaviour it rests on)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.worker import Worker

from supervisor.ui.app import SupervisorApp
from supervisor.ui.fake import NOW, FakeSource, agent, spent
from supervisor.ui.model import Board, age_changes_at
from supervisor.ui.testing import loaded, run, wait_for
from supervisor.usage import report as usage_report


def quiet_source() -> FakeSource:
    """Agents well past their first minute in their state: their ages change once a minute."""
    return FakeSource([agent(name, "working", since=90, task=f"task of {name}") for name in ("a", "a.h", "b")])


def test_an_age_is_redrawn_when_its_text_changes_and_only_then() -> None:
    """Ticks of the clock and listings that bring nothing new draw nothing (a redraw of every row each second
    was most of an idle dashboard's CPU); the minute an age shown turns, its row is drawn."""
    clock = [NOW]
    app = SupervisorApp(quiet_source(), clock=lambda: clock[0], refresh_seconds=0.2)
    ticks: list[float] = []
    tick = app._tick_ages

    def counted() -> None:
        ticks.append(clock[0])
        tick()

    app._tick_ages = counted  # type: ignore[method-assign]

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        assert app.agents_table.get_cell("a", "for").plain == "1m"
        drawn = len(app.sync_seconds)
        listed = app._listed_at
        for _ in range(3):  # three ticks, the clock moving on, and listings meanwhile
            clock[0] += 1
            count = len(ticks)
            await wait_for(pilot, lambda count=count: len(ticks) > count, message="a tick")  # type: ignore[misc]
        await wait_for(pilot, lambda: app._listed_at > listed, message="a listing")
        await pilot.pause()
        assert len(app.sync_seconds) == drawn, "drawn again, though nothing shown changed"
        clock[0] = age_changes_at(NOW - 90, NOW)  # the agents' second minute in their state
        await wait_for(pilot, lambda: app.agents_table.get_cell("a", "for").plain == "2m", message="2m shown")
        assert len(app.sync_seconds) > drawn

    run(app, scenario, size=(120, 30))


@pytest.mark.parametrize(("seconds", "changes"), [(0.4, 1.0), (59.0, 60.0), (60.0, 120.0), (3599.5, 3600.0),
                                                   (3600.0, 3660.0), (86400.0 + 10, 86400.0 + 3600.0)])
def test_the_next_change_of_an_age_is_when_its_text_changes(seconds: float, changes: float) -> None:
    assert age_changes_at(1000.0, 1000.0 + seconds) == 1000.0 + changes


def test_a_tree_is_summed_again_only_when_its_usages_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    sums: list[int] = []
    summed = usage_report.summed

    def counted(views: list[dict[str, Any]]) -> dict[str, Any]:
        sums.append(len(views))
        return summed(views)

    monkeypatch.setattr(usage_report, "summed", counted)
    board = Board()

    def listing(cost: float) -> list[dict[str, Any]]:
        return [agent("a", "working", usage=spent(cost, 10.0)), agent("a.h", "idle", usage=spent(0.5, 5.0)),
                agent("b", "working", cpu=5.0, usage=spent(1.0, 20.0))]

    board.set_agents(listing(1.0))
    assert board.tree_costs == {"a": "$1.50"} and board.total_cost == "$2.50" and sums
    sums.clear()
    board.set_agents([{**record, "cpu_percent": 33.0} for record in listing(1.0)])  # CPU moved, usage did not
    assert not sums
    board.set_agents(listing(2.0))
    assert board.tree_costs == {"a": "$2.50"} and board.total_cost == "$3.50"


def test_an_age_changing_alone_changes_the_age_cell_alone() -> None:
    """Between listings only the clock moves: the row keeps every other cell (the table compares nothing
    else), and a row whose age text did not change is the very same row."""
    board = Board()
    board.set_agents([agent("a", "working", since=90, now=NOW)])
    first = board.cells("a", NOW)
    assert board.cells("a", NOW + 5) is first  # 1m still
    later = board.cells("a", NOW + 30)
    assert later["for"].plain == "2m" and first["for"].plain == "1m"
    assert all(later[key] is first[key] for key in first if key != "for")
    board.set_diffstat({"a": {"files": 1, "added": 2, "removed": 0}})  # another input: the row is made again
    assert board.cells("a", NOW + 30)["diff"].plain == "1f +2 −0"


def test_requests_post_no_worker_messages_to_the_app() -> None:
    """Each Textual worker posted its state changes to the app (three messages a request, each dispatched up
    the app's classes): requests run in threads without one."""
    changes: list[Worker.StateChanged] = []

    class Counting(SupervisorApp):
        def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
            changes.append(event)

    app = Counting(quiet_source(), clock=lambda: NOW, screen_seconds=0.1)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        screens = app.source.answered.get("screen", 0)  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: app.source.answered.get("screen", 0) > screens + 2,  # type: ignore[attr-defined]
                       message="the preview captured again")
        assert not changes

    run(app, scenario, size=(120, 30))
