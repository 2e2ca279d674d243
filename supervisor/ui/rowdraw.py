"""Drawing a table's rows by what they show, for the dashboard's tables under churn.

With 100 busy agents every visible row of the agents list changes every second, and DataTable draws a changed
row again cell by cell through Rich (padding, styles, cropping), reading its reactive settings and styles
again for every cell: about 3 ms a row, a tenth of a core for the list alone. Most cells of a changed row
show what they showed a second ago (the name, the task, the cost), or what other rows show (`working`, `-`,
`3s`). `DrawnByValue` therefore draws a cell once per value, width and style, and a row from such cells,
as they are: a cell drawn for one row is the very drawing another row with the same value shows. The
cursor's row is told apart by whether it is on the row rather than where it is, so moving the cursor
redraws two rows, not every row.

DataTable puts each cell's row and column in the style of every segment it draws, for a click or the mouse
to read. That made every cell's styles distinct (100 rows, ten columns), and Rich's and Textual's caches of
styles (their sums, their terminal codes, the colour filter) hold about a thousand: under churn they missed
on every frame. Here segments carry no place; a click or a move of the mouse over a row drawn here is given
its row and column from where it is (`_placed_event`), and DataTable reads them as from its own drawing.

It covers the dashboard's case (rows one line high, a row cursor, no fixed rows or columns, no row labels, no
zebra stripes, every value a `Text`); anything else is drawn by DataTable as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual._segment_tools import line_crop
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.renderables.styled import Styled
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

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


@dataclass
class _Paint:
    """The table's settings as every line of one paint reads them (DataTable reads each again for each cell)."""

    style: Style
    simple: bool  # the table is one this mixin draws (its rows, then, one by one)
    columns: list[tuple[ColumnKey, int]]  # each column's key and width, padding included
    used: int  # the width of the row label and the columns
    padding: int
    width: int
    cursor: Coordinate
    hover: Coordinate
    show_cursor: bool
    show_hover: bool
    cursor_type: str
    update_count: int
    pseudo_classes: Any
    styles: dict[tuple[Style, bool, bool], tuple[Style, Style, Style]] = field(default_factory=dict)


