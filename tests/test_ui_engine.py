"""The dashboard against the real engine (real tmux, git and demo agents): every key and form, the live
preview with its colours, and the engine being killed under it."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from supervisor.agents import PROFILES
from supervisor.ui.app import SupervisorApp
from supervisor.ui.screens import ConfirmScreen, NewHelperScreen, NewSessionScreen, PromptScreen, RestoreScreen
from supervisor.ui.source import EngineSource
from supervisor.ui.taskboard import TaskBoardScreen
from supervisor.ui.testing import loaded, run, screen_is, type_in, wait_for
from tests.conftest import DEMO_AGENT, Sandbox, wait_until
from tests.test_pane_identity import kill_tmux_server
from tests.test_watching import events, fake_claude, ticks_pass


@pytest.fixture
def engine(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The sandbox's engine, reachable from this process (the app runs in the test's process)."""
    for key, value in sandbox.env.items():
        if key in ("HOME", "SUPERVISOR_RUNTIME_DIR", "SHELL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                   "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("TMUX", raising=False)
    yield sandbox


def make(sandbox: Sandbox) -> tuple[SupervisorApp, list[str]]:
    app = SupervisorApp(EngineSource(sandbox.paths), refresh_seconds=0.5, screen_seconds=0.2, long_poll=5)
    notes: list[str] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        notes.append(message)
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return app, notes


def state(app: SupervisorApp, name: str) -> str | None:
    agent = app.board.agents.get(name)
    return None if agent is None else str(agent["state"])


def test_forms_send_preview_and_filters_against_the_real_engine(engine: Sandbox) -> None:
    engine.sv("start", "auth", "--task", "hello from the test")
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        assert app.selected == "auth"
        await wait_for(pilot, lambda: "hello from the test" in app.preview.text, message="auth's pane")

        # n: a new session through the form
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        form = app.screen
        for field, value in {"name": "api", "task": "first task", "command": f"{DEMO_AGENT} --scenario gentle"}.items():
            form.query_one(f"#{field}", Input).value = value
        profile = form.query_one("#profile", Select)
        profile.focus()
        await pilot.press("enter")  # the profile list: the last one, generic (the command alone would say demo)
        await wait_for(pilot, lambda: profile.expanded)
        await pilot.press(*["down"] * len(PROFILES), "enter")
        await wait_for(pilot, lambda: profile.value == "generic")
        form.query_one("#task", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.selected == "api" and state(app, "api") in ("working", "idle"),
                       message="api started and selected")
        assert engine.ls()["api"]["task"] == "first task"
        assert engine.agent("api")["profile"] == "generic"
        await wait_for(pilot, lambda: "first task" in app.preview.text, message="api's pane")

        # i: send text, delivered to the pane
        await pilot.press("i")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "more please")
        await wait_for(pilot, lambda: "more please" in app.preview.text, message="the sent text on the pane")

        # enter: attach needs a real terminal (test_ui_tmux.py has one); e: every agent's events; /: filter
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("supervisor attach api" in n for n in notes), message="attach refused")
        await pilot.press("e")
        await wait_for(pilot, lambda: any("auth" in line and "task delivered" in line for line in app.events_shown),
                       message="every agent's events")
        await pilot.press("slash")
        app.filter_input.value = "nothing like this"
        await wait_for(pilot, lambda: app.agents_table.keys == [])
        app.filter_input.value = "auth"
        await wait_for(pilot, lambda: app.agents_table.keys == ["auth"])

    run(app, scenario)


ASKER = """
turns:
  - [say: "The build directory is stale.", ask: "Do you want to run `rm -rf build/`?",
     write: {path: notes/ui.md, content: "cleaned\\n"}, commit: "Clean the build notes", say: "Cleaned up."]
  - [ask: "Push to main?", say: "Pushed."]
  - [say: "Heard you."]
"""


