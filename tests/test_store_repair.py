"""`doctor --repair` carries over what can be read of a damaged store: the event log around broken pages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from supervisor.core.store import Store
from supervisor.core.storecheck import StoreDamaged
from supervisor.repair import repair
from tests.conftest import Sandbox


def test_repair_carries_over_the_readable_events_around_a_broken_page(sandbox: Sandbox,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    paths = sandbox.paths
    paths.ensure_dirs()
    db = Path(paths.db_path)
    store = Store(db)
    for number in range(3000):
        store.append_event(None, "note", number=number, text="x" * 200)
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    middle = len(data) // page // 2
    data[middle * page:(middle + 1) * page] = b"\xff" * page  # one page of the event log's leaves
    db.write_bytes(bytes(data))
    with pytest.raises(StoreDamaged):
        Store(db)

    done = repair(paths)

    assert done is not None
    assert [p.read_bytes() for p in done.moved_to if p.name.endswith(tuple("0123456789"))] == [bytes(data)]
    carried = done.carried["events"]
    assert 2900 <= carried < 3000 and "events" in done.unreadable
    store = Store(db)
    numbers = [e.data["number"] for e in store.events(limit=5000) if e.kind == "note"]
    assert len(numbers) == carried and numbers == sorted(numbers)  # in their order, with their ids
    assert store.events(limit=1)[-1].kind == "store_repaired"
    store.close()
    assert repair(paths) is None  # sound now: nothing to do