class DrawnByValue(_Mixin):
    """A mixin for a DataTable (listed before it in the bases)."""

    draw_by_value: ClassVar[bool] = True  # False: drawn by DataTable alone (bench/ui.py's baseline)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_value: LRUCache[tuple[Any, ...], list[Segment]] = LRUCache(4096)  # cell drawings, by value
        # Each row's cells as last drawn: the cells' styles before and after their own (one pair for the whole
        # row), and each cell's (value, width, line).
        self._placed: dict[RowKey, tuple[Style, Style, list[tuple[Text, int, list[Segment]]]]] = {}
        self._versions: dict[RowKey, int] = {}  # rows whose values changed in place: part of their cache keys
        self._rows_drawn: LRUCache[tuple[Any, ...], tuple[Lines, Lines]] = LRUCache(1000)
        self._lines_drawn: LRUCache[tuple[Any, ...], Strip] = LRUCache(1000)  # by line of the table
        self._shapes: LRUCache[tuple[Any, ...], Lines] = LRUCache(1000)  # drawings of model words (`_drawn_like`)
        self._paint: _Paint | None = None  # what every line of a paint reads, read once (`render_lines`)
        self._drawable = self.draw_by_value and all(hasattr(DataTable, name) for name in _METHODS) and all(
            hasattr(self, name) for name in _ATTRIBUTES)

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._by_value.clear()
        self._shapes.clear()
        self._placed.clear()
        self._rows_drawn.clear()
        self._lines_drawn.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()  # (DataTable drops its drawings: these go with them)
        if hasattr(self, "_rows_drawn"):
            self._by_value.clear()
            self._shapes.clear()
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
        # DataTable reads its pseudo-classes (focus, hover) as it paints: read here first, or this paint's lines
        # would be keyed (and the header drawn) with the last paint's, a focus just taken not among them.
        self._pseudo_class_state = self.get_pseudo_class_state()
        self._paint = self._paint_now()  # what every line of this paint reads, read once
        try:
            return super().render_lines(crop)
        finally:
            self._paint = None

    def _paint_now(self) -> _Paint:
        padding = self.cell_padding
        columns = [(column.key, 2 * padding + (column.content_width if column.auto_width else column.width))
                   for column in self.ordered_columns]
        simple = (self._drawable and not self.fixed_rows and not self.fixed_columns and self.cursor_type == "row"
                  and not self.zebra_stripes and not self._should_render_row_labels)
        return _Paint(self.rich_style, simple, columns, self._row_label_column_width + sum(w for _, w in columns),
                      padding, self.size.width, self.cursor_coordinate, self.hover_coordinate, self.show_cursor,
                      self._show_hover_cursor, self.cursor_type, self._update_count, self._pseudo_class_state)

    def render_line(self, y: int) -> Strip:
        paint = self._paint
        if paint is None or not paint.simple:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += int(scroll_y)
        return self._render_line(y, int(scroll_x), int(scroll_x) + paint.width, paint.style)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """A line of the table: its row's cells side by side (each simplified once, when it was drawn)."""
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        paint = self._paint or self._paint_now()
        if self._simple(row_key, line_no, paint) is None:
            return super()._render_line(y, x1, x2, base_style)
        width = paint.width
        key = (y, x1, x2, width, paint.cursor, paint.hover, base_style, paint.cursor_type, paint.show_hover,
               paint.update_count, paint.pseudo_classes)
        strip = self._lines_drawn.get(key)
        if strip is not None:
            return strip
        _, cells = self._render_line_in_row(row_key, line_no, base_style, paint.cursor, paint.hover)
        # Merged where neighbours share a style (a cell's padding and its text, cells in the row's own style):
        # every later step of a frame (borders, the colour filter, cutting, the terminal's codes) goes segment
        # by segment, over about half as many.
        segments = _joined(cells)
        total = max(paint.used, width)
        whole = x1 == 0 and x2 >= total
        strip = Strip(segments, total) if whole else Strip(line_crop(segments, x1, x2, total))
        if strip.cell_length != width:
            strip = strip.adjust_cell_length(width, base_style)
        self._lines_drawn[key] = strip
        return strip

    def _simple(self, row_key: RowKey, line_no: int, paint: _Paint | None = None) -> int | None:
        """The row's index when it is one this mixin draws; None when DataTable must."""
        if not (paint or self._paint_now()).simple or line_no or row_key is self._header_row_key:
            return None
        row = self.rows.get(row_key)
        index = self._row_locations.get(row_key)
        if row is None or row.height != 1 or index is None:
            return None
        return int(index)

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style, cursor_location: Coordinate,
                            hover_location: Coordinate) -> tuple[Lines, Lines]:
        paint = self._paint or self._paint_now()
        if row_key is self._header_row_key and not line_no and paint.simple:
            return self._header(base_style, cursor_location, hover_location, paint)
        index = self._simple(row_key, line_no, paint)
        cells = self._data.get(row_key) if index is not None else None
        if index is None or cells is None:
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        show_cursor, show_hover = paint.show_cursor, paint.show_hover
        cursor, hover = cursor_location.row == index, hover_location.row == index
        size_width = paint.width
        key = (row_key, self._versions.get(row_key, 0), base_style, cursor, hover, show_cursor, show_hover,
               paint.update_count, paint.pseudo_classes, size_width)
        cached = self._rows_drawn.get(key)
        if cached is not None:
            return cached
        padding = paint.padding
        pre, post, extend = paint.styles.get((base_style, cursor, hover)) or self._cell_styles(paint, base_style,
                                                                                              cursor, hover)
        line: Lines = []
        was = self._placed.get(row_key)
        # The cells drawn last time, when drawn in the same styles (one pair for the whole row: compared once).
        before = was[2] if was is not None and (was[0] is pre or was[0] == pre) and (
            was[1] is post or was[1] == post) else []
        placed: list[tuple[Text, int, list[Segment]]] = []
        for column_index, (column_key, width) in enumerate(paint.columns):
            value = cells.get(column_key)
            if not isinstance(value, Text):
                if column_key in cells:  # not a row this mixin draws (`DataTable` takes any renderable)
                    return super()._render_line_in_row(row_key, line_no, base_style, cursor_location,
                                                       hover_location)
                value = Text()
            old = before[column_index] if column_index < len(before) else None
            if old is not None and old[0] is value and old[1] == width:
                segments = old[2]  # the very value drawn last time: most cells of a changed row
            else:
                segments = self._cell(value, width, padding, pre, post)
            placed.append((value, width, segments))
            line.append(segments)
        self._placed[row_key] = (pre, post, placed)
        line.append([Segment(" " * max(0, size_width - paint.used), extend)])
        pair: tuple[Lines, Lines] = ([], line)
        self._rows_drawn[key] = pair
        return pair

    def _header(self, base_style: Style, cursor_location: Coordinate, hover_location: Coordinate,
                paint: _Paint) -> tuple[Lines, Lines]:
        """The header row, drawn by DataTable once per labels, widths and styles: its own cache goes stale with
        every row added or removed ("Needs you" gains or loses rows most seconds under churn)."""
        key = ("header", tuple(paint.columns), tuple(column.label.plain for column in self.ordered_columns),
               base_style, cursor_location, hover_location, paint.show_cursor, paint.show_hover,
               paint.pseudo_classes, paint.width)
        drawn = self._rows_drawn.get(key)
        if drawn is None:
            drawn = self._rows_drawn[key] = super()._render_line_in_row(self._header_row_key, 0, base_style,
                                                                        cursor_location, hover_location)
        return drawn

    def _cell_styles(self, paint: _Paint, base_style: Style, cursor: bool, hover: bool) -> tuple[Style, Style, Style]:
        """A row's cells' styles before and after their own, and the style of the room right of the last cell."""
        show_cursor, show_hover = paint.show_cursor, paint.show_hover
        foreground_css = self.cursor_foreground_priority == "css"
        background_css = self.cursor_background_priority == "css"
        component, post = self._get_styles_to_render_cell(False, False, False, hover, cursor, show_cursor,
                                                          show_hover, foreground_css, background_css)
        extend, _ = self._get_styles_to_render_cell(False, False, False, hover, cursor, show_cursor, show_hover,
                                                    False, False)
        found = paint.styles[base_style, cursor, hover] = (base_style + component, post, base_style + extend)
        return found

    def _cell(self, value: Text, width: int, padding: int, pre: Style, post: Style) -> list[Segment]:
        """One cell's line: drawn as DataTable draws it (Rich: padded, styled, cut to width), once per what it
        shows, wherever it is shown."""
        what = (value.plain, tuple(value.spans), value.style, value.justify, value.overflow, value.no_wrap, width,
                padding, pre, post)
        drawn = self._by_value.get(what)
        if drawn is None:
            lines = self._drawn_like(value, width, padding, pre, post) or self._draw(value, width, padding, pre, post)
            drawn = self._by_value[what] = list(Segment.simplify(lines[0]))
        return drawn

    def _placed_event(self, event: events.MouseEvent) -> None:
        """Give a mouse event over a row drawn here the row and column DataTable reads from the style under it
        (its own drawing carries them; this one does not). Elsewhere (the header, a row DataTable drew, the
        border) the event stays as it came."""
        if event.style.meta or not self._drawable:
            return
        offset = event.get_content_offset(self)
        paint = self._paint_now()
        if offset is None or not paint.simple:
            return
        header = self.header_height if self.show_header else 0
        if offset.y < header:
            return
        index = offset.y - header + int(self.scroll_offset.y)
        row_key = self._row_locations.get_key(index)
        if row_key is None or self._simple(row_key, 0, paint) is None:
            return
        x = offset.x + int(self.scroll_offset.x) - self._row_label_column_width
        place: dict[str, Any] = {"row": index, "column": 0, "out_of_bounds": True}  # right of the last cell
        for column, (_, width) in enumerate(paint.columns):
            if x < width:
                place = {"row": index, "column": column}
                break
            x -= width
        event.style = event.style + Style.from_meta(place)

    async def _on_click(self, event: events.Click) -> None:
        self._placed_event(event)
        await super()._on_click(event)

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        self._placed_event(event)
        super()._on_mouse_move(event)

    def _draw(self, value: Text, width: int, padding: int, pre: Style, post: Style) -> Lines:
        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        return self.app.console.render_lines(Styled(Padding(value, (0, padding)), pre_style=pre, post_style=post),
                                             options)

    def _drawn_like(self, value: Text, width: int, padding: int, pre: Style, post: Style) -> Lines | None:
        """A short plain word (a CPU or memory figure, an age, a state) drawn from the drawing of another of its
        length and style, its letters put in place of the other's: Rich lays out such words by their length
        alone. The drawings of CPU and memory figures, new every second under churn, cost a tenth as much.
        None: not such a word (spans, spaces, wide or control characters, or too long to fit)."""
        plain = value.plain
        length = len(plain)
        if (value.spans or not length or length > width - 2 * padding or not plain.isascii()
                or not plain.isprintable() or " " in plain or value.justify == "full"):
            return None
        shape = (length, value.style, value.justify, value.overflow, value.no_wrap, width, padding, pre, post)
        template = self._shapes.get(shape)
        if template is None:
            model = value.copy()
            model.plain = _MODEL * length
            template = self._shapes[shape] = self._draw(model, width, padding, pre, post)
        if len(template) != 1:
            return None
        line: list[Segment] = []
        used = 0
        for segment in template[0]:
            text = segment.text
            count = text.count(_MODEL)
            if count:
                text = text.replace(_MODEL * count, plain[used:used + count])
                used += count
            line.append(Segment(text, segment.style, segment.control))
        return [line] if used == length else None


_MODEL = "x"  # the letter of a model word (its drawing's only non-space letters are the word's)


def _joined(cells: Lines) -> list[Segment]:
    """The cells' segments side by side, neighbours in one style merged (`Segment.simplify`). Each cell's
    own segments are merged already (`DrawnByValue._cell`): only where two cells meet is compared."""
    joined: list[Segment] = []
    for cell in cells:
        if not cell:
            continue
        if joined:
            last, first = joined[-1], cell[0]
            if not last.control and not first.control and (last.style is first.style or last.style == first.style):
                joined[-1] = Segment(last.text + first.text, last.style)
                joined.extend(cell[1:])
                continue
        joined.extend(cell)
    return joined
