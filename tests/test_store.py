"""The SQLite store: agents, the append-only event log, and names taken atomically."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from supervisor.core.model import Agent, State, level_of, parent_of, validate_name
from supervisor.core.store import NameTaken, Store
from supervisor.errors import UsageError


def _agent(name: str) -> Agent:
    return Agent(name=name, profile="generic", command="x", worktree="/w", branch=f"agent/{name}/work", base="abc",
                 target="main")


def test_agents_round_trip_and_events_are_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    agent = _agent("auth")
    agent.extra["tmux_server"] = "1:2"
    store.add_agent(agent)
    agent.state = State.WORKING
    store.save_agent(agent, "state", previous="starting")
    store.close()

    reopened = Store(tmp_path / "s.db")
    again = reopened.get_agent("auth")
    assert again == agent
    kinds = [e.kind for e in reopened.events("auth")]
    assert kinds == ["created", "state"]
    assert reopened.events("auth", after=reopened.events("auth")[0].id)[0].data == {"previous": "starting"}


def test_a_name_is_taken_once_even_under_concurrency(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    wins, losses = [], []

    def claim() -> None:
        try:
            store.add_agent(_agent("same"))
            wins.append(1)
        except NameTaken:
            losses.append(1)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(wins), len(losses)) == (1, 15)


def test_names_and_levels() -> None:
    assert validate_name("auth.test.data") == "auth.test.data"
    assert parent_of("auth.test") == "auth" and parent_of("auth") is None
    assert level_of("auth.test.data") == 3
    for bad in ("", "Auth", "a.b.c.d", "a..b", "_engine", "a" * 33):
        with pytest.raises(UsageError):
            validate_name(bad)


def test_a_state_and_the_trigger_it_fires_are_read_together_or_not_at_all(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    agent = _agent("auth")
    store.add_agent(agent)
    reader = sqlite3.connect(tmp_path / "s.db")

    def seen() -> tuple[str, list[str]]:
        state = json.loads(reader.execute("SELECT data FROM agents").fetchone()[0])["state"]
        return state, [row[0] for row in reader.execute("SELECT kind FROM events ORDER BY id")]

    with store.transaction():
        agent.state = State.WAITING
        store.save_agent(agent, "state")
        assert seen() == ("starting", ["created"])  # the state alone is not visible yet
        store.append_event("auth", "trigger", trigger="waiting")
    assert seen() == ("waiting", ["created", "state", "trigger"])

    with pytest.raises(RuntimeError), store.transaction():
        agent.state = State.IDLE
        store.save_agent(agent, "state")
        raise RuntimeError("the trigger could not be written")
    assert seen() == ("waiting", ["created", "state", "trigger"])  # neither half was kept
    assert store.get_agent("auth").state == State.WAITING  # type: ignore[union-attr]
    store.append_event("auth", "after")  # the store takes new transactions after a rollback
    assert seen()[1][-1] == "after"


def test_each_agents_newest_event_is_kept_as_written_and_read_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.add_agent(_agent("auth"))
    store.append_event("auth", "trigger", trigger="waiting", active=True, screen=["a", "long", "screen"])
    store.append_event(None, "engine_started")  # the engine's own events are no agent's
    kind, _at, gist = store.newest_event("auth")  # type: ignore[misc]
    assert (kind, gist) == ("trigger", {"trigger": "waiting", "active": True})  # without the evidence
    with pytest.raises(RuntimeError), store.transaction():
        store.append_event("auth", "hook", hook_event_name="Stop")
        raise RuntimeError("rolled back")
    assert store.newest_event("auth")[0] == "trigger"  # type: ignore[index]
    store.append_event("auth", "hook", hook_event_name="Stop")
    newest = store.newest_event("auth")
    store.close()
    assert Store(tmp_path / "s.db").newest_event("auth") == newest  # read back by the next engine


def test_waiting_for_events_wakes_on_append(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    start = store.last_event_id
    assert store.wait_for_events(start, timeout=0.05) == start  # nothing new: times out
    woke: list[int] = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_events(start, timeout=30)))
    waiter.start()
    event = store.append_event(None, "hello")
    waiter.join(timeout=10)
    assert woke == [event]


def test_versions_say_which_records_changed(tmp_path: Path) -> None:
    """The watcher re-reads only records whose version moved; a version is never reused for a name."""
    store = Store(tmp_path / "s.db")
    store.add_agent(_agent("auth"))
    store.add_agent(_agent("ui"))
    before = store.versions()
    assert set(before) == {"auth", "ui"}
    agent = store.get_agent("auth")
    assert agent is not None
    agent.state = State.WORKING
    store.save_agent(agent)
    after = store.versions()
    assert after["auth"] != before["auth"] and after["ui"] == before["ui"]
    found, versions = store.get_agents(["auth", "gone"])
    assert [a.state for a in found] == [State.WORKING] and versions == {"auth": after["auth"]}
    store.delete_agent("auth")
    assert "auth" not in store.versions()
    store.add_agent(_agent("auth"))
    assert store.versions()["auth"] not in (before["auth"], after["auth"])
    store.close()
    # A new Store (a restarted engine) knows every existing record.
    assert set(Store(tmp_path / "s.db").versions()) == {"auth", "ui"}


def test_waiting_for_a_change_wakes_on_a_record_written_without_an_event_and_on_a_touch(tmp_path: Path) -> None:
    """The engine's services sleep on the store's changes until their next deadline: a record written with no
    event (an agent's conflicts, its process tree's figures) and a change outside the store (a moved ref, told
    by `touch`) must both wake them."""
    store = Store(tmp_path / "s.db")
    agent = _agent("auth")
    store.add_agent(agent)
    for write in (lambda: store.save_agent(agent), store.touch):
        seen = store.changes
        woke: list[int] = []
        waiter = threading.Thread(target=lambda s=seen, w=woke: w.append(store.wait_for_change(s, 30)))
        waiter.start()
        write()
        waiter.join(30)
        assert woke == [seen + 1]


def test_a_thread_holding_its_notices_wakes_the_waiters_once_with_all_its_writes(tmp_path: Path) -> None:
    """A watch tick writes many records: the services waiting for changes wake once, at its end, and find all of
    it written (none wakes to half a tick, however its thread is scheduled)."""
    store = Store(tmp_path / "s.db")
    for name in ("a", "b", "c"):
        store.add_agent(_agent(name))
    changes, events = store.changes, store.last_event_id
    woke: list[int] = []
    with store.notices_held():
        waiter = threading.Thread(target=lambda: woke.append(store.wait_for_change(changes, None)))
        waiter.start()
        for name in ("a", "b", "c"):
            agent = store.get_agent(name)
            assert agent is not None
            agent.state = State.WORKING
            store.save_agent(agent, "state", previous="starting")
            assert store.changes == changes  # held back until the tick is done
        store.save_agent(agent)  # a record alone
    waiter.join(30)
    assert woke == [changes + 4]
    assert store.wait_for_events(events, 30) == events + 3


def test_listeners_hear_the_events_and_record_changes_they_want_once_committed(tmp_path: Path) -> None:
    """`listen_events`, `listen_record_keys`, `listen_touches`: a service told of what it depends on only; what
    a rolled-back transaction wrote tells nobody."""
    store = Store(tmp_path / "s.db")
    heard: list[tuple[str | None, str, dict[str, object]]] = []
    rings = {"state": 0, "tasks": 0, "touch": 0}

    def ring(name: str) -> None:
        rings[name] += 1

    store.listen_events(lambda agent, kind, data: kind == "trigger",
                        lambda event: heard.append((event.agent, event.kind, event.data)))
    store.listen_record_keys(lambda agent: agent.state, lambda: ring("state"))
    store.listen_record_keys(lambda agent: None, lambda: ring("tasks"))
    store.listen_touches(lambda: ring("touch"))
    ann = _agent("ann")
    store.add_agent(ann)
    assert rings == {"state": 1, "tasks": 1, "touch": 0}  # an agent came: both
    with store.transaction():
        store.append_event("ann", "trigger", trigger="waiting", evidence={"n": 1})
        store.append_event("ann", "screen", lines=3)
        assert heard == []  # not before its transaction commits
    assert heard == [("ann", "trigger", {"evidence": {"n": 1}, "trigger": "waiting"})]
    ann.task = "another"
    store.save_agent(ann, "state", state=str(ann.state))
    assert rings == {"state": 1, "tasks": 1, "touch": 0}  # its state is as it was
    ann.state = State.IDLE
    with pytest.raises(RuntimeError), store.transaction():
        store.save_agent(ann)
        store.append_event("ann", "trigger", trigger="done")
        raise RuntimeError("rolled back")
    assert rings["state"] == 1 and len(heard) == 1  # rolled back: nothing happened
    store.save_agent(ann)
    assert rings == {"state": 2, "tasks": 1, "touch": 0}
    store.touch()
    assert rings["touch"] == 1
    store.delete_agent("ann")
    assert rings == {"state": 3, "tasks": 2, "touch": 1}  # an agent went: both
    store.close()


def test_a_record_not_written_since_a_listener_began_rings_it_only_when_its_key_changed(tmp_path: Path) -> None:
    """After an engine starts, the first write of each record compares with the record as it stood (read once),
    not with nothing: 100 agents' first writes do not wake every listener for nothing."""
    store = Store(tmp_path / "s.db")
    store.add_agent(_agent("ann"))
    store.close()
    store = Store(tmp_path / "s.db")  # ann's record was there before any listener
    rings: list[str] = []
    store.listen_record_keys(lambda agent: agent.state, lambda: rings.append("state"))
    store.listen_record_keys(lambda agent: agent.branch, lambda: rings.append("branch"))
    ann = store.get_agent("ann")
    assert ann is not None
    ann.task = "another"
    store.save_agent(ann)
    assert rings == []  # neither its state nor its branch changed
    ann.state = State.IDLE
    store.save_agent(ann)
    assert rings == ["state"]
    store.close()
