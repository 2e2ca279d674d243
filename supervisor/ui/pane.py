"""The live preview of an agent's pane, with its colours and scrollback, without attaching.

Only the visible lines are rendered (a line API widget, like Textual's own Log), and a new capture is
applied only when it differs from the one shown, so a busy agent costs one redraw per change. It follows
the bottom of the pane unless the user scrolled up into the history.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


def screen_lines(raw: str) -> list[Text]:
    """A capture with ANSI colours as lines of Text, without the blank rows under the last output."""
    lines = list(Text.from_ansi(raw, no_wrap=True).split("\n", allow_blank=True))
    while lines and not lines[-1].plain.strip():
        lines.pop()
    return lines


class PaneView(ScrollView, can_focus=True):
    """Lines of rich Text, only the visible ones rendered; a pane's capture follows its bottom."""

    FOLLOWS_BOTTOM = True  # a new capture (or agent) shows its last lines; False: its first ones

    DEFAULT_CSS = """
    PaneView {
        background: $background;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[Text] = []
        self._strips: dict[int, Strip] = {}
        self._raw: str | None = None
        self._strips_style: Style | None = None  # the widget's style the cached strips were drawn in

    @property
    def lines(self) -> list[Text]:
        return self._lines

    @property
    def text(self) -> str:
        """What the preview shows, as plain text (for tests)."""
        return "\n".join(line.plain for line in self._lines)

    def show(self, raw: str | None, lines: list[Text] | None = None, *, reset: bool = False) -> bool:
        """Show a capture (or a message when `lines` is given with `raw` None); False when unchanged.

        `reset`: another agent's pane, so go back to following its bottom."""
        if raw is not None and raw == self._raw and not reset:
            return False
        self._raw = raw
        follow = self.FOLLOWS_BOTTOM and (reset or self.scroll_y >= self.max_scroll_y)
        self._lines = lines if lines is not None else screen_lines(raw or "")
        self._strips.clear()
        width = max((cell_len(line.plain) for line in self._lines), default=0)
        self.virtual_size = Size(width, len(self._lines))
        if follow:
            self.scroll_end(animate=False, force=True, x_axis=False)  # after the layout knows the new size
        elif reset:
            self.scroll_to(0, 0, animate=False, force=True)
        self.refresh()
        return True

    def message(self, text: str) -> None:
        self.show(None, [Text(text, style="dim italic")], reset=True)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        style = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, style)
        if style != self._strips_style:  # another theme: every line drawn again on its background
            self._strips.clear()
            self._strips_style = style
        strip = self._strips.get(index)
        if strip is None:
            # The widget's colours under the pane's own: text the pane did not colour takes the theme's, not the
            # console's default (dark) ones.
            line = self._lines[index].copy()
            line.style = style
            strip = Strip(line.render(self.app.console), cell_len(line.plain)).apply_style(style).simplify()
            self._strips[index] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, index)
