"""The dashboard's header: Textual's, except that a new title or count repaints the title alone.

Textual's header title asks for a layout pass of the whole screen on every change of its text; at 100 agents the
counts in the header change every second, and each pass re-measures and redraws every widget. The header's size
never depends on its text, so its title is updated without one.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.visual import VisualType
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
