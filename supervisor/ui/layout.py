"""How the dashboard shares its rows between "Needs you", the agents and the preview, without Textual.

The split depends on the screen and on how many agents there are, never on how many items need a human: an
item arriving (or the last one leaving) must not move the rows under the user's cursor, so "Needs you" keeps
its rows while empty. It gets what the agents list does not need, and at least a third of the tables' rows
when the agents would take them all.
"""

from __future__ import annotations

from dataclasses import dataclass

CHROME_ROWS = 3  # the header, the filter line, the footer
TABLE_CHROME = 3  # a table's top and bottom border and its header row
BOTTOM_MIN = 7  # preview and events: a border and a few lines
SCROLLBAR = 2  # a vertical scrollbar's width, kept free so that no line ever needs a horizontal one


@dataclass(frozen=True)
class Split:
    needs: int  # rows of the "Needs you" table, borders included
    agents: int  # rows of the agents table, borders included
    bottom: int  # rows of the preview and events (the banner, when shown, takes from these)


def split(height: int, agents: int) -> Split:
    """The rows of each part on a screen `height` rows high listing `agents` agents."""
    available = max(height - CHROME_ROWS, 0)
    bottom = max(BOTTOM_MIN, available // 3)
    tables = max(available - bottom, 2 * (TABLE_CHROME + 1))
    reserve = max(TABLE_CHROME + 1, tables // 3)
    agents_rows = max(TABLE_CHROME + 1, min(agents + TABLE_CHROME, tables - reserve))
    return Split(needs=tables - agents_rows, agents=agents_rows, bottom=bottom)


def cut(text: str, width: int) -> str:
    """`text` in at most `width` cells, its end replaced by … when it is longer."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"
