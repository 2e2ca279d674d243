"""Schema versions: every fixture store (one per version ever released) migrates to the newest, a newer
store is refused untouched, and a migration is all or nothing."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from supervisor.core import schema
from supervisor.core.model import State
from supervisor.core.store import Store
from supervisor.core.storecheck import StoreDamaged, StoreTooNew

FIXTURES = Path(__file__).parent / "fixtures" / "stores"


def _fixtures() -> dict[int, Path]:
    return {int(re.fullmatch(r"v(\d+)\.db", p.name).group(1)): p  # type: ignore[union-attr]
            for p in FIXTURES.iterdir() if re.fullmatch(r"v\d+\.db", p.name)}


def _shape(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Every table and index, with each table's columns (name, type)."""
    with sqlite3.connect(path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")]
        return {name: [(row[1], row[2]) for row in db.execute(f"PRAGMA table_info({name})")] for name in names}


def test_there_is_a_fixture_store_of_every_version() -> None:
    assert sorted(_fixtures()) == [step.version for step in schema.STEPS]


@pytest.mark.parametrize("version", sorted(_fixtures()))
def test_each_fixture_store_migrates_to_the_newest_version(tmp_path: Path, version: int) -> None:
    db = tmp_path / "state.db"
    shutil.copy(_fixtures()[version], db)
    with sqlite3.connect(db) as conn:
        events = conn.execute("SELECT id, kind, data FROM events ORDER BY id").fetchall()

    store = Store(db)
    assert store.migrated == ((version, schema.LATEST) if version < schema.LATEST else None)
    assert [a.name for a in store.agents()] == ["auth", "auth.tests", "billing"]
    assert store.get_agent("auth").task == "the task of auth"  # type: ignore[union-attr]
    assert [(e.id, e.kind) for e in store.events(limit=1000)] == [(row[0], row[1]) for row in events]
    store.close()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST
        assert conn.execute("SELECT status FROM alert_deliveries ORDER BY channel").fetchall() == [("pending",),
                                                                                                  ("sent",)]
        assert conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 2
    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    assert _shape(db) == _shape(fresh)  # migrating forward gives exactly what a new store has
    if version < schema.LATEST:
        kept = db.with_name(f"state.db.v{version}")
        with sqlite3.connect(kept) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == version


def test_a_version_1_store_without_the_tables_made_on_first_use_gets_them(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    shutil.copy(_fixtures()[1], db)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE tasks")
        conn.execute("DROP TABLE alert_silences")
    Store(db).close()
    assert {"tasks", "alert_silences", "agents_set_aside"} <= set(_shape(db))


def test_a_store_of_a_newer_version_is_refused_and_not_written(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    shutil.copy(_fixtures()[schema.LATEST], db)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={schema.LATEST + 1}")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(StoreTooNew) as refused:
        Store(db)
    assert str(db) in refused.value.message and f"version {schema.LATEST + 1}" in refused.value.message
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_migration_that_fails_leaves_the_store_at_its_version(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "state.db"
    shutil.copy(_fixtures()[schema.LATEST], db)

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise sqlite3.OperationalError("the step failed")

    step = schema.Step(schema.LATEST + 1, "a step that fails halfway", half_done)
    monkeypatch.setattr(schema, "STEPS", (*schema.STEPS, step))
    monkeypatch.setattr(schema, "LATEST", step.version)
    with pytest.raises(sqlite3.OperationalError):
        Store(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == step.version - 1
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0


def test_an_undecodable_event_does_not_stop_the_store(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    shutil.copy(_fixtures()[schema.LATEST], db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET data = 'not json' WHERE id = (SELECT MAX(id) FROM events WHERE agent = 'auth')")
    store = Store(db)
    assert store.events("auth")[-1].data == {"undecodable": "not json"}


def test_a_truncated_store_is_damaged(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    shutil.copy(_fixtures()[schema.LATEST], db)
    db.write_bytes(db.read_bytes()[:5000])
    with pytest.raises(StoreDamaged) as refused:
        Store(db)
    assert refused.value.message.startswith(f"the store {db} is damaged: ")


def test_each_agent_gets_the_host_it_runs_on(tmp_path: Path) -> None:
    """Version 6: `host` is a field of the record, `local` unless the record named another beside its pane."""
    db = tmp_path / "state.db"
    shutil.copy(_fixtures()[5], db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE agents SET data = json_set(data, '$.extra.host', 'build-box') WHERE name = 'billing'")
    store = Store(db)
    hosts = {agent.name: (agent.host, "host" in agent.extra) for agent in store.agents()}
    store.close()
    assert hosts == {"auth": ("local", False), "auth.tests": ("local", False), "billing": ("build-box", False)}


def test_an_unreachable_agent_keeps_its_last_state(tmp_path: Path) -> None:
    """Version 7: `last_state` in every record (null), and an agent whose host is down keeps what it was in it."""
    db = tmp_path / "state.db"
    shutil.copy(_fixtures()[6], db)
    store = Store(db)
    assert {agent.name: agent.last_state for agent in store.agents()} == {"auth": None, "auth.tests": None,
                                                                          "billing": None}
    auth = store.get_agent("auth")
    assert auth is not None
    auth.last_state, auth.state = auth.state, State.UNREACHABLE
    store.save_agent(auth)
    store.close()
    store = Store(db)
    again = store.get_agent("auth")
    store.close()
    assert again is not None and (again.state, again.last_state) == (State.UNREACHABLE, State.WORKING)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT json_type(data, '$.last_state') FROM agents WHERE name = 'billing'"
                            ).fetchone() == ("null",)
