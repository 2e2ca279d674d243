"""Pictures of the main screens, on fixed data and a frozen clock (pytest-textual-snapshot).

After an intended change of the look: `pytest tests/test_ui_snapshots.py --snapshot-update`, then look at
the SVGs in tests/__snapshots__/ before committing them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from supervisor.ui.app import SupervisorApp
from supervisor.ui.fake import NOW, FakeSource
from supervisor.ui.review import DiffScreen
from supervisor.ui.screens import ConfirmScreen, HelpScreen, NewHelperScreen, NewSessionScreen, PromptScreen
from supervisor.ui.taskboard import TaskBoardScreen
from supervisor.ui.testing import loaded, screen_is, wait_for

SIZE = (140, 40)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Event times are shown in local time: make it the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def sample_app(source: FakeSource | None = None) -> SupervisorApp:
    return SupervisorApp(source or FakeSource.sample(), clock=lambda: NOW)


def settled(select: str = "ui", then: Callable[[Pilot[Any]], Any] | None = None) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, SupervisorApp)
        await loaded(pilot, diffstat=True)
        app.select_agent(select)
        await loaded(pilot, diffstat=True)
        await wait_for(pilot, lambda: app.events_of == select and app.events_shown, message="its events")
        if then is not None:
            await then(pilot)
        # Engine news is drawn at most once a second: a listing or events that came meanwhile are drawn first
        # (the log's lines, and so its scrollbar, are those of the settled screen).
        await loaded(pilot, diffstat=True)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


def test_main_screen(snap_compare: Any) -> None:
    """Tree, needs-you list, badges, diff stats, the waiting agent's pane with its colours, its events."""
    assert snap_compare(sample_app(), terminal_size=SIZE, run_before=settled())


def test_needs_me_filter(snap_compare: Any) -> None:
    async def needs_me(pilot: Pilot[Any]) -> None:
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: len(pilot.app.agents_table.keys) == 6)

    assert snap_compare(sample_app(), terminal_size=SIZE, run_before=settled("auth", needs_me))


def test_help_screen(snap_compare: Any) -> None:
    async def help_screen(pilot: Pilot[Any]) -> None:
        await pilot.press("question_mark")
        await screen_is(pilot, HelpScreen)

    assert snap_compare(sample_app(), terminal_size=(140, 46), run_before=settled("ui", help_screen))


def test_new_session_form(snap_compare: Any) -> None:
    async def form(pilot: Pilot[Any]) -> None:
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        pilot.app.screen.query_one("#name", Input).value = "Payments"
        await pilot.press("enter")  # refused: upper case
        await wait_for(pilot, lambda: "invalid" in str(pilot.app.screen.query_one("#error").render()))

    assert snap_compare(sample_app(), terminal_size=SIZE, run_before=settled("ui", form))


def test_task_board(snap_compare: Any) -> None:
    async def task_board(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: pilot.app.tasks is not None, message="the tasks")
        await pilot.press("t")
        await screen_is(pilot, TaskBoardScreen)
        await wait_for(pilot, lambda: pilot.app.screen.table.row_count == 6)

    assert snap_compare(sample_app(), terminal_size=SIZE, run_before=settled("docs", task_board))


def test_engine_restarting_banner(snap_compare: Any) -> None:
    source = FakeSource.sample()

    async def down(pilot: Pilot[Any]) -> None:
        source.go_down(restartable=False)
        # First "the engine is not running", then, once the dashboard's try to start it failed, what it said.
        await wait_for(pilot, lambda: "did not start" in str(pilot.app.banner.render()))

    assert snap_compare(sample_app(source), terminal_size=SIZE, run_before=settled("auth", down))


@pytest.mark.parametrize("width", [120, 160])
def test_every_action_key_in_the_footer(snap_compare: Any, width: int) -> None:
    """The footer holds every action's key at the usual widths: compact at 120 (the palette key left out),
    roomy with the palette key at 160."""
    assert snap_compare(sample_app(), terminal_size=(width, 36), run_before=settled("api"))


def test_new_helper_form(snap_compare: Any) -> None:
    async def form(pilot: Pilot[Any]) -> None:
        await pilot.press("h")
        await screen_is(pilot, NewHelperScreen)
        pilot.app.screen.query_one("#name", Input).value = "tests"
        await pilot.press("enter")  # refused: no role
        await wait_for(pilot, lambda: "needed" in str(pilot.app.screen.query_one("#error").render()))

    assert snap_compare(sample_app(), terminal_size=SIZE, run_before=settled("auth", form))


def test_send_prompt(snap_compare: Any) -> None:
    async def prompt(pilot: Pilot[Any]) -> None:
        await pilot.press("i")
        await screen_is(pilot, PromptScreen)
        pilot.app.screen.query_one(Input).value = "run the tests again"

    assert snap_compare(sample_app(), terminal_size=SIZE, run_before=settled("auth", prompt))


def test_stop_confirmation(snap_compare: Any) -> None:
    async def confirm(pilot: Pilot[Any]) -> None:
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)

    assert snap_compare(sample_app(), terminal_size=SIZE, run_before=settled("auth", confirm))


@pytest.mark.parametrize("theme", ["textual-dark", "solarized-light"])
@pytest.mark.parametrize("size", [(80, 24), (120, 35), (200, 50)], ids=["80x24", "120x35", "200x50"])
def test_main_screen_sizes_and_themes(snap_compare: Any, size: tuple[int, int], theme: str) -> None:
    """From a small terminal to a large one, in a dark and a light theme: headers aligned from the first
    paint, no sideways scrolling, "Needs you" and the agents sharing the rows."""

    async def themed(pilot: Pilot[Any]) -> None:
        pilot.app.theme = theme
        await pilot.pause()

    assert snap_compare(sample_app(), terminal_size=size, run_before=settled("ui", themed))


@pytest.mark.parametrize("theme", ["textual-dark", "solarized-light"])
def test_diff_view(snap_compare: Any, theme: str) -> None:
    """D: the changed files, the first one's hunks with its code coloured, in a dark and a light theme."""

    async def diff(pilot: Pilot[Any]) -> None:
        pilot.app.theme = theme
        await pilot.pause()
        await pilot.press("D")
        await screen_is(pilot, DiffScreen)
        screen = pilot.app.screen
        assert isinstance(screen, DiffScreen)
        await wait_for(pilot, lambda: screen.loaded and screen.current == 0, message="api's changes")

    assert snap_compare(sample_app(), terminal_size=(120, 35), run_before=settled("api", diff))
