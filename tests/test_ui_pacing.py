"""The dashboard's cost under churn: news drawn once per redraw however it comes, what the user does drawn at
once, rows off screen put in place only when they come into view, and one frame for all of it (bench/ui.py
measures the CPU; these check the behaviour it rests on)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.pilot import Pilot

from supervisor.ui.app import SupervisorApp
from supervisor.ui.fake import NOW, FakeSource, agent
from supervisor.ui.header import SteadyTitle
from supervisor.ui.testing import loaded, run, wait_for

HELD = 3600.0  # a redraw gap no test waits out: news is drawn only by what the user does


def test_news_waits_for_the_next_redraw_and_what_the_user_does_is_drawn_at_once() -> None:
    """A burst of changes is drawn once (a listing each did redraw the whole list); a key draws what came,
    and the listing after the user's own action is drawn as soon as it comes, news held or not."""
    source = FakeSource.sample()
    app = SupervisorApp(source, clock=lambda: NOW)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        app.pacer.gap = HELD
        app.pacer.drawn()
        drawn = len(app.sync_seconds)
        for name in ("docs", "api", "auth.tests.data", "billing"):
            source.set_state(name, "working")
        await wait_for(pilot, lambda: app.board.agents["billing"]["state"] == "working", message="the listing")
        await pilot.pause()
        assert app.pacer.pending and len(app.sync_seconds) == drawn, "news drawn before its time"
        assert app.agents_table.get_cell("billing", "state").plain == "stalled"
        await pilot.press("exclamation_mark")  # the needs-me filter: drawn now, with the news
        await wait_for(pilot, lambda: app.state_filter == "attention")
        assert len(app.sync_seconds) == drawn + 1 and not app.pacer.pending
        assert "billing" not in app.agents_table.keys  # working now: it needs no one
        await pilot.press("exclamation_mark")
        app.select_agent("ui")
        await wait_for(pilot, lambda: app.agents_table.current_key == "ui", message="ui under the cursor")
        await pilot.press("y")  # approve: the listing that follows is drawn as it comes
        await wait_for(pilot, lambda: app.agents_table.get_cell("ui", "state").plain == "working",
                       message="the approved agent working")
        assert app.pacer.gap == HELD

    run(app, scenario, size=(140, 42))


def many(count: int = 40) -> FakeSource:
    return FakeSource([agent(f"a{index:02d}", "working", since=30, task=f"task {index}") for index in range(count)])


def test_rows_off_screen_are_put_in_place_when_they_come_into_view() -> None:
    """A change to an agent far below the screen costs nothing until its row is scrolled to; then it is there
    before the row is drawn."""
    app = SupervisorApp(many(), clock=lambda: NOW)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        assert table.scroll_offset.y == 0 and table.size.height < 20
        updates, drawn = table.cell_updates, len(app.sync_seconds)
        app.source.set_state("a39", "idle")  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: app.board.agents["a39"]["state"] == "idle", message="the listing")
        await wait_for(pilot, lambda: len(app.sync_seconds) > drawn and not app.pacer.pending, message="a redraw")
        assert table.cell_updates == updates, "a row off screen was changed"
        app.select_agent("a39")  # the list scrolls to it
        await wait_for(pilot, lambda: table.current_key == "a39" and table.scroll_offset.y > 0, message="the last row")
        line = table.header_height + table.get_row_index("a39") - int(table.scroll_offset.y)
        assert "idle" in table.render_line(line).text
        assert table.cell_updates > updates

    run(app, scenario, size=(100, 30))


def test_a_line_logged_and_a_count_in_the_header_show_in_the_frame_that_changes_them() -> None:
    """The event log is scrolled to a line as it is written, and the header's title follows its counts at once:
    each used to wait for the next frame and make one of its own, of the whole screen."""
    app = SupervisorApp(FakeSource.sample(), clock=lambda: NOW)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        log = app.event_log
        for index in range(3 * log.size.height):
            log.write(Text(f"line {index}"))
            assert log.scroll_offset.y == log.max_scroll_y
        assert log.max_scroll_y > 0
        app.sub_title = "41 agents"
        assert "41 agents" in str(app.query_one(SteadyTitle).content)

    run(app, scenario)
