"""The pace of alerts about one subject: at most `alerts.max_per_hour` in an hour, then one every hour/max.

Triggers follow what an agent's pane shows, and an agent (or the host it runs on) decides what its pane shows:
a screen that flips between a dialog and a prompt, or that prints a limit line after every "continue", fires a
new occurrence each time. Grouping (`group_wait`) merges what fires together; the pace bounds what fires apart.
A subject past its pace keeps its items pending (one-offs merge, counting; conditions dedupe), and its next
message goes out when the pace allows, carrying all of them: nothing is dropped, and no channel is flooded.
The count is read from the outbox itself (the last `max_per_hour` alerts about the subject), so it survives
an engine restart and needs no state of its own. Only the router writes alerts, so it reads a subject's pace
once and keeps it until it writes the next alert about it (router.py): a subject held back for an hour is not
read again on every event meanwhile.
"""

from __future__ import annotations

import sqlite3

WINDOW = 3600.0


def next_allowed(db: sqlite3.Connection, subject: str, per_hour: int) -> float:
    """The earliest time the next alert about `subject` may be written (0.0: any time): once the oldest of its
    last `per_hour` alerts is an hour old, or an hour/max after the newest."""
    rows = db.execute("SELECT created FROM alerts WHERE agent = ? ORDER BY id DESC LIMIT ?",
                      (subject, per_hour)).fetchall()
    if len(rows) < per_hour:
        return 0.0
    return min(float(rows[-1][0]) + WINDOW, float(rows[0][0]) + WINDOW / per_hour)

