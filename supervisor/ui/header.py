"""The dashboard's header: Textual's, except that a new title or count repaints the title alone.

Textual's header title asks for a layout pass of the whole screen on every change of its text; at 100 agents the
counts in the header change every second, and each pass re-measures and redraws every widget. The header's size
never depends on its text, so its title is updated without one; and at once, in the frame that draws the counts'
change, rather than (as Header's watchers, which are coroutines, do) a moment later, in a frame of its own.
"""

from __future__ import annotations

import contextlib

from textual import events
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.visual import VisualType
from textual.widget import Widget
from textual.widgets import Header
from textual.widgets._header import HeaderClock, HeaderClockSpace, HeaderIcon, HeaderTitle


class SteadyTitle(HeaderTitle):
    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        super().update(content, layout=False)


class SteadyHeader(Header):
    def compose(self) -> ComposeResult:
        yield HeaderIcon().data_bind(Header.icon)
        yield SteadyTitle()
        yield HeaderClock().data_bind(Header.time_format) if self._show_clock else HeaderClockSpace()

    def _on_mount(self, event: events.Mount) -> None:
        """Header's watchers of the titles, as plain functions (Header's own are not set up)."""

        def set_title() -> None:
            with contextlib.suppress(NoScreen, NoMatches):  # (the header is being taken down)
                self.query_one(SteadyTitle).update(self.format_title())

        self.watch(self.app, "title", set_title)
        self.watch(self.app, "sub_title", set_title)
        self.watch(self.screen, "title", set_title)
        self.watch(self.screen, "sub_title", set_title)
        Widget._on_mount(self, event)
        event.prevent_default()  # Header._on_mount would add its own, deferred, watchers
