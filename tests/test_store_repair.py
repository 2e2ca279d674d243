"""`doctor --repair` carries over what can be read of a damaged store: the event log around broken pages."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from supervisor import repair as repair_module
from supervisor.core.store import Store
from supervisor.core.storecheck import StoreDamaged
from supervisor.paths import RepoPaths
from supervisor.repair import TABLES, Repaired, repair
from tests.conftest import Sandbox


def test_repair_carries_over_the_readable_events_around_a_broken_page(sandbox: Sandbox,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    paths = sandbox.paths
    paths.ensure_dirs()
    db = Path(paths.db_path)
    store = Store(db)
    with store.transaction() as conn:  # what makes an alert go out exactly once, carried over too
        conn.execute("INSERT INTO alert_attempts(alert, channel, started) VALUES (7, 'slack', 1.5)")
        conn.execute("INSERT INTO alert_pending(agent, trigger, status, queued, since, data) "
                     "VALUES ('auth', 'stalled', 'firing', 2.0, 1.0, '{}')")
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
    with store.transaction() as conn:
        assert conn.execute("SELECT alert, channel, started FROM alert_attempts").fetchall() == [(7, "slack", 1.5)]
        assert conn.execute("SELECT agent, trigger FROM alert_pending").fetchall() == [("auth", "stalled")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables - {"sqlite_sequence"} == set(TABLES)  # every table of the store is carried over
    store.close()
    assert repair(paths) is None  # sound now: nothing to do


def test_no_engine_starts_while_a_repair_runs_and_a_command_says_why(sandbox: Sandbox,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    paths = sandbox.paths
    paths.ensure_dirs()
    assert not paths.db_path.exists()  # nothing to carry over: the repair rebuilds from tmux and git
    rebuilding, go = threading.Event(), threading.Event()
    rebuild = repair_module._rebuild

    def paused(paths: RepoPaths, result: Repaired) -> None:
        rebuilding.set()
        go.wait(60)
        rebuild(paths, result)

    monkeypatch.setattr(repair_module, "_rebuild", paused)
    done: list[Repaired | None] = []
    worker = threading.Thread(target=lambda: done.append(repair(paths)))
    worker.start()
    try:
        assert rebuilding.wait(30)
        refused = sandbox.sv("ls", check=False)
    finally:
        go.set()
        worker.join(60)
    assert refused.returncode == 1, refused.stdout
    assert refused.stderr.splitlines()[0] == (f"supervisor: error: the engine cannot start: `supervisor doctor "
                                              f"--repair (pid {os.getpid()})` is repairing the store")
    assert done and done[0] is not None
    assert sandbox.sv("ls").returncode == 0  # once it is done the engine starts, on the repaired store
    with sqlite3.connect(paths.db_path) as conn:
        kinds = [row[0] for row in conn.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds[0] == "store_repaired" and "engine_started" in kinds
