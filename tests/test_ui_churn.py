"""The dashboard under churn: what changes is drawn in place, nothing else moves, and it looks and acts as
DataTable's own drawing does (the snapshots check the pictures; these check what they cannot)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from rich.segment import Segment
from textual.geometry import Region
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

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
    """Rows are drawn from cached cells that carry no place: a click still reads the right row."""
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


def test_the_mouse_reads_the_row_and_column_under_it() -> None:
    """Hovering a row shows the hover cursor on that row; a click right of the last column still selects the
    row (DataTable reads both from the place under the mouse, which rows drawn here give it from the offset)."""
    app, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        task = table.shown_columns.index("task")
        for index in (4, 2):
            await pilot.hover(table, offset=(3, 2 + index))
            await wait_for(pilot, lambda i=index: tuple(table.hover_coordinate) == (i, 0),
                           message=f"the hover cursor on row {index}, the first column")
        width = table.region.width
        await pilot.hover(table, offset=(width - 25, 2 + 6))  # in the task column, the last one
        await wait_for(pilot, lambda: tuple(table.hover_coordinate) == (6, task), message="the task column")
        await pilot.click(table, offset=(width - 4, 2 + 6))  # past the end of the task column's text
        await wait_for(pilot, lambda: app.selected == table.keys[6], message="the row selected by a click")

    run(app, scenario)


def test_a_value_shown_in_several_rows_is_drawn_once() -> None:
    """The drawing of a cell carries no place (row, column), so rows showing the same value in the same column
    share one drawing, and its styles are the few the theme has: the caches of styles keep hitting under churn
    (with a place in each style, 100 rows of ten columns made a thousand styles to convert every frame)."""
    app, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        await pilot.pause()
        state = table.shown_columns.index("state")
        idle = [name for name in table.keys
                if table.get_cell(name, "state").plain == "idle" and name != table.current_key]  # (not the cursor's)
        assert len(idle) >= 2, idle
        drawings = {id(table._placed[RowKey(name)][2][state][2]) for name in idle}
        assert len(drawings) == 1, "each row drew its own copy of `idle`"
        for y in range(table.header_height, table.size.height):
            line = list(table.render_line(y))
            assert not any(segment.style and segment.style.meta for segment in line), y
            # … and neighbours in one style are one segment: every later step of a frame goes segment by segment.
            assert all(a.style != b.style for a, b in pairwise(line)), y

    run(app, scenario)


def lines(table: SyncTable, *, by_value: bool) -> list[list[Any]]:
    """The table's lines as drawn (by value, or by DataTable itself), each merged where styles repeat, without
    the places DataTable's own drawing carries (the mouse gets them from the offset: tested above)."""
    table._drawable = by_value
    table._clear_caches()
    try:
        return [list(Strip([Segment(text, style and style.clear_meta_and_links(), control)
                            for text, style, control in table.render_line(y)]).simplify())
                for y in range(table.size.height)]
    finally:
        table._drawable = True
        table._clear_caches()


def test_rows_drawn_by_value_are_what_datatable_draws() -> None:
    """Every line of both tables, the cursor's row and a hovered one included, segment by segment, style by
    style."""
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


def test_rows_leaving_at_once_are_removed_at_once() -> None:
    """Several rows leaving in one refresh (under churn, "Needs you" loses a few of its last rows most seconds)
    are removed in one go: the table is renumbered once, not once per row, and what is left is right: its rows
    in order, each drawn on its line, the cursor on its agent."""
    app, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        await pilot.pause()
        rows = [(name, table._shown[name]) for name in table.keys]
        assert table.select_key("docs")
        leaving = {"auth.tests", "billing", "search"}
        kept = [(name, cells) for name, cells in rows if name not in leaving]
        renumbered = table._update_count
        table.sync(kept)
        assert table._update_count == renumbered + 1, "renumbered once for each row removed"
        assert table.keys == [name for name, _ in kept]
        assert [table.get_row_index(name) for name, _ in kept] == list(range(len(kept)))
        assert table.current_key == "docs"
        for index, (name, _) in enumerate(kept):
            assert name in table.render_line(table.header_height + index).text, name

    run(app, scenario)


def test_a_changed_row_is_repainted_as_one_region() -> None:
    """A row whose state, CPU and badges changed (cells apart from each other) is repainted as one region,
    the row's whole line: Textual sends each region from the start of the line, cropping the line anew for
    each, so regions of their own per cell sent the row two or three times over."""
    app, source = make()
    regions: list[Region] = []

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        await pilot.pause()
        original = table.refresh

        def recorded(*found: Region, **kwargs: Any) -> Any:
            regions.extend(found)
            return original(*found, **kwargs)

        table.refresh = recorded  # type: ignore[method-assign]
        source.set_state("docs", "waiting", cpu_percent=55.0, waiting_reason="approval: Push the branch?")
        await wait_for(pilot, lambda: table.get_cell("docs", "state").plain == "waiting", message="docs waits")
        line = table.header_height + table.get_row_index("docs") - int(table.scroll_offset.y)
        assert [region for region in regions if region.y == line] == [Region(0, line, table.size.width, 1)]

    run(app, scenario)


def test_rows_added_to_columns_of_set_widths_are_not_measured() -> None:
    """Every column of the agents list (and of "Needs you") has its set width: a row added is not measured
    cell by cell through Rich (DataTable measures new rows for columns sized by their content), and the
    table's scrollable height still counts it."""
    app, _ = make()
    measured: list[int] = []

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        await pilot.pause()
        assert not any(column.auto_width for column in table.columns.values())
        original = table._get_row_renderables

        def counted(index: int) -> Any:
            measured.append(index)
            return original(index)

        table._get_row_renderables = counted  # type: ignore[method-assign]
        height = table.virtual_size.height
        rows = [(name, table._shown[name]) for name in table.keys]
        table.sync([*rows, ("zz", rows[0][1])])
        assert table.keys[-1] == "zz" and table.virtual_size.height == height + 1
        assert not measured, "the new row was measured"

    run(app, scenario)


def test_the_header_is_not_drawn_again_when_rows_come_and_go() -> None:
    """A row added or removed makes DataTable's own drawings stale (its header's too): the header is drawn
    once per labels and widths, and still reads the same."""
    app, _ = make()
    drawn: list[object] = []

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        await pilot.pause()
        header = table.render_line(0).text
        assert header.split()[:3] == ["Agent", "State", "For"]
        original = DataTable._render_line_in_row

        def counted(self: Any, row_key: Any, *args: Any) -> Any:
            if self is table and row_key is table._header_row_key:
                drawn.append(row_key)
            return original(self, row_key, *args)

        DataTable._render_line_in_row = counted  # type: ignore[method-assign]
        try:
            rows = [(name, table._shown[name]) for name in table.keys]
            table.sync([*rows, ("zz", rows[0][1])])
            assert table.render_line(0).text == header
            table.sync(rows)
            assert table.render_line(0).text == header
        finally:
            DataTable._render_line_in_row = original  # type: ignore[method-assign]
        assert not drawn, "DataTable drew the header again"

    run(app, scenario)
