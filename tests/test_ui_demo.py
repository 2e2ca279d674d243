"""Quitting the demo's dashboard asks whether to end the demo (its agents, engine and tmux server, as `supervisor
down` does) or keep it running; another repository's dashboard quits at once. Against the real engine."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from supervisor import client
from supervisor.demo.run import finish
from supervisor.ui.app import SupervisorApp
from supervisor.ui.screens import ConfirmScreen
from supervisor.ui.source import EngineSource
from supervisor.ui.testing import loaded, run, screen_is, wait_for
from tests.conftest import Sandbox, process_gone, wait_until
from tests.test_ui_engine import engine

__all__ = ["engine"]


def demo_app(box: Sandbox) -> SupervisorApp:
    return SupervisorApp(EngineSource(box.paths), refresh_seconds=0.5, screen_seconds=0.2, long_poll=5, demo=True)


def test_quitting_the_demos_dashboard_asks_whether_to_end_the_demo(engine: Sandbox,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    engine.sv("start", "auth", "--task", "hello")
    agent = engine.wait_state("auth", "working", "idle")
    kept = demo_app(engine)

    async def keep(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await pilot.press("q")
        await screen_is(pilot, ConfirmScreen)
        assert "End it too" in str(kept.screen.question)  # type: ignore[attr-defined]
        await pilot.press("escape")  # not quitting after all
        await wait_for(pilot, lambda: not isinstance(kept.screen, ConfirmScreen))
        assert kept.is_running
        await pilot.press("q")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#keep")
        await wait_for(pilot, lambda: not kept.is_running, message="the dashboard closed")

    run(kept, keep)
    assert not kept.end_demo
    assert client.engine_running(engine.paths) and engine.state("auth") in ("working", "idle")

    ended = demo_app(engine)

    async def end(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await pilot.press("q")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#end")
        await wait_for(pilot, lambda: not ended.is_running, message="the dashboard closed")

    run(ended, end)
    assert ended.end_demo
    server = int(engine.tmux("display-message", "-p", "#{pid}").stdout.strip())
    engine_pid = engine.engine_pid()
    monkeypatch.chdir(engine.root)
    assert finish(engine.root) == 0  # what `supervisor demo` does next: `supervisor down` in the demo's repository
    for pid in (agent["pid"], engine_pid, server):
        wait_until(lambda pid=pid: process_gone(pid), message=f"process {pid} gone")
    assert not client.engine_running(engine.paths)


def test_another_repositorys_dashboard_quits_at_once(engine: Sandbox) -> None:
    engine.sv("start", "auth", "--task", "hello")
    app = SupervisorApp(EngineSource(engine.paths), refresh_seconds=0.5, long_poll=5)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, message="the dashboard closed")

    run(app, scenario)
    assert client.engine_running(engine.paths)
