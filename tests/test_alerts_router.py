"""The alert router on a real engine object and store: grouping, deduplication, repeats, resolved follow-ups,
routing, silences and restarts. Trigger events go in through `fire`, exactly as the watcher appends them."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.core.triggers import Trigger, fire
from supervisor.errors import UsageError
from tests.alert_servers import Rig, Rigs
from tests.conftest import wait_until

_sentinels = itertools.count(1)


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rigs]:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(tmp_path / "run"))
    rigs = Rigs(tmp_path)
    yield rigs
    rigs.close()


def settle(r: Rig) -> list[dict[str, Any]]:
    """Every alert written so far, once everything fired before now has had its group flushed.

    A sentinel trigger fired now is flushed no earlier than anything fired before it, so once its alert exists,
    every earlier one that was going to be written exists too (no fixed sleep)."""
    name = f"zz-sentinel-{next(_sentinels)}"
    r.fire(name, "done", "sentinel")
    wait_until(lambda: any(a["agent"] == name for a in r.history()), message="the sentinel alert")
    return [a for a in r.history() if not a["agent"].startswith("zz-sentinel-")]


def items(alert: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["trigger"], item["status"]) for item in alert["items"]]


def test_triggers_of_one_agent_within_group_wait_make_one_alert(rig: Rigs) -> None:
    r = rig("  group_wait: 1s\n")  # wide enough that the three fires below always fall in it
    started = time.monotonic()
    r.fire("auth", "waiting", "waiting for approval: Bash(rm -rf build/)", screen=["Do you want to proceed?"])
    r.fire("auth", "stalled", "no output for 10m")
    r.fire("ui", "done", "finished its turn")
    alerts = wait_until(lambda: len(r.history()) == 2 and r.history(), message="two alerts")
    assert time.monotonic() - started >= 1  # the group waited
    by_agent = {alert["agent"]: alert for alert in alerts}
    assert items(by_agent["auth"]) == [("waiting", "firing"), ("stalled", "firing")]
    assert items(by_agent["ui"]) == [("done", "firing")]
    assert "supervisor approve auth" in by_agent["auth"]["actions"]
    assert by_agent["auth"]["title"].startswith("repo: auth waiting, stalled")


def test_a_condition_firing_again_is_a_duplicate_and_one_offs_merge_within_the_group(rig: Rigs) -> None:
    r = rig("  group_wait: 1s\n")
    r.fire("auth", "waiting", "first ask")
    r.fire("auth", "waiting", "first ask, seen again")
    r.fire("auth", "done", "turn one")
    r.fire("auth", "done", "turn two")
    (alert,) = wait_until(lambda: r.history() or None, message="the alert")
    waiting, done = alert["items"]
    assert (waiting["trigger"], waiting["count"]) == ("waiting", 1)
    assert (done["trigger"], done["count"], done["summary"]) == ("done", 2, "turn two")
    r.fire("auth", "waiting", "still the same ask")  # still true: no new alert
    r.fire("auth", "done", "turn three")  # a new occurrence of a one-off: a new alert
    alerts = settle(r)
    assert [items(a) for a in alerts] == [[("waiting", "firing"), ("done", "firing")], [("done", "firing")]]


def test_repeated_while_true_then_resolved_once_cleared(rig: Rigs) -> None:
    r = rig("  group_wait: 0.1s\n  repeat_after: 0.6s\n")
    r.fire("auth", "stalled", "no output for 10m", since=time.time() - 600)
    alerts = wait_until(lambda: len(r.history()) >= 2 and r.history(), timeout=10, message="a reminder")
    first, reminder = alerts[0]["items"][0], alerts[1]["items"][0]
    assert first["repeat"] == 0 and reminder["repeat"] >= 1 and reminder["status"] == "firing"
    r.fire("auth", "stalled", "output again", active=False)
    wait_until(lambda: r.history()[-1]["status"] == "resolved", message="the resolved follow-up")
    alerts = settle(r)
    assert [items(a) for a in alerts][-1] == [("stalled", "resolved")]
    with r.engine.store.transaction() as db:  # cleared and nobody owed anything: no more reminders
        assert db.execute("SELECT firing, told FROM alert_conditions WHERE agent = 'auth'").fetchone() == (0, 0)


def test_a_condition_cleared_before_anyone_was_told_is_never_sent(rig: Rigs) -> None:
    r = rig("  group_wait: 1s\n")
    r.fire("auth", "waiting", "approve?")
    r.fire("auth", "waiting", "approved from the dashboard", active=False)
    r.fire("auth", "stalled", "clearing what never fired", active=False)
    assert settle(r) == []


def test_routing_notify_on_and_a_helpers_done_goes_to_its_parent(rig: Rigs) -> None:
    r = rig("  group_wait: 0.1s\n  command: 'true'\n  notify_on: [waiting, done]\n")
    r.fire("auth", "stalled", "not in notify_on")
    r.fire("auth.tests", "done", "the helper finished")
    r.fire("auth", "waiting", "approve?")
    alerts = settle(r)
    by_agent = {alert["agent"]: alert for alert in alerts}
    assert set(by_agent) == {"auth", "auth.tests"}
    assert items(by_agent["auth"]) == [("waiting", "firing")]
    helper = by_agent["auth.tests"]
    assert helper["route"] == "parent" and helper["deliveries"] == []  # never to the human's channels
    assert [d["channel"] for d in by_agent["auth"]["deliveries"]] == ["command"]
    events = r.engine.store.events("auth.tests", limit=50)
    assert any(e.kind == "alert" and e.data["route"] == "parent" and e.data["to"] == "auth" for e in events)


def test_a_helpers_done_reaches_the_human_when_configured(rig: Rigs) -> None:
    r = rig("  group_wait: 0.1s\n  command: 'true'\n  helper_done: human\n")
    r.fire("auth.tests", "done", "the helper finished")
    (alert,) = settle(r)
    assert alert["route"] == "human"
    assert [d["channel"] for d in alert["deliveries"]] == ["command"]


def test_snoozed_agent_is_held_back_and_told_when_unsnoozed_and_silences_persist(rig: Rigs) -> None:
    r = rig("  group_wait: 0.1s\n")
    r.engine.store.add_agent(Agent(name="auth", profile="generic", command="true", worktree=str(r.root),
                                   branch="agent/auth/work", base="HEAD", target="main"))
    silence = r.alerts.op_snooze(name="auth", duration="1h")
    assert silence["agent"] == "auth" and silence["trigger"] is None
    r.fire("auth", "waiting", "approve?")
    r.fire("auth", "done", "a one-off during the snooze")
    r.fire("ui", "waiting", "not snoozed")
    assert [a["agent"] for a in settle(r)] == ["ui"]
    r.close()
    r = rig("")  # a restarted engine keeps the silence, and the condition it holds back
    assert [(s["agent"], s["trigger"]) for s in r.alerts.op_silences()] == [("auth", None)]
    assert r.alerts.op_unsnooze(name="auth") == {"removed": 1}
    alert = wait_until(lambda: [a for a in r.history("auth")] or None, message="the held alert")[0]
    assert items(alert) == [("waiting", "firing")]  # the one-off that happened during the snooze is not replayed
    assert r.alerts.op_silences() == []


def test_snoozing_a_trigger_ends_by_itself(rig: Rigs) -> None:
    r = rig("  group_wait: 0.1s\n")
    r.alerts.op_snooze(trigger="stalled", duration="0.8s")
    snoozed_at = time.monotonic()
    r.fire("auth", "stalled", "silent")
    r.fire("auth", "exited", "exited with code 1", exit_code=1)
    first = wait_until(lambda: r.history("auth") or None, message="the exit alert")[0]
    assert items(first) == [("exited", "firing")]
    assert first["items"][0]["summary"] == "exited with code 1"
    later = wait_until(lambda: len(r.history("auth")) == 2 and r.history("auth"), message="the stalled alert")
    assert items(later[1]) == [("stalled", "firing")]
    assert time.monotonic() - snoozed_at >= 0.8
    assert r.alerts.op_silences() == []


def test_bad_snooze_requests_are_usage_errors(rig: Rigs) -> None:
    r = rig("")
    with pytest.raises(UsageError):
        r.alerts.op_snooze()
    with pytest.raises(UsageError):
        r.alerts.op_snooze(trigger="nope")
    with pytest.raises(UsageError):
        r.alerts.op_snooze(name="Bad Name")
    r.engine.store.add_agent(Agent(name="auth", profile="generic", command="true", worktree=str(r.root),
                                   branch="agent/auth/work", base="HEAD", target="main"))
    with pytest.raises(UsageError):
        r.alerts.op_snooze(name="auth", duration="soon")
    with pytest.raises(UsageError, match="no agent named 'atuh'") as typo:  # a typo would silence nothing
        r.alerts.op_snooze(name="atuh")
    assert typo.value.hint == "did you mean 'auth'?"
    assert r.alerts.op_snooze(name="tmux:")["agent"] == "tmux:"  # subjects that are not agents need none
    assert r.alerts.op_snooze(name="host:build-2")["agent"] == "host:build-2"
    assert r.alerts.op_snooze(name="repo:", trigger="budget")["agent"] == "repo:"
    with pytest.raises(UsageError):
        r.alerts.op_unsnooze(name="auth")


def test_an_agent_that_ends_clears_its_conditions_quietly(rig: Rigs) -> None:
    r = rig("  group_wait: 0.1s\n  repeat_after: 1h\n")
    r.fire("auth", "waiting", "approve?")
    wait_until(lambda: r.history("auth") or None, message="the first alert")
    r.event("auth", "stopped", previous="waiting", state="stopped")
    r.fire("auth", "waiting", "after a restart it asks again")  # a new occurrence, not a duplicate
    alerts = settle(r)
    assert [items(a) for a in alerts] == [[("waiting", "firing")], [("waiting", "firing")]]
    r.event("auth", "removed")

    def forgotten() -> bool:
        with r.engine.store.transaction() as db:
            return db.execute("SELECT COUNT(*) FROM alert_conditions WHERE agent = 'auth'").fetchone() == (0,)

    wait_until(forgotten, message="a removed agent's conditions forgotten")


def test_the_router_resumes_from_its_cursor_and_its_groups_after_a_restart(rig: Rigs) -> None:
    r = rig("  group_wait: 0.1s\n")
    r.fire("auth", "done", "before the restart")
    wait_until(lambda: r.history() or None, message="the first alert")
    rig.reconfigure("  group_wait: 1h\n")
    wait_until(lambda: r.engine.reload_config_if_changed() or r.engine.config.alerts.group_wait == 3600,
               message="the new config")
    r.fire("auth", "errors", "rate limit reached", task=None)  # its group is still waiting at the restart

    def collected() -> bool:
        with r.engine.store.transaction() as db:
            return db.execute("SELECT COUNT(*) FROM alert_pending WHERE agent = 'auth'").fetchone() == (1,)

    wait_until(collected, message="the errors item waiting in its group")
    root = r.root
    r.close()
    rig.reconfigure("  group_wait: 0.1s\n")
    # While no engine runs, the log still grows (the dying engine's last tick, or a hook): appended directly.
    store = Store(root / ".git" / "supervisor" / "state.db")
    agent = Agent(name="auth", profile="generic", command="true", worktree=str(root), branch="agent/auth/work",
                  base="HEAD", target="main", task="the task")
    fire(store, agent, Trigger.EXITED, "exited with code 2 while nobody watched", exit_code=2)
    store.close()
    r = rig("")
    alerts = wait_until(lambda: len(r.history("auth")) == 2 and r.history("auth"), message="the held-over group")
    assert [items(a) for a in alerts] == [[("done", "firing")], [("errors", "firing"), ("exited", "firing")]]
    assert [items(a) for a in settle(r)] == [items(a) for a in alerts]  # nothing replayed


def test_an_alert_costs_one_router_transaction_and_no_durable_write_on_a_channel_that_cannot_recall(
        tmp_path: Path) -> None:
    """The router's step (events, timers, groups, next due time) is one transaction with the cursor, all or
    nothing; a channel that cannot read back what it sent (tmux) records no attempt first, a durable write
    nothing would read: it sends again after a crash either way."""
    import threading

    from supervisor.alerts.channels.base import Sent
    from supervisor.alerts.content import AlertContent
    from supervisor.alerts.delivery import DeliveryWorker
    from supervisor.alerts.outbox import Outbox, ensure_schema
    from supervisor.alerts.router import Router, Settings

    class Shown:  # a channel without `recall`, as tmux's
        name = "tmux"
        thread_key = None
        secrets = ()

        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, alert: AlertContent, thread: str | None, now: float) -> Sent:
            self.sent.append(alert.title())
            return Sent("shown")

    store = Store(tmp_path / "state.db")
    try:
        ensure_schema(store)
        router, outbox = Router(store), Outbox(store)
        settings = Settings(repo="r", notify_on=frozenset({"done"}), repeat_after=None, group_wait=0.0,
                            channels=("tmux",), secrets=())
        router.step(settings, time.time())
        begins: list[bool] = []
        begin = store._db.begin

        def counted(durable: bool = False) -> None:
            begins.append(durable)
            begin(durable)

        store._db.begin = counted  # type: ignore[method-assign]
        agent = Agent(name="ui", profile="generic", command="true", worktree=str(tmp_path), branch="agent/ui/w",
                      base="HEAD", target="main", task="the task")
        fire(store, agent, Trigger("done"), "finished its turn")
        begins.clear()
        assert router.step(settings, time.time(), forced=False).queued == 1
        assert begins == [False]
        channel = Shown()
        worker = DeliveryWorker("tmux", outbox, lambda _name: channel, threading.Event())  # type: ignore[arg-type,return-value]
        begins.clear()
        assert worker.run_once() == 0.0
        assert channel.sent and True not in begins, begins
        with store.transaction() as db:
            assert db.execute("SELECT status FROM alert_deliveries").fetchall() == [("sent",)]
    finally:
        store.close()
