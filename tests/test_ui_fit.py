"""The dashboard on a small screen and in a light theme, against the real engine: the agents list gets the rows
it needs, its columns give way in a stated order (the name and the state never) with widths set before the
first row is drawn, and every colour comes from the theme (nothing dark drawn on a light one)."""

from __future__ import annotations

from typing import Any

from rich.color import Color
from rich.style import Style
from textual.pilot import Pilot

from supervisor.ui.app import SupervisorApp
from supervisor.ui.layout import CELL_PADDING, SCROLLBAR
from supervisor.ui.model import COLUMN_PRIORITY as ALL_PRIORITY
from supervisor.ui.model import COLUMNS, HOST_COLUMN, TASK_MIN_WIDTH
from supervisor.ui.tables import SyncTable
from supervisor.ui.testing import loaded, run, wait_for
from tests.conftest import DEMO_AGENT, Sandbox
from tests.test_ui_engine import engine, make

__all__ = ["engine"]

ORDER = [key for key, _ in COLUMNS if key != HOST_COLUMN]  # no hosts configured here: no Host column
COLUMN_PRIORITY = tuple(key for key in ALL_PRIORITY if key != HOST_COLUMN)


def fits(app: SupervisorApp, table: SyncTable) -> bool:
    """Every column has a width of its own (none is measured later, which would move the headers after the
    first paint), and together they fit the table, the last one taking what the others leave."""
    columns = list(table.columns.values())
    used = sum(column.width + CELL_PADDING for column in columns)
    room = app.size.width - 2 - SCROLLBAR
    last = str(list(table.columns)[-1].value) if columns else ""
    return all(not column.auto_width for column in columns) and (
        used == room if last in ("task", "reason") else used <= room)


def test_at_80x24_the_agents_list_gets_the_room_and_columns_give_way_by_priority(engine: Sandbox) -> None:
    tasks = ["Harden the auth package: validate tokens", "Polish the settings page and its tests",
             "Use the new auth roles in billing", "Add the /health endpoint", "Document the auth package",
             "Speed up the search index", "Rebuild the monthly report", "Translate the settings strings",
             "Add an index on orders.created_at"]
    for index, task in enumerate(tasks):
        engine.sv("start", f"agent-{index}", "--task", task, "--command", f"{DEMO_AGENT} --scenario gentle")
    app, _ = make(engine)
    first_paint: list[bool] = []

    async def scenario(pilot: Pilot[Any]) -> None:
        table = app.agents_table
        # The first rows come with their columns' widths: the headers are where they stay.
        await wait_for(pilot, lambda: table.row_count > 0, message="the first rows")
        first_paint.append(fits(app, table))
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: table.row_count == 9, message="nine agents")
        await pilot.pause()
        assert first_paint == [True]
        assert table.max_scroll_y == 0, "every agent shows"
        assert table.max_scroll_x == 0, "nothing scrolls sideways"
        shown = table.shown_columns
        assert shown[:2] == ["name", "state"] and "task" in shown
        kept = [key for key in COLUMN_PRIORITY if key in shown]
        assert kept == list(COLUMN_PRIORITY[:len(kept)]), "columns give way in the stated order"
        assert shown == [key for key in ORDER if key in shown], "in their usual order"
        assert len(shown) < len(ORDER), "some columns gave way"
        assert table.columns[next(k for k in table.columns if k.value == "task")].width >= TASK_MIN_WIDTH
        assert table.get_cell("agent-0", "task").plain.startswith("Harden the auth")
        assert fits(app, table) and fits(app, app.attention_table)

        widths: dict[int, list[str]] = {}
        for width in (200, 80, 60, 40):
            await pilot.resize_terminal(width, 24)
            await wait_for(pilot, lambda w=width: app.size.width == w and fits(app, table), message=f"{width} columns")
            await pilot.pause()
            assert table.max_scroll_x == 0 or width == 40
            widths[width] = table.shown_columns
            assert widths[width][:2] == ["name", "state"], "the name and the state never give way"
            assert widths[width] == [key for key in ORDER if key in COLUMN_PRIORITY[:len(widths[width])]]
        assert widths[200] == ORDER, "a wide screen shows every column"
        assert len(widths[200]) >= len(widths[80]) >= len(widths[60]) > len(widths[40]) >= 2
        assert app.agents_table.keys == [f"agent-{index}" for index in range(9)]

    run(app, scenario, size=(80, 24))