def test_answers_merge_helper_snooze_and_lifecycle_keys_against_the_real_engine(engine: Sandbox) -> None:
    """y, m, i, d, h, z, s, r and x, each checked by its effect on the real engine, not by a notification."""
    script = engine.root.parent / "asker.yaml"
    script.write_text(ASKER)
    engine.sv("start", "ui", "--task", "polish", "--command", f"{DEMO_AGENT} --script {script}")
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        assert app.selected == "ui"
        await wait_for(pilot, lambda: "rm -rf build/" in app.preview.text, message="the agent's question")

        # y: the question is answered yes on its screen; the agent goes on and commits
        await pilot.press("y")
        await wait_for(pilot, lambda: "approved" in app.preview.text and "Cleaned up." in app.preview.text,
                       message="the approval reaching the agent")
        assert "ui: approved" in notes

        # m: once finished and audited it is ready to merge; merging puts its commit on main
        await wait_for(pilot, lambda: app.board.agents["ui"].get("ready_to_merge"), message="ui ready to merge")
        # (drawn with the next redraw: news waits up to a second for it)
        await wait_for(pilot, lambda: "READY" in app.agents_table.get_cell("ui", "badges").plain, message="READY")
        await pilot.press("m")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#merge")
        await wait_for(pilot, lambda: "ui: merged 1 commit into main (fast-forward)" in notes, message="the merge")
        assert engine.git("log", "-1", "--format=%s", "main") == "Clean the build notes"
        await wait_for(pilot, lambda: "MERGED" in app.agents_table.get_cell("ui", "badges").plain)

        # i, then d: the next question is denied with a reason, which reaches the agent as its next prompt
        await pilot.press("i")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "go on")
        await wait_for(pilot, lambda: "Push to main?" in app.preview.text, message="the second question")
        await pilot.press("d")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "not on main")
        await wait_for(pilot, lambda: "denied" in app.preview.text and "› not on main" in app.preview.text
                       and "Heard you." in app.preview.text, message="the denial and its reason at the agent")
        assert "Pushed." not in app.preview.text

        # h: a helper under ui, in the engine and in the tree
        await pilot.press("h")
        await screen_is(pilot, NewHelperScreen)
        app.screen.query_one("#name", Input).value = "tests"
        app.screen.query_one("#role", Input).value = "test-agent"
        app.screen.query_one("#task", Input).value = "cover the notes"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "ui.tests" in app.agents_table.keys, message="the helper in the tree")
        helper = engine.ls()["ui.tests"]
        assert (helper["parent"], helper["role"], helper["task"]) == ("ui", "test-agent", "cover the notes")

        # z: ui's alerts are silenced in the engine, and the row says so
        app.select_agent("ui")
        await pilot.press("z")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "30m")
        await wait_for(pilot, lambda: "zz" in app.agents_table.get_cell("ui", "badges").plain, message="zz")
        silences = json.loads(engine.sv("alerts", "silences", "--json").stdout)
        assert [s["agent"] for s in silences] == ["ui"]

        # s, r, x: stop (with its helper), restart, remove
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#stop")
        await wait_for(pilot, lambda: state(app, "ui") == "stopped", message="ui stopped")
        assert engine.state("ui") == "stopped" and engine.state("ui.tests") == "stopped"
        await pilot.press("r")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#restart")
        await wait_for(pilot, lambda: state(app, "ui") in ("starting", "working", "idle", "waiting"),
                       message="restarted")
        await pilot.press("x")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#force")
        await wait_for(pilot, lambda: "ui" not in app.agents_table.keys, message="ui removed")
        assert "ui" not in engine.ls() and "ui.tests" not in engine.ls()
        await wait_for(pilot, lambda: app.selected is None and app.agents_table.keys == [])

    run(app, scenario)


def test_the_preview_keeps_the_pane_colours(engine: Sandbox) -> None:
    engine.sv("start", "red", "--command", "printf '\\033[31mred alert\\033[0m plain\\n'; exec sleep 600")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        line = await wait_for(pilot, lambda: next((t for t in app.preview.lines if "red alert" in t.plain), None),
                              message="the coloured line")
        styles = [str(span.style) for span in line.spans]
        assert "color(1)" in styles, styles  # SGR 31: red, from the pane to the preview
        assert line.plain.startswith("red alert plain")

    run(app, scenario)


def test_the_engine_killed_under_the_dashboard_comes_back(engine: Sandbox) -> None:
    engine.sv("start", "auth", "--task", "hello")
    engine.wait_state("auth", "working", "idle")
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        old = engine.engine_pid()
        os.kill(old, signal.SIGKILL)
        await wait_for(pilot, lambda: app.engine_down and app.banner.display, message="the banner")
        assert "engine restarting" in str(app.banner.render())
        await wait_for(pilot, lambda: not app.banner.display, timeout=30, message="the engine back")
        assert engine.engine_pid() != old
        assert "the engine is back" in notes
        started = time.monotonic()
        engine.sv("send", "auth", "still there?")
        await wait_for(pilot, lambda: any("still there?" in line for line in app.events_shown),
                       message="the send event through the new engine")
        assert time.monotonic() - started < 10

    run(app, scenario)


def test_without_a_terminal_the_dashboard_command_prints_the_listing(sandbox: Sandbox) -> None:
    sandbox.sv("start", "auth", "--task", "hello")
    done = sandbox.sv()  # `supervisor` alone, its output piped: no terminal to draw on
    assert "auth" in done.stdout and "STATE" in done.stdout
    assert "the dashboard needs a terminal" in done.stderr


