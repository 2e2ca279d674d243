"""The dashboard under churn: what changes is drawn in place, nothing else moves, and it looks and acts as
DataTable's own drawing does (the snapshots check the pictures; these check what they cannot)."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.strip import Strip

from supervisor.ui.app import SupervisorApp
from supervisor.ui.fake import NOW, FakeSource
from supervisor.ui.tables import SyncTable
from supervisor.ui.testing import loaded, run, wait_for


def make() -> tuple[SupervisorApp, FakeSource]:
    source = FakeSource.sample()
    return SupervisorApp(source, clock=lambda: NOW, screen_seconds=0.2), source


def test_items_coming_and_going_and_events_logged_move_nothing_on_screen() -> None:
    """An item arriving in "Needs you", one leaving, and lines logged for the selected agent change those
    widgets alone: the screen is not laid out again (at 100 agents each layout redrew the whole screen), and
    the agents list keeps its cursor on its agent, on the same line."""
    app, source = make()
    layouts: list[int] = []

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        assert app.selected == "api" and "auth.tests" not in app.attention_table.keys
        await pilot.press("down", "down")
        await wait_for(pilot, lambda: app.selected == "auth.tests", message="auth.tests under the cursor")
        await pilot.pause()
        screen = app.screen
        original = screen._refresh_layout

        def counted(*args: Any, **kwargs: Any) -> None:
            layouts.append(1)
            original(*args, **kwargs)

        screen._refresh_layout = counted  # type: ignore[method-assign]
        row, line = table.cursor_row, table.scroll_offset.y
        logged = len(app.events_shown)
        source.set_state("auth.tests", "waiting", waiting_reason="approval: Run the migrations?")  # an item comes
        source.set_state("billing", "working")  # … and one goes
        for _ in range(3):
            source.set_state("auth.tests", "working")
            source.set_state("auth.tests", "waiting", waiting_reason="approval: Run the migrations?")
        await wait_for(pilot, lambda: "auth.tests" in app.attention_table.keys
                       and "billing" not in app.attention_table.keys, message="the items come and go")
        await wait_for(pilot, lambda: len(app.events_shown) >= logged + 7, message="the events logged")
        await pilot.pause()
        assert not layouts, "the screen was laid out again"
        assert (app.selected, table.current_key, table.cursor_row, table.scroll_offset.y) == \
            ("auth.tests", "auth.tests", row, line)
        assert "waiting" in table.get_cell("auth.tests", "state").plain

    run(app, scenario)


def test_a_click_on_a_row_selects_its_agent() -> None:
    """Rows are drawn from cached cells with each cell's place added: a click still reads the right row."""
    app, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        for index in (3, 1, 5):
            # The table's region starts with its border, then the header row.
            await pilot.click(table, offset=(6, 2 + index))
            name = table.keys[index]
            await wait_for(pilot, lambda n=name: app.selected == n, message=f"{name} selected by a click")

    run(app, scenario)


def lines(table: SyncTable, *, by_value: bool) -> list[list[Any]]:
    """The table's lines as drawn (by value, or by DataTable itself), each merged where styles repeat."""
    table._drawable = by_value
    table._clear_caches()
    try:
        return [list(Strip(table.render_line(y)).simplify()) for y in range(table.size.height)]
    finally:
        table._drawable = True
        table._clear_caches()


def test_rows_drawn_by_value_are_what_datatable_draws() -> None:
    """Every line of both tables, the cursor's row and a hovered one included, segment by segment, style by
    style (the position a click reads included)."""
    app, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, diffstat=True)
        await pilot.press("down", "down", "down")
        await pilot.hover(app.agents_table, offset=(6, 4))
        await pilot.pause()
        for table in (app.agents_table, app.attention_table):
            assert table._drawable
            assert lines(table, by_value=True) == lines(table, by_value=False), table.id

    run(app, scenario)
