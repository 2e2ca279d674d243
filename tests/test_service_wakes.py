"""What wakes the engine's services: each one what it depends on, and none of them the watch tick's writes that
change nothing they read (cheap supervision: at 100 agents some record and event is written every second)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TypeVar

import pytest

from supervisor.alerts.content import FIRING, RESOLVED, AlertContent, Item
from supervisor.alerts.outbox import ensure_schema
from supervisor.alerts.router import Router
from supervisor.alerts.service import AlertService
from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.core.tasks import Actor
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.commits_home import CommitsHome
from supervisor.engine.engine import Engine
from supervisor.engine.helpers import HelperDesk
from supervisor.engine.radar import ConflictRadar
from supervisor.engine.taskdesk import TaskDesk
from tests.conftest import Sandbox

T = TypeVar("T")


@pytest.fixture
def engine(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A real Engine object in this process (no watcher, no services running) on the sandbox's repository."""
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    monkeypatch.setenv("HOME", str(sandbox.home))
    made = Engine(sandbox.paths)
    try:
        yield made
    finally:
        made.folders.close()
        made.store.close()


def _service(engine: Engine, kind: type[T]) -> T:
    return next(service for service in engine.services if isinstance(service, kind))


def _bells(engine: Engine) -> dict[str, threading.Event]:
    """Each sleeping service's bell: set means it wakes for a look."""
    return {
        "alerts-router": _service(engine, AlertService)._rung,
        "helper-desk": _service(engine, HelperDesk)._bell,
        "task-desk": _service(engine, TaskDesk)._bell,
        "conflict-radar": _service(engine, ConflictRadar)._bell,
        "auditor": engine.auditor._bell,
        "planner": engine.planner._bell,
        "host-links": engine.hostlinks._bell,
    }


def _rung(engine: Engine) -> set[str]:
    return {name for name, bell in _bells(engine).items() if bell.is_set()}


def _quiet(engine: Engine) -> None:
    for bell in _bells(engine).values():
        bell.clear()


def _agent(engine: Engine, name: str, state: State = State.WORKING) -> Agent:
    agent = Agent(name=name, profile="generic", command="sleep 600", worktree=f"/tmp/wt-{name}",
                  branch=f"agent/{name}/work", base="HEAD", target="main", state=state, started_at=100.0)
    engine.store.add_agent(agent)
    return agent


def test_a_tick_that_changes_nothing_a_service_reads_wakes_none(engine: Engine) -> None:
    """States within the live ones, activity, screens, sessions: what the watch tick writes every second at many
    agents. Not one service wakes for it (each used to read or recompute something to find nothing new)."""
    ann, bob = _agent(engine, "ann"), _agent(engine, "bob")
    engine.store.save_agent(ann)  # a record's first write after the services started rings those that read it
    engine.store.save_agent(bob)
    _quiet(engine)
    with engine.store.notices_held():  # as the tick writes
        with engine.store.transaction():
            engine.set_state(ann, State.IDLE, rule="quiet")
            ann.last_activity_at = 123.0
            engine.store.save_agent(ann, "session", session_id="abc")
        with engine.store.transaction():
            engine.set_state(bob, State.WAITING, reason="a question")
        engine.store.append_event("bob", "screen", lines=3)
        engine.store.append_event(None, "tick_slow", seconds=1.5)
    assert _rung(engine) == set()


def test_each_service_is_woken_by_what_it_depends_on(engine: Engine) -> None:
    ann = _agent(engine, "ann")
    engine.store.save_agent(ann)
    _quiet(engine)

    fire(engine.store, ann, Trigger.WAITING, "waiting: a question")
    assert "alerts-router" in _rung(engine)  # a trigger
    _quiet(engine)
    engine.set_state(ann, State.EXITED, rule="exited")
    assert {"alerts-router", "conflict-radar"} <= _rung(engine)  # an agent ended: conditions clear, it leaves the radar
    _quiet(engine)
    engine.store.save_agent(replace(ann, state=State.WORKING, target="develop"))
    assert {"conflict-radar", "auditor"} <= _rung(engine)  # its target: what the radar and the audit read
    _quiet(engine)
    extra = dict(ann.extra, conflicts=[{"with": "bob", "branch": "agent/bob/work", "files": ["a.py"]}])
    engine.store.save_agent(replace(ann, state=State.WORKING, target="develop", extra=extra))
    assert _rung(engine) == {"conflict-radar"}  # its conflicts overwritten: the radar puts them in line again
    _quiet(engine)
    _agent(engine, "cid")
    assert {"alerts-router", "conflict-radar", "auditor", "planner"} <= _rung(engine)  # an agent came
    _quiet(engine)
    engine.store.append_event("ann.fix", "state", state="working", previous="starting")
    assert _rung(engine) == {"helper-desk"}  # an event about a helper
    assert [event.agent for event in _service(engine, HelperDesk)._events] == ["ann.fix"]
    _quiet(engine)
    engine.store.touch()  # a reloaded supervisor.yaml, a moved ref
    assert {"alerts-router", "host-links", "conflict-radar"} <= _rung(engine)
    _quiet(engine)
    engine.store.delete_agent("cid")
    assert {"alerts-router", "conflict-radar", "auditor", "planner"} <= _rung(engine)  # an agent went


