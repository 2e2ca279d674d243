"""Scrolling widgets whose content never lays the screen out again.

Textual treats a change of a widget's scrollable (virtual) size as a change of layout: a row added to or
removed from a table, or a line written to a log, makes the whole screen arranged again and every widget's
changed region drawn, 30-60 ms at 100 agents, once or twice a second under churn. For a widget whose own size
the layout fixes (a set height, as the dashboard's tables and its event log have), what it holds cannot move
anything else: only its scrollbar changes. `Steady` keeps such changes to the widget itself (its scrollbar
updated, itself repainted); a scrollbar that appears or goes still lays the screen out (Textual does it when
the scrollbar's visibility changes), and a widget sized by its content (`height: auto`) keeps the full layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.widget import Widget
from textual.widgets import RichLog

if TYPE_CHECKING:
    _Mixin = Widget
else:
    _Mixin = object  # not a Widget: Textual takes CSS, bindings and component classes from the first DOM base


class Steady(_Mixin):
    """A mixin for a `ScrollView` (DataTable, RichLog): listed before it in the bases."""

    steady: ClassVar[bool] = True  # False: laid out as Textual does (bench/ui.py's baseline)
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def watch_virtual_size(self, size: Size) -> None:
        if not self.steady:
            self.refresh(layout=True)
        elif self.is_mounted and self.container_size and self.is_scrollable:
            self._scroll_update(size)  # the scrollbar's thumb, its visibility, the scroll kept in range

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Any:
        if layout and self.steady and self.size_is_fixed:
            layout = False
            repaint = True
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    @property
    def size_is_fixed(self) -> bool:
        """Whether the layout alone decides this widget's size (what it holds does not)."""
        if not self.is_mounted or not self.size:
            return False  # not laid out yet: the first layout must happen
        styles = self.styles
        height, width = styles.height, styles.width
        # None: the widget fills what its container gives it.
        return (height is None or not height.is_auto) and (width is None or not width.is_auto)


class SteadyLog(Steady, RichLog):
    """The event log: a line written scrolls it, and moves nothing else.

    RichLog scrolls to a line written only after the next frame: a second frame, of the whole screen when other
    widgets changed meanwhile. Its size is fixed here, so it scrolls at once, in the frame that shows the line."""

    def write(self, content: Any, width: int | None = None, expand: bool = False, shrink: bool = True,
              scroll_end: bool | None = None, animate: bool = False) -> Any:
        follow = self.auto_scroll if scroll_end is None else scroll_end
        if not (self.steady and follow and self.size_is_fixed):
            return super().write(content, width, expand, shrink, scroll_end, animate)
        result = super().write(content, width, expand, shrink, False, animate)
        if self._size_known:  # (before, the line waits to be written, and scrolled to, once the size is)
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        return result
