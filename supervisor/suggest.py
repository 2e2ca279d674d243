"""`did you mean …?`: the closest of the valid words to a mistyped one (a command, an agent, a config key)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The valid word nearest to `word`, or None when none is near enough to be what was meant."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """`did you mean 'auth'?` for the closest valid word, None when there is none."""
    close = closest(word, choices, cutoff)
    return f"did you mean '{close}'?" if close else None
