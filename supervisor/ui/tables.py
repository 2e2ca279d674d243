"""Tables that redraw only what changed: rows are compared cell by cell and updated in place.

A refresh never clears a table. In a `SyncTable` rows are keyed by agent: rows that left are removed, new
ones added, changed cells updated, and the rows re-sorted only when their order is wrong; the cursor stays
on the same agent. A `SlotTable` is for a ranked list whose members come and go (what needs a human): its
rows are positions, so a re-ranking updates cells instead of removing and adding rows (each of which makes
Textual lay the whole screen out again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

from supervisor.ui.model import COLUMNS
from supervisor.ui.rowdraw import DrawnByValue
from supervisor.ui.steady import Steady

WINDOW_MARGIN = 3  # rows either side of those on screen kept up to date (`SyncTable._window`)


class KeyedText(Text):
    """The first cell of a row: it carries the row's key, so `DataTable.sort` can order rows by key."""

    def __init__(self, text: Text, key: str) -> None:
        super().__init__()
        self.append_text(text)
        self.row_key = key


class SyncTable(Steady, DrawnByValue, DataTable[Text]):
    """A DataTable fed whole snapshots of rows, applying only the differences; a row added or removed does
    not lay the screen out (`supervisor.ui.steady`)."""

    COLUMNS: Sequence[tuple[str, str]] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._shown: dict[str, dict[str, Text]] = {}
        self._later: dict[str, dict[str, Text]] = {}  # rows off screen whose new cells wait to be put in place
        self._keep_on: str | None = None  # the row under the cursor before the columns were rebuilt
        self.cell_updates = 0  # how many cells were redrawn, for tests and the benchmark

    def on_mount(self) -> None:
        self._ensure_columns()

    def _ensure_columns(self) -> None:
        """The columns, added once: rows may be synced before the table is mounted (a screen just pushed
        gets its first refresh before its widgets' on_mount has run)."""
        if not self.columns:
            for key, label in self.COLUMNS:
                self.add_column(label, key=key)

    @property
    def shown_columns(self) -> list[str]:
        """The keys of the columns shown, in order."""
        return [str(key.value) for key in self.columns]

    def show_columns(self, layout: Sequence[tuple[str, int]]) -> None:
        """Show exactly these columns (key, width), each exactly as wide as said: widths known before the
        first row is drawn, so headers and cells line up from the first paint. Another set of columns
        rebuilds the table (DataTable cannot hide a column); the next `sync` fills it again."""
        self._ensure_columns()
        if [key for key, _ in layout] == self.shown_columns:
            for key, width in layout:
                self.fix_width(key, width)
            return
        self._keep_on = self._keep_on or self.current_key
        self.clear(columns=True)
        self._shown.clear()
        self._later.clear()
        labels = dict(self.COLUMNS)
        for key, width in layout:
            self.add_column(labels[key], key=key, width=max(width, 1))

    def start_afresh(self) -> None:
        """Forget the rows shown: the next `sync` draws every row again (the cursor stays on its row)."""
        self._keep_on = self._keep_on or self.current_key
        self.clear()
        self._shown.clear()
        self._later.clear()

    @property
    def keys(self) -> list[str]:
        """The agents shown, in display order."""
        return [self.name_of(row.key) for row in self.ordered_rows]

    def name_of(self, row_key: RowKey) -> str:
        """The agent a row shows."""
        return str(row_key.value)

    @property
    def current_key(self) -> str | None:
        """The agent under the cursor."""
        if not self.row_count:
            return None
        try:
            key: RowKey = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # the cursor is outside the (just emptied) table
            return None
        return self.name_of(key)

    def select_key(self, name: str) -> bool:
        """Move the cursor to the agent's row; False when it is not shown."""
        if name not in self._shown:
            return False
        self.move_cursor(row=self.get_row_index(name), animate=False)
        return True

    def fix_width(self, column: str, width: int) -> None:
        """Give `column` exactly `width` cells (its values are cut to fit by the caller): the last column takes
        the room the others leave, so the table never scrolls sideways, and a narrower screen narrows it."""
        self._ensure_columns()
        found = self.columns[ColumnKey(column)]
        if found.auto_width or found.width != width:
            found.auto_width = False
            found.width = max(width, 1)
            self._require_update_dimensions = True
            self._clear_caches()
            self.refresh()

    def sync(self, rows: Sequence[tuple[str, dict[str, Text]]]) -> None:
        """Make the table show exactly `rows` (agent, cells), in this order."""
        selected = self.current_key or self._keep_on
        self._keep_on = None
        self._apply(rows)
        if selected is not None and self.current_key != selected:
            self.select_key(selected)

    def _apply(self, rows: Sequence[tuple[str, dict[str, Text]]]) -> None:
        """Rows that stay are changed in place; those off screen (beyond a screen's height either way) only when
        they come into view (`watch_scroll_y`) or are read (`get_cell`, `get_row`): with 100 agents changing
        every second, two thirds of the rows' changes would be put in place for nothing."""
        self._ensure_columns()
        wanted = {key for key, _ in rows}
        gone = [k for k in self._shown if k not in wanted]
        self._remove_rows(gone)
        for key in gone:
            del self._shown[key]
            self._later.pop(key, None)
        first = self.COLUMNS[0][0]
        shown_columns = self.shown_columns
        window = self._window()
        changed: list[tuple[str, str, Text]] = []
        for index, (key, cells) in enumerate(rows):
            shown = self._shown.get(key)
            if shown is cells:
                continue  # the model hands back the very same cells while nothing in the row changed
            if shown is None:
                self._shown[key] = cells
                values = [cells[column] for column in shown_columns]
                values[0] = KeyedText(values[0], key)
                self.add_row(*values, key=key)
                self.cell_updates += len(values)
                continue
            if index not in window:
                self._later[key] = cells
                continue
            self._changes(key, cells, shown, shown_columns, first, changed)
        self._update_cells(changed)
        order = [key for key, _ in rows]
        if [str(row.key.value) for row in self.ordered_rows] != order:
            position = {key: index for index, key in enumerate(order)}
            self.sort(key=lambda values: position[values[0].row_key])
        self._measure_now()

    def _remove_rows(self, keys: Sequence[str]) -> None:
        """Remove these rows at once. DataTable's `remove_row` renumbers every row left and sets its cursor
        again, for each row removed: "Needs you" (rows by rank) lost several of its last rows most seconds
        under churn."""
        internals = ("_row_locations", "_data", "_updated_cells", "_update_count", "_require_update_dimensions")
        if len(keys) < 2 or not all(hasattr(self, name) for name in internals):
            for key in keys:
                self.remove_row(key)
            return
        gone = {RowKey(key) for key in keys}
        locations = self._row_locations
        left = sorted((index, row) for row in locations
                      if row not in gone and (index := locations.get(row)) is not None)
        self._row_locations = TwoWayDict({row: index for index, (_, row) in enumerate(left)})
        for row in gone:
            for column in self._data.get(row, {}):
                self._updated_cells.discard(CellKey(row, column))
            del self.rows[row]
            del self._data[row]
        self._require_update_dimensions = True
        self.check_idle()
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self.refresh(layout=True)

    def _measure_now(self) -> None:
        """What DataTable measures once idle after rows come or go (column widths, its scrollable size), measured
        now: the scrollbar then changes in the frame that shows the rows, not in a frame of its own after it."""
        if not all(hasattr(self, name) for name in ("_updated_cells", "_new_rows", "_update_column_widths",
                                                    "_update_dimensions", "_require_update_dimensions")):
            return  # another Textual: measured when idle, as it does
        if self._updated_cells:
            updated = self._updated_cells.copy()
            self._updated_cells.clear()
            self._update_column_widths(updated)
        if self._require_update_dimensions:
            self._require_update_dimensions = False
            new_rows = self._new_rows.copy()
            self._new_rows.clear()
            # New rows are measured, cell by cell through Rich, for the widths of columns sized by their content
            # and for rows of their own height: neither here once every column has its set width ("Needs you"
            # gains rows most seconds under churn). The scrollable size is worked out all the same.
            fixed = not any(column.auto_width for column in self.columns.values())
            self._update_dimensions([] if fixed and not any(
                (row := self.rows.get(key)) is not None and (row.auto_height or row.label is not None)
                for key in new_rows) else new_rows)

    def _changes(self, key: str, cells: dict[str, Text], shown: dict[str, Text], columns: list[str], first: str,
                 changed: list[tuple[str, str, Text]]) -> None:
        """The cells of row `key` that differ from those `shown`, added to `changed`; the row is then up to date."""
        self._shown[key] = cells
        self._later.pop(key, None)
        for column in columns:
            value = cells[column]
            before = shown[column]
            if before is not value and before != value:
                changed.append((key, column, KeyedText(value, key) if column == first else value))

    def _window(self) -> range:
        """The rows kept up to date: those on screen, and a few either side."""
        height = self.size.height
        if not height or not self.is_mounted:
            return range(0, 1 << 30)  # not laid out yet: every row
        top = int(self.scroll_offset.y)
        return range(max(top - WINDOW_MARGIN, 0), top + height + WINDOW_MARGIN)

    def catch_up(self, keys: Iterable[str] | None = None) -> None:
        """Put in place the waiting cells of rows `keys` (None: of those now in the window)."""
        if not self._later:
            return
        if keys is None:
            window = self._window()
            keys = [key for key in self._later
                    if (index := self._row_locations.get(RowKey(key))) is not None and index in window]
        first = self.COLUMNS[0][0]
        columns = self.shown_columns
        changed: list[tuple[str, str, Text]] = []
        for key in keys:
            cells = self._later.get(key)
            if cells is not None:
                self._changes(key, cells, self._shown[key], columns, first, changed)
        if changed:
            self._update_cells(changed)

    def on_resize(self) -> None:
        self.catch_up()  # a taller table shows rows that were below it

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        self.catch_up()  # rows coming into view, before they are drawn
        super().watch_scroll_y(old_value, new_value)

    def get_cell(self, row_key: RowKey | str, column_key: ColumnKey | str) -> Text:
        self.catch_up([str(row_key.value if isinstance(row_key, RowKey) else row_key)])
        value: Text = super().get_cell(row_key, column_key)
        return value

    def get_row(self, row_key: RowKey | str) -> list[Text]:
        self.catch_up([str(row_key.value if isinstance(row_key, RowKey) else row_key)])
        return super().get_row(row_key)

    def _update_cells(self, changed: Sequence[tuple[str, str, Text]]) -> None:
        """Put new values in cells, drawing only those cells anew (their rows are repainted: `_refresh_rows`).

        DataTable's `update_cell` makes every cached cell, row and line stale (one counter is part of every
        cache key), so after any change the whole visible table is rendered again, cell by cell: 25-60 ms
        for 25 rows, once a second with 100 busy agents, and a key pressed meanwhile waits for it. Here the
        values go into the table's data and only the cache entries of the changed cells and rows are dropped;
        a wider value in a column sized by its content still goes through `update_cell`, which resizes it
        (only a wider one: asking DataTable to fit a narrower one makes it measure the whole column again, for
        every such cell)."""
        caches = ("_cell_render_cache", "_row_render_cache", "_row_renderable_cache", "_line_cache", "_data")
        if not all(hasattr(self, name) for name in caches):  # another Textual: the documented way
            for key, column, value in changed:
                self.update_cell(key, column, value, update_width=True)
            self.cell_updates += len(changed)
            return
        # Each column's key and settings looked up once, the changes grouped by row: with 100 busy agents, a
        # refresh changes a few cells of every row in view, and each lookup of a table key is two Python calls.
        columns: dict[str, tuple[ColumnKey, Any]] = {}
        by_row: dict[str, list[tuple[ColumnKey, Text]]] = {}
        for key, column, value in changed:
            known = columns.get(column)
            if known is None:
                column_key = ColumnKey(column)
                known = columns[column] = (column_key, self.columns[column_key])
            column_key, found = known
            # A column of a set width (`fix_width`, `show_columns`) never grows: its values are cut to it.
            if found.auto_width and value.cell_len > found.content_width:
                self.update_cell(key, column, value, update_width=True)
            else:
                by_row.setdefault(key, []).append((column_key, value))
        self.cell_updates += len(changed)
        if not by_row:
            return
        rows: dict[RowKey, list[tuple[ColumnKey, Text]]] = {}
        data = self._data
        for key, values in by_row.items():
            row_key = RowKey(key)
            row = data[row_key]
            for column_key, value in values:
                row[column_key] = value
            rows[row_key] = values
        if not self.rows_changed(set(rows)):  # drawn by DataTable (`supervisor.ui.rowdraw`): its caches go stale
            cells = {(row_key, column_key) for row_key, values in rows.items() for column_key, _ in values}
            indexes = {self._row_locations.get(row) for row in rows}
            # Cache keys: a cell's start with (row key, column key), a row's with its row key; row renderables
            # are keyed (update count, row index).
            _drop(self._cell_render_cache, lambda key: (key[0], key[1]) in cells)
            _drop(self._row_render_cache, lambda key: key[0] in rows)
            _drop(self._row_renderable_cache, lambda key: key[1] in indexes)
        self._line_cache.clear()  # keyed by screen line, cheap to build again from rows
        locations = self._row_locations
        self._refresh_rows({index for row in rows if (index := locations.get(row)) is not None})

    def _refresh_rows(self, indexes: set[int]) -> None:
        """Repaint these rows (by index) where they are on screen, each as one region as
        wide as the table. Textual sends the terminal a changed region from the start of the widget's line
        to the region's end, cropping that line anew for every region: a row's changed cells as regions of
        their own (state, age, CPU, memory, then its badges) sent its line two or three times over, each a
        crop of its own. (Rows are one line high here; DataTable's own `refresh_row` sums the heights of
        every row above, for each row.)"""
        top = int(self.scroll_offset.y)
        header = self.header_height if self.show_header else 0
        shown = range(top, top + max(self.size.height - header, 0))
        width = self.size.width
        regions = [Region(0, header + index - top, width, 1) for index in indexes
                   if index in shown]
        if regions:
            self.refresh(*regions)