def test_the_task_desk_wakes_for_claims_and_their_holders_only(engine: Engine) -> None:
    ann, bob = _agent(engine, "ann"), _agent(engine, "bob")
    desk = _service(engine, TaskDesk)
    engine.store.save_agent(ann)
    engine.store.save_agent(bob)
    desk.board.add(["one"])
    desk._bell.clear()
    assert desk.board.claim(Actor.of(ann)) is not None
    assert desk._bell.is_set()  # a claim
    desk._bell.clear()
    assert desk.release_stale()  # a look: ann holds a claim
    engine.store.save_agent(ann)  # a new holder's first write rings (the store knew no key of it as one)
    desk._bell.clear()
    engine.set_state(bob, State.EXITED, rule="exited")
    assert not desk._bell.is_set()  # bob holds none
    engine.store.save_agent(replace(ann, last_activity_at=5.0))
    assert not desk._bell.is_set()  # nothing a claim depends on
    engine.set_state(ann, State.STALLED, rule="stall")
    assert desk._bell.is_set()  # the holder stalled: its claim goes back
    desk._bell.clear()
    assert not desk.release_stale()
    assert [task.state for task in desk.board.tasks()] == ["open"]


def test_an_ended_state_under_any_event_kind_clears_the_alert_condition(tmp_path: Path) -> None:
    """The router reads past the events that are none of its business without decoding them; an event of any
    kind that carries an ended state still clears the agent's conditions."""
    store = Store(tmp_path / "s.db")
    try:
        ensure_schema(store)
        router = Router(store)
        agent = Agent(name="ann", profile="generic", command="x", worktree="/tmp/ann", branch="b", base="HEAD",
                      target="main")
        store.add_agent(agent)
        fire(store, agent, Trigger.WAITING, "waiting: a question")
        for index in range(20):
            store.append_event("ann", "screen", lines=index)
        router.consume(1000.0)
        with store.transaction() as db:
            assert db.execute("SELECT firing FROM alert_conditions WHERE agent = 'ann'").fetchall() == [(1,)]
        store.append_event("ann", "adopted", pane="%1", state="exited")
        router.consume(1001.0)
        with store.transaction() as db:
            assert db.execute("SELECT firing FROM alert_conditions WHERE agent = 'ann'").fetchall() == [(0,)]
        assert Router.wanted("ann", "adopted", {"state": "exited"})
        assert not Router.wanted("ann", "state", {"state": "idle"})
        assert not Router.wanted(None, "alert", {"state": "exited"})
    finally:
        store.close()


def test_alert_content_is_stored_as_asdict_gives_it_and_read_back_whole() -> None:
    """`to_json` skips asdict's deep copy (an alert a second at many agents); what it writes must not change."""
    items = (Item("waiting", FIRING, "waiting: a question", 10.0, evidence={"paths": ["a.py"], "exit_code": 1}),
             Item("done", RESOLVED, "finished", 5.0, until=9.0, repeat=2, count=3))
    content = AlertContent("repo", "ann", items, 12.0, task="a task", screen=("line",), alert_id=7,
                           agents=("ann", "bob"))
    assert content.to_json() == json.dumps(asdict(content), sort_keys=True)
    assert AlertContent.from_json(content.to_json()) == content


def test_with_no_host_commits_home_reads_nothing_and_sleeps_until_supervisor_yaml_is_read_again(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _service(engine, CommitsHome)
    assert not engine.config.hosts

    def read() -> None:
        raise AssertionError("no record is read while no host is configured")

    monkeypatch.setattr(home._records, "read", read)
    home.step()
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (home.pause(), done.set()), daemon=True)
    waiter.start()
    assert not done.wait(2.5)  # not woken every FETCH_SECONDS
    engine.store.touch()  # as a reload of supervisor.yaml does
    assert done.wait(5.0)
