"""The dashboard at many agents, against the real engine: "Needs you" shows what fits and holds still, one
row is selected in the whole dashboard, badges last exactly as long as their condition, marked rows act
together."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from supervisor.ui.app import SupervisorApp
from supervisor.ui.screens import ConfirmScreen, PromptScreen, RefusalScreen
from supervisor.ui.testing import loaded, run, screen_is, type_in, wait_for
from tests.conftest import DEMO_AGENT, Sandbox
from tests.test_pane_identity import kill_tmux_server
from tests.test_ui_engine import engine, make, state

__all__ = ["engine"]

LONG_QUESTION = "Do you want to run " + "a very long command line with many arguments " * 6 + "?"


def start_many(sandbox: Sandbox, names: list[str], command: str) -> None:
    """Agents without a task (nothing to deliver); one that ends at once is refused, and listed as ended."""
    for name in names:
        sandbox.sv("start", name, "--command", command, check=False)


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
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: "ASK" in badges(app, "asks") and "ASK" in badges(app, "later"),
                       message="both asking")
        await wait_for(pilot, lambda: "STALL" in badges(app, "slow"), message="slow stalled")

        app.select_agent("asks")
        await pilot.press("d")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "keep it")
        await wait_for(pilot, lambda: app.board.agents["asks"]["state"] == "idle", message="asks idle")
        await pilot.pause()
        assert "ASK" not in badges(app, "asks") and attention_of(app, "asks") is None

        app.select_agent("slow")
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#stop")
        await wait_for(pilot, lambda: app.board.agents["slow"]["state"] == "stopped", message="slow stopped")
        await pilot.pause()
        assert "STALL" not in badges(app, "slow") and attention_of(app, "slow") is None

        kill_tmux_server(engine)  # "later" still asks: its pane goes, and its question with it
        await wait_for(pilot, lambda: app.board.agents["later"]["state"] not in ("waiting", "idle"),
                       message="later's pane gone")
        await pilot.pause()
        assert "ASK" not in badges(app, "later")
        assert "Delete the cache?" not in (attention_of(app, "later") or "")

    run(app, scenario)


def test_marked_rows_are_acted_on_together_after_one_confirmation(engine: Sandbox) -> None:
    names = [f"m{i}" for i in range(5)]
    start_many(engine, names, "sleep 600")
    app, notes = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await wait_for(pilot, lambda: len(app.agents_table.keys) == 5, message="5 agents")
        await pilot.press("space", "down", "shift+down", "shift+down")  # m0, then m1 to m3
        await wait_for(pilot, lambda: app.marked == {"m0", "m1", "m2", "m3"}, message="four marked")
        await pilot.press("space")  # the cursor is on m3: unmarked
        await wait_for(pilot, lambda: app.marked == {"m0", "m1", "m2"}, message="three marked")
        assert app.agents_table.get_cell("m1", "name").plain.startswith("● ")

        await pilot.press("s")  # one question for the three, naming them
        await screen_is(pilot, ConfirmScreen)
        assert "m0, m1, m2" in str(app.screen.question)  # type: ignore[attr-defined]
        await pilot.click("#stop")
        await wait_for(pilot, lambda: all(state(app, n) == "stopped" for n in ("m0", "m1", "m2")),
                       message="the three stopped")
        assert engine.state("m3") != "stopped" and engine.state("m4") != "stopped"
        assert "stopped: m0, m1, m2" in notes and app.marked == set()

        await pilot.press("space", "up", "space")  # m3 and m2 (the cursor went up): rm both, one refused
        await wait_for(pilot, lambda: app.marked == {"m2", "m3"}, message="two marked")
        await pilot.press("x")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#rm")
        await wait_for(pilot, lambda: isinstance(app.screen, RefusalScreen), message="m3's refusal")
        assert "m3" in app.screen.text and "m2" not in app.screen.text  # type: ignore[attr-defined]
        assert "m2" not in engine.ls() and "m3" in engine.ls()
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RefusalScreen))
        assert app.marked == {"m3"}  # what was refused stays marked

    run(app, scenario)