def test_the_task_board_follows_the_real_engine(engine: Sandbox) -> None:
    engine.sv("start", "auth")
    engine.sv("task", "add", "--lines", "-", input="first job\nsecond job\n")
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await wait_for(pilot, lambda: app.sub_title.endswith("tasks 2 open · 0 claimed · 0 done"),
                       message="the task summary")
        engine.sv("task", "claim")  # elsewhere: the event log tells the dashboard
        await wait_for(pilot, lambda: app.sub_title.endswith("tasks 1 open · 1 claimed · 0 done"),
                       message="the claim seen")
        await pilot.press("t")
        await screen_is(pilot, TaskBoardScreen)
        board = app.screen
        assert isinstance(board, TaskBoardScreen)
        await pilot.press("a")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "third job")
        await wait_for(pilot, lambda: board.table.keys == ["1", "2", "3"], message="the added task")
        await pilot.press("r")  # the cursor is on task 1, the human's claim
        await wait_for(pilot, lambda: [t["state"] for t in app.tasks or []] == ["open", "open", "open"],
                       message="task 1 released")
        await pilot.press("d")
        await wait_for(pilot, lambda: (app.tasks or [{}])[0].get("state") == "done", message="task 1 done")
        await wait_for(pilot, lambda: "task 1: done" in notes, message="the notification")

    run(app, scenario)
    assert [line.split()[:2] for line in engine.sv("task", "ls").stdout.splitlines()[1:]] == [
        ["1", "done"], ["2", "open"], ["3", "open"]]


def test_the_dashboard_offers_to_restore_what_the_tmux_server_took_and_the_engine_does_it(engine: Sandbox) -> None:
    command = fake_claude(engine, "c", "turns:\n  - [{say: first turn ran}]\n")
    engine.sv("start", "auth", "--task", "remember the word pineapple", "--command", command)
    engine.wait_state("auth", "idle")
    session = wait_until(lambda: engine.agent("auth").get("session_id"), message="auth's session id")
    kill_tmux_server(engine)
    engine.wait_state("auth", "exited")  # seen so by a new engine (limits.restore: ask, the default)
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: isinstance(app.screen, RestoreScreen), message="the offer to restore")
        restore = app.screen
        assert isinstance(restore, RestoreScreen) and restore.names == ["auth"]
        await pilot.press("escape")  # not now: nothing happens, and R offers it again
        await wait_for(pilot, lambda: not isinstance(app.screen, RestoreScreen))
        ticks_pass(engine, 2)  # a restore asked for would have begun by now
        assert state(app, "auth") == "exited" and not events(engine, "auth", "restored")
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, RestoreScreen), message="the offer again")
        await pilot.press("a")  # restore all
        await wait_for(pilot, lambda: "restored auth" in notes, message="the engine's answer")
        await wait_for(pilot, lambda: state(app, "auth") in ("starting", "working", "idle"), message="auth back")

    run(app, scenario)
    assert [e["command"] for e in events(engine, "auth", "launched")][-1] == f"{command} --resume={session}"
    wait_until(lambda: f"resumed conversation {session}" in engine.screen("auth"), message="its own conversation")


def test_a_running_dashboard_offers_restore_when_the_tmux_server_dies_and_can_leave_them_stopped(
        engine: Sandbox) -> None:
    engine.sv("start", "docs", "--task", "write the docs", "--command", f"{DEMO_AGENT} --scenario gentle")
    engine.wait_state("docs", "idle", "working")
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await wait_for(pilot, lambda: state(app, "docs") in ("idle", "working"), message="docs listed")
        assert not isinstance(app.screen, RestoreScreen)
        kill_tmux_server(engine)  # while the dashboard is open
        await wait_for(pilot, lambda: isinstance(app.screen, RestoreScreen), message="the offer to restore")
        assert app.screen.names == ["docs"]  # type: ignore[attr-defined]
        await pilot.press("s")  # leave them stopped: never offered again
        await wait_for(pilot, lambda: state(app, "docs") == "stopped", message="docs stopped")
        await wait_for(pilot, lambda: "docs: left stopped" in notes, message="the notification")
        await pilot.press("R")
        await wait_for(pilot, lambda: "nothing to restore: no agent's pane went with the tmux server" in notes,
                       message="nothing offered")

    run(app, scenario)
    assert engine.agent("docs")["restorable"] is False
    assert engine.sv("restore", "--all").stdout.startswith("nothing to restore")
