"""How many rows of a tmux pane's history are new: one rule for the engine's transcripts (this machine's and
hosts') and for the keeper on a host, which copies what panes show while the engine is away. Standard library
only, as everything in this package."""

from __future__ import annotations


def new_lines(written: int, history: int, limit: int) -> int:
    """How many of a pane's `history` lines are new, when `written` of them were already taken.

    History only grows until it reaches `limit`; tmux then drops its oldest tenth at once. A history that
    shrank to less than that was cleared (`clear-history`, or the program asked): all of it is new. More
    than a tenth of `limit` between two counts cannot be told from fewer lines and a trim: the count is then
    short, and the older of those lines are lost (at 50,000 lines of history, 5,000 within a tick)."""
    if history >= written:
        return history - written
    dropped = max(1, limit // 10)
    if limit and history >= limit - dropped:
        return max(0, history - (written - dropped))
    return history
