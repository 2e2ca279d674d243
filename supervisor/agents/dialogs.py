"""Dialogs read by their labels: options without numbers (Claude Code's workspace trust, "Do you want to use
this API key?", auto mode's own approval), where `❯` marks the selected option and the arrow keys move it, and
notices that Enter continues. What a dialog offers is said in words when its meaning cannot be told.

    Do you want to use this API key?
      Yes                              the labels start in one column; `❯` stands before the selected one
    ❯ No (recommended)
    Enter to confirm · Esc to cancel
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SELECTED = re.compile(r"^(\s*(?:│\s*)?)❯ +(\S.*?)\s*│?$")
_NUMBERED = re.compile(r"^\s*(?:│\s*)*(?:[❯›●]\s*)?(\d+)\.\s+(.+?)\s*│?\s*$")
_KEY_HINT = re.compile(r"\b(?:Enter|Esc|Tab|shift\+Tab|ctrl\+\w)\s+to\s+[^·│]+", re.IGNORECASE)
_NOTICE = re.compile(r"\bEnter to (?:continue|stay)\b")
ALLOW = re.compile(r"^(?:yes|allow|approve|proceed|run|continue|trust)\b", re.IGNORECASE)
DENY = re.compile(r"^(?:no|deny|reject|don't allow|do not allow|don't trust|do not trust|cancel)\b", re.IGNORECASE)
# Words of a standing permission: more than the one call the human approved.
STANDING = re.compile(r"always|don't ask|do not ask|for this session|for the session|this session|auto mode"
                      r"|from now on|every time|all commands|allowlist|remember", re.IGNORECASE)


@dataclass(frozen=True)
class Menu:
    labels: tuple[str, ...]
    selected: int

    def choose(self, allow: bool) -> int | None:
        """The option meaning "yes, this once" (or "no"), by its label; None when no label says so."""
        for index, label in enumerate(self.labels):
            if allow and ALLOW.match(label) and not STANDING.search(label):
                return index
            if not allow and DENY.match(label):
                return index
        return None

    def moves(self, target: int) -> list[str]:
        """The arrow keys that move the selection onto option `target`."""
        step = target - self.selected
        return ["Down"] * step if step > 0 else ["Up"] * -step


def _rows(screen: str) -> list[str]:
    return [row.rstrip() for row in screen.rstrip().split("\n")][-25:]


def read_menu(screen: str) -> Menu | None:
    """The unnumbered options of the dialog at the bottom of the screen: the rows next to the selected one
    (`❯ label`) whose text starts in the label's column; None when there is no such menu."""
    rows = _rows(screen)
    for index in range(len(rows) - 1, -1, -1):
        match = _SELECTED.match(rows[index])
        if match is None or _NUMBERED.match(rows[index]):
            continue
        column = match.start(2)
        above: list[str] = []
        for row in reversed(rows[:index]):
            label = _option(row, column)
            if label is None:
                break
            above.insert(0, label)
        below: list[str] = []
        for row in rows[index + 1:]:
            label = _option(row, column)
            if label is None:
                break
            below.append(label)
        labels = (*above, match.group(2).strip(" │"), *below)
        return Menu(labels, len(above)) if len(labels) > 1 else None
    return None


def _option(row: str, column: int) -> str | None:
    """The label of an unselected option whose text starts in `column`, else None."""
    if row[:column].strip(" │") or len(row) <= column or row[column].isspace() or "❯" in row:
        return None
    return row[column:].strip(" │")


def selected_label(screen: str) -> str | None:
    menu = read_menu(screen)
    return menu.labels[menu.selected] if menu is not None else None


def notice_key(screen: str) -> str | None:
    """Enter, for a notice with no options that Enter continues (`Enter to continue · Esc to cancel`)."""
    return "Enter" if any(_NOTICE.search(row) for row in _rows(screen)[-6:]) else None


def offers(screen: str) -> str:
    """What the dialog at the bottom of the screen offers, in words: its options and the keys it names."""
    rows = _rows(screen)
    numbered = [f"{m.group(1)}. {m.group(2).strip()}" for row in rows if (m := _NUMBERED.match(row))]
    menu = read_menu(screen)
    options = numbered or (list(menu.labels) if menu is not None else [])
    keys = [hint.strip() for row in rows[-6:] for hint in _KEY_HINT.findall(row)]
    said = []
    if options:
        said.append("options " + " / ".join(options))
    if keys:
        said.append("keys " + " · ".join(dict.fromkeys(keys)))
    return "; ".join(said) if said else "no options or keys it names"