def _drop(cache: Any, stale: Callable[[Any], bool]) -> None:
    """Remove the entries whose key is `stale` from one of DataTable's LRU caches (they have no __iter__)."""
    keys = cache.keys()
    for key in [key for key in keys if stale(key)]:
        cache.discard(key)


class SlotTable(SyncTable):
    """A ranked list: row N shows the Nth agent, whichever it is now."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._names: list[str] = []

    def name_of(self, row_key: RowKey) -> str:
        index = int(str(row_key.value))
        return self._names[index] if index < len(self._names) else ""

    def select_key(self, name: str) -> bool:
        if name not in self._names:
            return False
        self.move_cursor(row=self._names.index(name), animate=False)
        return True

    def sync(self, rows: Sequence[tuple[str, dict[str, Text]]]) -> None:
        selected = self.current_key or self._keep_on
        self._keep_on = None
        self._names = [name for name, _ in rows]
        self._apply([(str(index), cells) for index, (_, cells) in enumerate(rows)])
        if selected is not None and self.has_focus and self.current_key != selected:
            self.select_key(selected)  # follow the agent being looked at while the list re-ranks


class AgentTable(SyncTable):
    COLUMNS = COLUMNS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Attach")]


class AttentionTable(SlotTable):
    COLUMNS = (("name", "Agent"), ("kind", "Why"), ("for", "For"), ("reason", "Details"))
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Go to")]
