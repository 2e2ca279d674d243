"""How the dashboard shares its rows and the agents list's columns, without Textual.

Rows: the split depends on the screen and on how many agents there are, never on how many items need a
human: an item arriving (or the last one leaving) must not move the rows under the user's cursor, so "Needs
you" keeps its rows while empty. On a roomy screen it gets what the agents list does not need, and a third of
the tables' rows when the agents would take them all; the agents list takes rows from the preview first, and
from "Needs you" only while it would show fewer than AGENTS_FIRST agents (a small screen): a list that scrolls
anyway gains little from a few rows more, while "Needs you" cut to one item hides what needs the human.

Columns: each column of the agents list is as wide as its widest value; when they do not all fit, they give
way in a stated order (`fit_columns`), and the task, last, takes the width the others leave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CHROME_ROWS = 3  # the header, the filter line, the footer
TABLE_CHROME = 3  # a table's top and bottom border and its header row
BOTTOM_MIN = 5  # preview and events at their least: a border and three lines
BOTTOM_ROOMY = 7  # … and what they keep while the agents list has the rows it needs
NEEDS_MIN = TABLE_CHROME + 1  # "Needs you" at its least: one item
AGENTS_FIRST = 10  # agents the list shows before "Needs you" gives it any of its rows
SCROLLBAR = 2  # a vertical scrollbar's width, kept free so that no line ever needs a horizontal one
CELL_PADDING = 2  # a table cell's padding, one cell either side


@dataclass(frozen=True)
class Split:
    needs: int  # rows of the "Needs you" table, borders included
    agents: int  # rows of the agents table, borders included
    bottom: int  # rows of the preview and events (the banner, when shown, takes from these)


def split(height: int, agents: int) -> Split:
    """The rows of each part on a screen `height` rows high listing `agents` agents."""
    available = max(height - CHROME_ROWS, 0)
    bottom = max(BOTTOM_ROOMY, available // 3)
    needs = max(NEEDS_MIN, (available - bottom) // 3)
    wanted = max(TABLE_CHROME + 1, agents + TABLE_CHROME)
    agents_rows = max(TABLE_CHROME + 1, min(wanted, available - bottom - needs))
    short = wanted - agents_rows
    if short > 0:  # the agents list first, from the preview's rows, then (a small screen) from "Needs you"
        from_bottom = min(short, max(bottom - BOTTOM_MIN, 0))
        below_first = TABLE_CHROME + AGENTS_FIRST - (agents_rows + from_bottom)
        from_needs = min(short - from_bottom, max(needs - NEEDS_MIN, 0), max(below_first, 0))
        bottom -= from_bottom
        agents_rows += from_bottom + from_needs
    return Split(needs=max(available - bottom - agents_rows, NEEDS_MIN), agents=agents_rows, bottom=bottom)


def fit_columns(order: Sequence[str], priority: Sequence[str], needed: Mapping[str, int], width: int, *,
                flexible: str, flexible_min: int) -> list[tuple[str, int]]:
    """The columns shown in `width` cells, in display `order`, each with its width (padding not included).

    Columns are taken in `priority` order, each as wide as it `needed`, until the next one does not fit; the
    `flexible` one counts as `flexible_min` wide (or what it needs, when less) and then takes every cell the
    others leave. The first two of `priority` are always shown."""
    kept: list[str] = []
    used = 0
    for index, key in enumerate(priority):
        want = min(needed[key], flexible_min) if key == flexible else needed[key]
        if index >= 2 and used + want + CELL_PADDING > width:
            break
        kept.append(key)
        used += want + CELL_PADDING
    widths = {key: needed[key] for key in kept}
    if flexible in widths:
        widths[flexible] = max(width - used + min(needed[flexible], flexible_min), 1)
    return [(key, widths[key]) for key in order if key in widths]


def cut(text: str, width: int) -> str:
    """`text` in at most `width` cells, its end replaced by … when it is longer."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"
