"""The pace of alerts about one agent (`alerts.max_per_hour`): an agent whose screen keeps firing new
occurrences is told about at most that many times in an hour, then its items are gathered and told together
when the pace allows, counted, none dropped. On a real engine object, store and alert service."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.alerts.outbox import ensure_schema, get_cursor
from supervisor.alerts.router import Router, Settings
from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.core.triggers import Trigger, fire
from tests.alert_servers import Rigs
from tests.conftest import wait_until
from tests.test_alerts_router import items, settle


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rigs]:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(tmp_path / "run"))
    rigs = Rigs(tmp_path)
    yield rigs
    rigs.close()


def test_past_its_pace_an_agents_alerts_are_gathered_and_told_together_later(rig: Rigs) -> None:
    r = rig("  group_wait: 0.1s\n  max_per_hour: 2\n")
    for turn in (1, 2):  # within the pace: told each time
        r.fire("flappy", "exited", f"exited with code {turn}", exit_code=turn)
        wait_until(lambda turn=turn: len(r.history("flappy")) == turn, message=f"alert {turn}")
    for turn in (3, 4, 5):  # a storm: held back, merged
        r.fire("flappy", "exited", f"exited with code {turn}", exit_code=turn)
    r.fire("flappy", "waiting", "approve?")
    alerts = settle(r)  # another agent's alert, fired after the storm, is not held by it
    assert [a["agent"] for a in alerts] == ["flappy", "flappy"]
    paced = [e for e in r.engine.store.events("flappy", limit=100) if e.kind == "alerts_paced"]
    assert len(paced) == 1 and paced[0].data["max_per_hour"] == 2  # said once, in the event log
    assert paced[0].data["next_at"] > time.time() + 1700  # an hour / 2 after the last alert

    r.alerts.stop()  # the rest is the router alone, half an hour on
    settings = Settings.from_config(r.engine.config.alerts, r.engine.paths.name, ())
    router = Router(r.engine.store)
    assert router.next_due(settings) is not None and router.next_due(settings) > time.time() + 1700
    step = router.step(settings, time.time() + 1801)
    assert step.queued == 1
    (told,) = r.history("flappy")[2:]
    assert items(told) == [("exited", "firing"), ("waiting", "firing")]
    exited = told["items"][0]
    assert exited["count"] == 3 and exited["summary"] == "exited with code 5"  # all three, counted


def test_a_subject_held_by_its_pace_is_not_read_again_on_every_event(tmp_path: Path) -> None:
    """Agents whose screens keep firing (a busy tree, restarted engines) get past their pace and keep items
    pending for up to an hour; the router steps on every new event meanwhile. Each held subject's pace is read
    from the outbox once, by each router (an engine restart starts a new one), not on every step: counted as
    the router's reads of the alerts table, which grew by two per held subject on every event."""
    store = Store(tmp_path / "s.db")
    ensure_schema(store)
    settings = Settings(repo="repo", notify_on=frozenset({"done"}), repeat_after=None, group_wait=0.0,
                        channels=(), secrets=(), max_per_hour=3)
    held = [Agent(name=f"busy{index}", profile="generic", command="x", worktree="/w",
                  branch=f"agent/busy{index}/work", base="abc", target="main") for index in range(10)]
    router = Router(store)
    for _turn in range(4):  # three alerts each, then a fourth held back by the pace
        for agent in held:
            fire(store, agent, Trigger.DONE, "finished its turn")
        router.step(settings, time.time())
    with store.transaction() as db:
        assert db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 30
        assert db.execute("SELECT COUNT(DISTINCT agent) FROM alert_pending").fetchone()[0] == 10
    reads: list[str] = []

    def counted(sql: str) -> None:
        if re.search(r"\bFROM alerts\b", sql):
            reads.append(sql)

    with store.transaction() as db:
        db.set_trace_callback(counted)
    try:
        for restart in range(3):
            router = Router(store)  # as a restarted engine's
            for event in range(5):  # other agents' events, each a step of the router
                store.append_event(f"quiet{restart}{event}", "state", state="working", previous="idle")
                reads.clear()
                router.step(settings, time.time())
                assert len(reads) == (10 if event == 0 else 0)  # each held subject once, on the first step
    finally:
        with store.transaction() as db:
            db.set_trace_callback(None)
    with store.transaction() as db:  # still held, nothing dropped
        assert db.execute("SELECT COUNT(DISTINCT agent) FROM alert_pending").fetchone()[0] == 10


def test_a_step_over_events_no_alert_depends_on_reads_no_condition_nor_pending_item(tmp_path: Path) -> None:
    """Every state change, screen or hook of every agent is an event, and the router steps on each batch of them
    (at a hundred agents, several a second); most are none of the alerts' business. Such a step only moves the
    cursor: counted as the router's reads of its conditions and pending items, which a step that fires, or falls
    due, still makes."""
    store = Store(tmp_path / "s.db")
    ensure_schema(store)
    settings = Settings(repo="repo", notify_on=frozenset({"done"}), repeat_after=60.0, group_wait=0.0,
                        channels=(), secrets=())
    agent = Agent(name="busy", profile="generic", command="x", worktree="/w", branch="agent/busy/work", base="abc",
                  target="main")
    router = Router(store)
    router.step(settings, time.time(), forced=False)  # the first step is always whole
    reads: list[str] = []

    def counted(sql: str) -> None:
        if re.search(r"\bFROM alert_(conditions|pending)\b", sql):
            reads.append(sql)

    with store.transaction() as db:
        db.set_trace_callback(counted)
    try:
        for _ in range(5):
            store.append_event("busy", "state", state="working", previous="idle")
            step = router.step(settings, time.time(), forced=False)
            assert step.queued == 0
        assert reads == []
        fire(store, agent, Trigger.DONE, "finished its turn")
        assert router.step(settings, time.time(), forced=False).queued == 1  # a trigger: the whole step
        assert reads
        reads.clear()
        store.append_event("busy", "state", state="stopped", previous="idle")  # an end clears its conditions
        router.step(settings, time.time(), forced=False)
        assert reads
    finally:
        with store.transaction() as db:
            db.set_trace_callback(None)
    with store.transaction() as db:
        assert get_cursor(db) == store.last_event_id  # every event consumed
