"""The dashboard at many agents, against the real engine: "Needs you" shows what fits and holds still, one
row is selected in the whole dashboard, badges last exactly as long as their condition, marked rows act
together."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from supervisor.ui.app import SupervisorApp
from supervisor.ui.screens import ConfirmScreen, PromptScreen, RefusalScreen
from supervisor.ui.testing import drawn, loaded, run, screen_is, type_in, wait_for
from tests.conftest import DEMO_AGENT, Sandbox
from tests.test_pane_identity import kill_tmux_server
from tests.test_sessions import prompts
from tests.test_ui_engine import engine, make, state

__all__ = ["engine"]

LONG_QUESTION = "Do you want to run " + "a very long command line with many arguments " * 6 + "?"


def start_many(sandbox: Sandbox, names: list[str], command: str) -> None:
    """Agents without a task (nothing to deliver); one that ends at once is refused, and listed as ended."""
    for name in names:
        sandbox.sv("start", name, "--command", command, check=False)


def start_at_once(sandbox: Sandbox, commands: dict[str, list[str]]) -> None:
    """`supervisor start NAME ARGS… --no-wait` for each, one after another (starts made at the same moment
    can meet in `git worktree add`), none waiting for its agent to come up."""
    for name, args in commands.items():
        sandbox.sv("start", name, *args, "--no-wait")


def cursor_screen_row(app: SupervisorApp) -> tuple[int, int]:
    """Where the agents list's cursor row is on the screen (y), and which row it is."""
    table = app.agents_table
    return table.region.y + 1 + table.cursor_row - int(table.scroll_offset.y), table.cursor_row


def shown_cursors(app: SupervisorApp) -> list[str]:
    return [table.id or "" for table in (app.agents_table, app.attention_table) if table.show_cursor]


def test_needs_you_shows_thirteen_items_without_scrolling_sideways(engine: Sandbox) -> None:
    script = engine.root.parent / "asker.yaml"
    script.write_text(f'turns:\n  - [ask: "{LONG_QUESTION}", say: "ok"]\n')
    start_many(engine, [f"done{i:02}" for i in range(12)], "sh -c 'exit 3'")
    engine.sv("start", "asker", "--task", "asks", "--command", f"{DEMO_AGENT} --script {script}")
    start_many(engine, [f"quiet{i}" for i in range(3)], "sleep 600")
    for i in range(12):
        engine.wait_state(f"done{i:02}", "exited", "failed")
    engine.wait_state("asker", "waiting")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        table = app.attention_table
        await wait_for(pilot, lambda: table.row_count == 13, message="13 items")
        await pilot.pause()
        assert table.max_scroll_y == 0, "every item shows"
        assert table.max_scroll_x == 0, "nothing scrolls sideways"
        assert len(app.agents_table.keys) == 16 and app.agents_table.max_scroll_y == 0
        question = table.get_cell("0", "reason").plain
        assert question.startswith("Do you want to run a very long") and question.endswith("…")
        await pilot.resize_terminal(80, 56)
        # the reasons are cut again to the new width as the resize is handled: it settles with nothing sideways
        await wait_for(pilot, lambda: table.size.width < 80 and table.max_scroll_x == 0,
                       message="the narrow screen, nothing scrolling sideways")
        assert table.get_cell("0", "reason").plain.endswith("…")

    run(app, scenario, size=(160, 56))


def test_the_cursor_row_holds_still_and_one_row_is_selected(engine: Sandbox) -> None:
    names = [f"a{i:02}" for i in range(15)]
    start_many(engine, [n for n in names if n != "a03"], "sleep 600")
    engine.sv("start", "a03", "--command", "sh -c 'read line; exit 3'")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: len(app.agents_table.keys) == 15, message="15 agents")
        assert app.attention_table.row_count == 0
        await pilot.press(*["down"] * 6)
        await wait_for(pilot, lambda: app.selected == "a06", message="a06 under the cursor")
        before = cursor_screen_row(app)

        engine.wait_state("a03", "working", "idle")
        engine.sv("send", "a03", "now")  # its first item arrives in "Needs you"
        await wait_for(pilot, lambda: app.attention_table.row_count == 1, message="the first item")
        await pilot.pause()
        assert cursor_screen_row(app) == before and app.selected == "a06"
        assert shown_cursors(app) == ["agents"], "one row selected in the whole dashboard"

        await pilot.press("shift+tab")  # up into "Needs you": its row is the one selected now, and keys act on it
        await wait_for(pilot, lambda: app.selected == "a03", message="a03 selected")
        assert shown_cursors(app) == ["attention"]
        await pilot.press("r")  # restart a03 (asked first): the last item leaves
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#restart")
        await wait_for(pilot, lambda: app.attention_table.row_count == 0, message="the last item gone")
        await pilot.press("tab")
        await wait_for(pilot, lambda: app.selected == "a06", message="back on a06")
        await pilot.pause()
        assert cursor_screen_row(app) == before and shown_cursors(app) == ["agents"]

    run(app, scenario)


