"""Helpers for driving the dashboard with Textual's Pilot (tests, docs screenshots, the benchmark)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from supervisor.ui.app import SupervisorApp


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 30.0,
                   message: str = "condition") -> Any:
    """Let the app run until `predicate()` is truthy (it sees worker results as they land)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await pilot.pause(0.02)


async def screen_is(pilot: Pilot[Any], kind: type) -> None:
    """Until the app shows a screen of `kind` (a form, the help, a confirmation)."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind), message=kind.__name__)


async def type_in(pilot: Pilot[Any], text: str) -> None:
    """Fill the focused form field at once (Pilot types one key per frame) and submit it."""
    field = pilot.app.focused
    assert isinstance(field, Input)
    field.value = text
    await pilot.press("enter")


async def loaded(pilot: Pilot[Any], *, diffstat: bool = False, preview: bool = True) -> None:
    """Until the first listing (and the diff stats, and the selected agent's pane) are on screen."""
    app = pilot.app
    assert isinstance(app, SupervisorApp)
    await wait_for(pilot, lambda: app.loaded and app.selected is not None, message="the first listing")
    if diffstat:
        await wait_for(pilot, lambda: app.board.diffstat, message="the diff stats")
    if preview:
        await wait_for(pilot, lambda: app.preview.lines and app._preview_of == app.selected,
                       message="the preview")
    await wait_for(pilot, lambda: app.events_scope == "all" or app.events_of == app.selected,
                   message="the selected agent's events")
    await wait_for(pilot, lambda: not any(app._busy.values()), message="requests in flight")
    await wait_for(pilot, lambda: not app.pacer.pending, message="the news drawn")
    await pilot.pause()


async def drawn(pilot: Pilot[Any]) -> None:
    """Until the news the dashboard has taken in is on screen (it draws engine news at most once a second)."""
    app = pilot.app
    assert isinstance(app, SupervisorApp)
    await wait_for(pilot, lambda: not app.pacer.pending, message="the news drawn")
    await pilot.pause()


def run(app: SupervisorApp, scenario: Callable[[Pilot[Any]], Awaitable[None]],
        size: tuple[int, int] = (140, 42)) -> None:
    """Run `scenario` against `app` in a headless terminal of `size`."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    asyncio.run(main())
