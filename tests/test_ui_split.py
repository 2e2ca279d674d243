"""How the dashboard shares its rows (supervisor/ui/layout.py `split`), for the screens users have."""

from __future__ import annotations

import pytest

from supervisor.ui.layout import CHROME_ROWS, NEEDS_MIN, TABLE_CHROME, split


@pytest.mark.parametrize("height", [30, 35, 40, 50])
def test_with_more_agents_than_rows_needs_you_keeps_room_for_several_items(height: int) -> None:
    """30 agents on an ordinary screen: the agents list scrolls anyway, so "Needs you" is not cut to one item to
    show a few agents more (it showed one item at 35 and 40 rows)."""
    rows = split(height, 30)
    items = rows.needs - TABLE_CHROME
    assert items >= 3, f"{items} item(s) of 'Needs you' on {height} rows"
    assert rows.agents - TABLE_CHROME >= 13, "the agents list still shows most of the agents"
    assert rows.needs + rows.agents + rows.bottom == height - CHROME_ROWS


@pytest.mark.parametrize("agents", [16, 30, 100])
def test_on_a_small_screen_the_agents_list_comes_first(agents: int) -> None:
    rows = split(24, agents)
    assert rows.needs == NEEDS_MIN
    assert rows.agents - TABLE_CHROME >= 9
    assert rows.needs + rows.agents + rows.bottom == 24 - CHROME_ROWS