def badges(app: SupervisorApp, name: str) -> str:
    return app.agents_table.get_cell(name, "badges").plain


def attention_of(app: SupervisorApp, name: str) -> str | None:
    """What "Needs you" says about `name` (its kind and reason as shown), or None."""
    table = app.attention_table
    for index, shown in enumerate(table.keys):
        if shown == name:
            return f"{table.get_cell(str(index), 'kind').plain}: {table.get_cell(str(index), 'reason').plain}"
    return None


@pytest.mark.timeout(240)  # fifteen agents started, on a shared machine
def test_badges_last_exactly_as_long_as_their_condition(engine: Sandbox) -> None:
    """ASK gone once denied and idle, STALL gone once stopped, and a question gone with the agent's pane."""
    engine.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                        "limits:\n  idle_after: 1s\n  stall_after: 3s\n")
    asker = engine.root.parent / "asker.yaml"
    asker.write_text('turns:\n  - [ask: "Delete the cache?", say: "Deleted."]\n  - [say: "Heard you."]\n')
    slow = engine.root.parent / "slow.yaml"
    slow.write_text("turns:\n  - [{work: 1s}, {quiet: 600s}]\n")
    engine.sv("start", "asks", "--task", "go", "--command", f"{DEMO_AGENT} --script {asker}")
    engine.sv("start", "later", "--task", "go", "--command", f"{DEMO_AGENT} --script {asker}")
    engine.sv("start", "slow", "--task", "go", "--command", f"{DEMO_AGENT} --script {slow}")
    start_at_once(engine, {f"quiet{i:02}": ["--command", "sleep 600"] for i in range(12)})  # 15 agents in all
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: len(app.agents_table.keys) == 15, message="15 agents")
        await wait_for(pilot, lambda: "ASK" in badges(app, "asks") and "ASK" in badges(app, "later"),
                       message="both asking")
        await wait_for(pilot, lambda: "STALL" in badges(app, "slow"), message="slow stalled")

        app.select_agent("asks")
        await pilot.press("d")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "keep it")
        await wait_for(pilot, lambda: app.board.agents["asks"]["state"] == "idle", message="asks idle")
        await drawn(pilot)
        assert "ASK" not in badges(app, "asks") and attention_of(app, "asks") is None

        app.select_agent("slow")
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#stop")
        await wait_for(pilot, lambda: app.board.agents["slow"]["state"] == "stopped", message="slow stopped")
        await drawn(pilot)
        assert "STALL" not in badges(app, "slow") and attention_of(app, "slow") is None

        kill_tmux_server(engine)  # "later" still asks: its pane goes, and its question with it
        await wait_for(pilot, lambda: app.board.agents["later"]["state"] not in ("waiting", "idle"),
                       message="later's pane gone")
        await drawn(pilot)
        assert "ASK" not in badges(app, "later")
        assert "Delete the cache?" not in (attention_of(app, "later") or "")

    run(app, scenario)


@pytest.mark.timeout(240)  # fifteen agents started, on a shared machine
def test_marked_rows_are_acted_on_together_after_one_confirmation(engine: Sandbox) -> None:
    names = [f"m{i:02}" for i in range(15)]
    start_at_once(engine, {name: ["--command", "sleep 600"] for name in names})
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: len(app.agents_table.keys) == 15, message="15 agents")
        await pilot.press("space", "down", "shift+down", "shift+down")  # m00, then m01 to m03
        await wait_for(pilot, lambda: app.marked == {"m00", "m01", "m02", "m03"}, message="four marked")
        await pilot.press("space")  # the cursor is on m03: unmarked
        await wait_for(pilot, lambda: app.marked == {"m00", "m01", "m02"}, message="three marked")
        assert app.agents_table.get_cell("m01", "name").plain.startswith("● ")

        await pilot.press("s")  # one question for the three, naming them
        await screen_is(pilot, ConfirmScreen)
        assert "m00, m01, m02" in str(app.screen.question)  # type: ignore[attr-defined]
        await pilot.click("#stop")
        await wait_for(pilot, lambda: all(state(app, n) == "stopped" for n in ("m00", "m01", "m02")),
                       message="the three stopped")
        assert all(engine.state(n) != "stopped" for n in names[3:])
        assert "stopped: m00, m01, m02" in notes and app.marked == set()

        await pilot.press("shift+up")  # m03, then m02 (the cursor went up): rm both, one refused
        await wait_for(pilot, lambda: app.marked == {"m02", "m03"}, message="two marked")
        assert app.selected == "m02"
        await pilot.press("x")
        await screen_is(pilot, ConfirmScreen)
        assert "m02, m03" in str(app.screen.question)  # type: ignore[attr-defined]
        await pilot.click("#rm")
        await wait_for(pilot, lambda: isinstance(app.screen, RefusalScreen), message="m03's refusal")
        assert "m03" in app.screen.text and "m02" not in app.screen.text  # type: ignore[attr-defined]
        assert "m02" not in engine.ls() and "m03" in engine.ls()
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RefusalScreen))
        assert app.marked == {"m03"}  # what was refused stays marked

    run(app, scenario)