def test_needs_you_headers_line_up_from_the_first_paint(engine: Sandbox) -> None:
    """The first items of "Needs you" come with their columns' widths set: the headers do not move once the
    rest of the dashboard has loaded (they were 4 columns off for half a minute)."""
    asker = engine.root.parent / "asker.yaml"
    asker.write_text('turns:\n  - [ask: "Delete the build folder and every cache under it?", say: "ok"]\n')
    for name in ("asks", "also-asks"):
        engine.sv("start", name, "--task", "go", "--command", f"{DEMO_AGENT} --script {asker}")
    for name in ("asks", "also-asks"):
        engine.wait_state(name, "waiting", timeout=30)
    app, _ = make(engine)
    first: list[tuple[bool, list[int]]] = []

    def widths() -> list[int]:
        return [column.width for column in app.attention_table.columns.values()]

    async def scenario(pilot: Pilot[Any]) -> None:
        table = app.attention_table
        await wait_for(pilot, lambda: table.row_count > 0, message="the first items")
        first.append((fits(app, table), widths()))
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: table.row_count == 2, message="both items")
        await pilot.pause()
        assert first == [(True, widths())], "the headers where they were at the first paint"
        assert fits(app, table) and table.max_scroll_x == 0

    run(app, scenario, size=(120, 30))


def background_of(style: Style) -> str | None:
    return None if style.bgcolor is None else style.bgcolor.get_truecolor().hex


def test_a_light_theme_draws_badges_rows_and_the_preview_in_its_own_colours(engine: Sandbox) -> None:
    asker = engine.root.parent / "asker.yaml"
    asker.write_text('turns:\n  - [say: "Thinking it over.", ask: "Delete the cache?", say: "Deleted."]\n')
    engine.sv("start", "asks", "--task", "go", "--command", f"{DEMO_AGENT} --script {asker}")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await wait_for(pilot, lambda: "ASK" in app.agents_table.get_cell("asks", "badges").plain, message="ASK")
        await wait_for(pilot, lambda: "Delete the cache?" in app.preview.text, message="the question on the pane")
        app.theme = "solarized-light"
        await wait_for(pilot, lambda: app.board.palette.badge("ASK").endswith(
            Color.parse(app.get_css_variables()["warning"]).get_truecolor().hex), message="the light palette")
        await pilot.pause()
        theme = app.get_css_variables()
        background = Color.parse(theme["background"]).get_truecolor().hex
        warning = Color.parse(theme["warning"]).get_truecolor().hex

        badge = app.agents_table.get_cell("asks", "badges")
        assert background_of(Style.parse(str(badge.spans[0].style))) == warning, "ASK on the theme's warning"
        kind = app.attention_table.get_cell("0", "kind")
        assert background_of(Style.parse(str(kind.style))) == warning

        # The pane's text is drawn on the theme's background, not on the terminal's default dark one.
        preview = app.preview
        backgrounds = set()
        for y in range(preview.size.height):
            for segment in preview.render_line(y):
                if segment.style is not None and segment.text.strip():
                    backgrounds.add(background_of(segment.style))
        assert backgrounds == {background}, backgrounds

        app.theme = "textual-dark"  # and back: the preview follows
        await wait_for(pilot, lambda: app.board.palette.badge("ASK") != f"bold #000000 on {warning}")
        await pilot.pause()
        dark = Color.parse(app.get_css_variables()["background"]).get_truecolor().hex
        line = preview.render_line(0)
        assert {background_of(s.style) for s in line if s.style is not None and s.text.strip()} <= {dark}

    run(app, scenario)
