"""The dashboard's footer: each action's key shows whole or not at all. The widest layout that holds every key
is used (roomy with the command palette's key, then compact with it, then compact without it); a screen too
narrow even for that drops whole keys, the least needed first (DROP_ORDER), never cutting one mid-word.
A dropped key still works, and `?` lists them all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Dropped first to last; `?` (help, which lists every key) and `q` stay whatever the width.
DROP_ORDER = ("new_helper", "snooze", "toggle_mark", "diff", "new_session", "remove", "restart", "merge", "stop",
              "send", "deny", "attach", "approve")
SAME_KEY = {"select_cursor": "attach"}  # the tables' own Enter binding, shown in the footer as Attach
PALETTE_CELLS = 12  # `^p palette` with its border (the same compact or roomy)


@dataclass(frozen=True)
class Fit:
    compact: bool
    palette: bool  # the command palette's key shown
    dropped: frozenset[str]  # actions whose keys are left out


def key_cells(display: str, label: str, *, compact: bool) -> int:
    """Columns one key takes: compact `k Label` and a space after it; roomy ` k ` `Label `."""
    return cell_len(display) + cell_len(label) + (2 if compact else 3)


def fit(keys: Iterable[tuple[str, str, str]], width: int) -> Fit:
    """The footer's layout at `width` columns for `keys`: (action, key as shown, label), in footer order."""
    keys = list(keys)
    roomy = sum(key_cells(display, label, compact=False) for _, display, label in keys)
    if roomy + PALETTE_CELLS <= width:
        return Fit(compact=False, palette=True, dropped=frozenset())
    cells = {action: key_cells(display, label, compact=True) for action, display, label in keys}
    total = sum(cells.values())
    if total + PALETTE_CELLS <= width:
        return Fit(compact=True, palette=True, dropped=frozenset())
    dropped: set[str] = set()
    for action in DROP_ORDER:
        if total <= width:
            break
        if action in cells:
            dropped.add(action)
            total -= cells[action]
    return Fit(compact=True, palette=False, dropped=frozenset(dropped))


class FittedFooter(Footer):
    """A footer that leaves out the keys `fit` dropped (set by the app as the screen is resized)."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped: frozenset[str] = frozenset()

    def apply(self, layout: Fit) -> None:
        self.compact = layout.compact
        self.show_command_palette = layout.palette
        if layout.dropped != self.dropped:
            self.dropped = layout.dropped
            for key in self.query(FooterKey):
                key.display = SAME_KEY.get(key.action, key.action) not in self.dropped

    def compose(self) -> ComposeResult:
        for widget in super().compose():  # (composed again as the bindings change: focus moves, a screen opens)
            if isinstance(widget, FooterKey):
                widget.display = SAME_KEY.get(widget.action, widget.action) not in self.dropped
            yield widget
