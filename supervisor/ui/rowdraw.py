"""Drawing a table's rows by what they show, for the dashboard's tables under churn.

With 100 busy agents every visible row of the agents list changes every second, and DataTable draws a changed
row again cell by cell through Rich (padding, styles, cropping), reading its reactive settings and styles
again for every cell: about 3 ms a row, a tenth of a core for the list alone. Most cells of a changed row
show what they showed a second ago (the name, the task, the cost), or what other rows show (`working`, `-`,
`3s`). `DrawnByValue` therefore draws a cell once per value, width and style, and a row from such cells,
adding only each cell's position (which a click reads); the cursor's row is told apart by whether it is on
the row rather than where it is, so moving the cursor redraws two rows, not every row.

It covers the dashboard's case (rows one line high, a row cursor, no fixed rows or columns, no row labels, no
zebra stripes, every value a `Text`); anything else is drawn by DataTable as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.renderables.styled import Styled
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

# What this leans on inside DataTable (Textual 8): without one of them, DataTable draws as it does.
_METHODS = ("_get_styles_to_render_cell", "_render_line", "_get_offsets", "_render_line_in_row",
            "_should_render_row_labels", "_clear_caches")
_ATTRIBUTES = ("_row_locations", "_data", "_show_hover_cursor",
               "_update_count", "_pseudo_class_state", "_header_row_key", "_row_label_column_width")

if TYPE_CHECKING:
    _Mixin = DataTable[Any]
else:
    _Mixin = object  # not a Widget: Textual takes CSS, bindings and component classes from the first DOM base

Lines = list[list[Segment]]


class DrawnByValue(_Mixin):
    """A mixin for a DataTable (listed before it in the bases)."""

    draw_by_value: ClassVar[bool] = True  # False: drawn by DataTable alone (bench/ui.py's baseline)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_value: LRUCache[tuple[Any, ...], Lines] = LRUCache(4096)  # cell drawings, without position
        # Each row's cells as last drawn, at their place: (value, width, pre style, post style, row index, line).
        self._placed: dict[RowKey, list[tuple[Text, int, Style, Style, int, list[Segment]]]] = {}
        self._versions: dict[RowKey, int] = {}  # rows whose values changed in place: part of their cache keys
        self._rows_drawn: LRUCache[tuple[Any, ...], tuple[Lines, Lines]] = LRUCache(1000)
        self._lines_drawn: LRUCache[tuple[Any, ...], Strip] = LRUCache(1000)  # by line of the table
        self._paint_style: Style | None = None  # the table's style, read once per paint
        self._drawable = self.draw_by_value and all(hasattr(DataTable, name) for name in _METHODS) and all(
            hasattr(self, name) for name in _ATTRIBUTES)

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._by_value.clear()
        self._placed.clear()
        self._rows_drawn.clear()
        self._lines_drawn.clear()

    def rows_changed(self, rows: set[RowKey]) -> bool:
        """Values of these rows were put in place (not through DataTable): their drawings are stale. False when
        DataTable draws them (its caches must then be cleared by the caller)."""
        if not self._drawable:
            return False
        for row in rows:
            self._versions[row] = self._versions.get(row, 0) + 1
        self._lines_drawn.clear()
        if len(self._placed) > 2 * len(self.rows) + 100:  # rows removed meanwhile
            self._placed = {row: cells for row, cells in self._placed.items() if row in self.rows}
            self._versions = {row: version for row, version in self._versions.items() if row in self.rows}
        return True

    def render_lines(self, crop: Region) -> list[Strip]:
        self._paint_style = self.rich_style  # DataTable works it out again for every line
        try:
            return super().render_lines(crop)
        finally:
            self._paint_style = None

    def render_line(self, y: int) -> Strip:
        style = self._paint_style
        if style is None or self.fixed_rows or not self._drawable:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += int(scroll_y)
        return self._render_line(y, int(scroll_x), int(scroll_x) + self.size.width, style)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """A line of the table: its row's cells side by side (each simplified once, when it was drawn)."""
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        if self._simple(row_key, line_no) is None:
            return super()._render_line(y, x1, x2, base_style)
        width = self.size.width
        cursor, hover = self.cursor_coordinate, self.hover_coordinate
        key = (y, x1, x2, width, cursor, hover, base_style, self.cursor_type, self._show_hover_cursor,
               self._update_count, self._pseudo_class_state)
        strip = self._lines_drawn.get(key)
        if strip is not None:
            return strip
        _, cells = self._render_line_in_row(row_key, line_no, base_style, cursor, hover)
        segments = [segment for cell in cells for segment in cell]
        padding = self.cell_padding
        used = self._row_label_column_width + sum(2 * padding + (c.content_width if c.auto_width else c.width)
                                                  for c in self.ordered_columns)
        total = max(used, width)
        whole = x1 == 0 and x2 >= total
        strip = Strip(segments, total) if whole else Strip(line_crop(segments, x1, x2, total))
        if strip.cell_length != width:
            strip = strip.adjust_cell_length(width, base_style)
        self._lines_drawn[key] = strip
        return strip

    def _simple(self, row_key: RowKey, line_no: int) -> int | None:
        """The row's index when it is one this mixin draws; None when DataTable must."""
        if (not self._drawable or line_no or row_key is self._header_row_key or self.fixed_rows or self.fixed_columns
                or self.cursor_type != "row" or self.zebra_stripes or self._should_render_row_labels):
            return None
        row = self.rows.get(row_key)
        index = self._row_locations.get(row_key)
        if row is None or row.height != 1 or index is None:
            return None
        return int(index)

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style, cursor_location: Coordinate,
                            hover_location: Coordinate) -> tuple[Lines, Lines]:
        index = self._simple(row_key, line_no)
        cells = self._data.get(row_key) if index is not None else None
        if index is None or cells is None or not all(isinstance(value, Text) for value in cells.values()):
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        cursor, hover = cursor_location.row == index, hover_location.row == index
        size_width = self.size.width
        key = (row_key, self._versions.get(row_key, 0), base_style, cursor, hover, show_cursor, show_hover,
               self._update_count, self._pseudo_class_state, size_width)
        cached = self._rows_drawn.get(key)
        if cached is not None:
            return cached
        padding = self.cell_padding
        foreground_css = self.cursor_foreground_priority == "css"
        background_css = self.cursor_background_priority == "css"
        component, post = self._get_styles_to_render_cell(False, False, False, hover, cursor, show_cursor,
                                                          show_hover, foreground_css, background_css)
        pre = base_style + component
        line: Lines = []
        used = self._row_label_column_width
        before = self._placed.get(row_key) or []
        placed: list[tuple[Text, int, Style, Style, int, list[Segment]]] = []
        for column_index, column in enumerate(self.ordered_columns):
            width = 2 * padding + (column.content_width if column.auto_width else column.width)
            used += width
            value = cells.get(column.key)
            if not isinstance(value, Text):
                value = Text()
            old = before[column_index] if column_index < len(before) else None
            if (old is not None and old[0] is value and old[1] == width and old[4] == index and old[2] == pre
                    and old[3] == post):
                segments = old[5]  # the very value drawn last time, where it was: most cells of a changed row
            else:
                segments = self._placed_cell(value, width, padding, pre, post, index, column_index)
            placed.append((value, width, pre, post, index, segments))
            line.append(segments)
        self._placed[row_key] = placed
        extend, _ = self._get_styles_to_render_cell(False, False, False, hover, cursor, show_cursor, show_hover,
                                                    False, False)
        extend = base_style + extend + Style.from_meta({"row": index, "column": 0, "out_of_bounds": True})
        line.append([Segment(" " * max(0, size_width - used), extend)])
        pair: tuple[Lines, Lines] = ([], line)
        self._rows_drawn[key] = pair
        return pair

    def _placed_cell(self, value: Text, width: int, padding: int, pre: Style, post: Style, row: int,
                     column: int) -> list[Segment]:
        """One cell's line at its place: drawn as DataTable draws it (Rich: padded, styled, cut to width), once
        per what it shows; then given the row and column a click on it reads."""
        what = (value.plain, tuple(value.spans), value.style, value.justify, value.overflow, value.no_wrap, width,
                padding, pre, post)
        drawn = self._by_value.get(what)
        if drawn is None:
            options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
            drawn = self.app.console.render_lines(
                Styled(Padding(value, (0, padding)), pre_style=pre, post_style=post), options)
            self._by_value[what] = drawn
        where = Style.from_meta({"row": row, "column": column})
        return list(Segment.simplify(
            Segment(text, where if style is None else style + where, control) for text, style, control in drawn[0]))
