"""The pace of alerts about one agent (`alerts.max_per_hour`): an agent whose screen keeps firing new
occurrences is told about at most that many times in an hour, then its items are gathered and told together
when the pace allows, counted, none dropped. On a real engine object, store and alert service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.alerts.router import Router, Settings
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