@pytest.mark.timeout(240)  # fifteen agents started, on a shared machine
def test_approve_deny_send_and_restart_act_on_every_marked_row(engine: Sandbox) -> None:
    """y, d, i and r on marked rows: one confirmation (or one prompt) naming them, each marked agent acted on
    once, the others left alone."""
    asker = engine.root.parent / "asker.yaml"
    asker.write_text('turns:\n  - [ask: "Delete the cache?", say: "Done."]\n  - [say: "Heard you."]\n')
    calm = engine.root.parent / "calm.yaml"
    calm.write_text('turns:\n  - [say: "one"]\n  - [say: "two"]\n')
    records = {f"a{i:02}": engine.root.parent / f"a{i:02}.jsonl" for i in range(15)}
    start_at_once(engine, {name: ["--command", f"{DEMO_AGENT} --script {asker if i < 4 else calm} --record {record}",
                                  *(["--task", "go"] if i < 4 else [])]
                           for i, (name, record) in enumerate(records.items())})
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: len(app.agents_table.keys) == 15, message="15 agents")
        await wait_for(pilot, lambda: all(state(app, f"a{i:02}") == "waiting" for i in range(4)),
                       message="four asking")
        await wait_for(pilot, lambda: all(state(app, f"a{i:02}") == "idle" for i in range(4, 15)),
                       message="the others idle")

        async def mark(*names: str) -> None:
            for name in names:
                app.select_agent(name)
                await wait_for(pilot, lambda name=name: app.selected == name, message=f"{name} selected")
                await pilot.press("space")
            await wait_for(pilot, lambda: app.marked == set(names), message=f"{', '.join(names)} marked")

        await mark("a00", "a01")  # y: approve both
        await pilot.press("y")
        await screen_is(pilot, ConfirmScreen)
        assert "a00, a01" in str(app.screen.question)  # type: ignore[attr-defined]
        await pilot.click("#approve")
        await wait_for(pilot, lambda: "approved: a00, a01" in notes, message="both approved")
        await wait_for(pilot, lambda: state(app, "a00") != "waiting" and state(app, "a01") != "waiting",
                       message="neither waits")
        assert state(app, "a02") == state(app, "a03") == "waiting" and app.marked == set()

        await mark("a02", "a03")  # d: deny both, one reason for the two
        await pilot.press("d")
        await screen_is(pilot, PromptScreen)
        assert "a02, a03" in app.screen.title_text  # type: ignore[attr-defined]
        await type_in(pilot, "not now")
        await wait_for(pilot, lambda: "denied: a02, a03" in notes, message="both denied")
        await wait_for(pilot, lambda: state(app, "a02") != "waiting" and state(app, "a03") != "waiting",
                       message="neither waits")

        await mark("a05", "a06")  # i: one text, sent to both
        await pilot.press("i")
        await screen_is(pilot, PromptScreen)
        assert "a05, a06" in app.screen.title_text  # type: ignore[attr-defined]
        await type_in(pilot, "a word for the two")
        await wait_for(pilot, lambda: "sent: a05, a06" in notes, message="sent to both")
        for name in ("a05", "a06"):
            await wait_for(pilot, lambda name=name: prompts(records[name]) == ["a word for the two"],
                           message=f"{name} got it once")
        assert prompts(records["a07"]) == [] and prompts(records["a04"]) == []

        await mark("a08", "a09")  # r: restart both
        await pilot.press("r")
        await screen_is(pilot, ConfirmScreen)
        assert "a08, a09" in str(app.screen.question)  # type: ignore[attr-defined]
        await pilot.click("#restart")
        await wait_for(pilot, lambda: any(note.startswith("restarted") for note in notes) or
                       isinstance(app.screen, RefusalScreen), timeout=120, message="restarted")
        assert not isinstance(app.screen, RefusalScreen), app.screen.text  # type: ignore[attr-defined]
        assert "restarted: a08, a09" in notes
        assert [engine.agent(name)["restarts"] for name in ("a07", "a08", "a09", "a10")] == [0, 1, 1, 0]

    run(app, scenario)
