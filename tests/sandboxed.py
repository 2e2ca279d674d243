"""That tests which are meant to run sandboxed did: under CI (`CI=true`, which .ci/run sets) a machine where
bubblewrap cannot make a sandbox fails the run, rather than skipping the sandbox's tests and running every other
agent unsandboxed (the default isolation falls back to `none` there); and what a test's agents were launched
with, read from the store's `launched` events."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from supervisor.hosts import isolation


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_in_ci() -> str | None:
    """Under CI, why no sandbox can be made here (one line); None when one can, or outside CI."""
    if not in_ci():
        return None
    found = isolation.sandboxing()
    if found.bwrap is not None:
        return None
    return (f"CI=true, but {found.problem}: the sandbox's tests would be skipped and every other agent run "
            f"unsandboxed. Install bubblewrap (.ci/run does, as root: apt-get install bubblewrap) and let it "
            f"make user namespaces")


def launches(db_path: Path) -> list[tuple[str, str | None]]:
    """Each launch recorded in the store at `db_path`: the agent and the isolation it got, oldest first (read
    only, beside the running engine)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT agent, data FROM events WHERE kind = 'launched' ORDER BY id").fetchall()
    finally:
        db.close()
    return [(str(agent), json.loads(data).get("isolation")) for agent, data in rows]


def unsandboxed(db_path: Path) -> list[str]:
    """`agent (isolation)` for each launch recorded at `db_path` that got no sandbox."""
    return [f"{agent} ({got})" for agent, got in launches(db_path) if got != isolation.SANDBOX]
