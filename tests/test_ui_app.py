"""The dashboard driven key by key with Pilot, on an in-memory stand-in for the engine (fast, deterministic).

The same keys against the real engine are in test_ui_engine.py; here every form and branch is covered."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from textual.widgets.data_table import RowKey

from supervisor.ui.app import SupervisorApp
from supervisor.ui.fake import ENGINE_METHODS, FIRST_METHODS, NOW, TASK_METHODS, FakeSource
from supervisor.ui.screens import (
    ConfirmScreen,
    HelpScreen,
    NewHelperScreen,
    NewSessionScreen,
    PromptScreen,
    RefusalScreen,
)
from supervisor.ui.source import RequestFailed
from supervisor.ui.taskboard import TaskBoardScreen
from supervisor.ui.testing import loaded, run, screen_is, type_in, wait_for


def make(source: FakeSource | None = None) -> tuple[SupervisorApp, FakeSource, list[str]]:
    """An app on a sample world, with a frozen clock, recording its notifications."""
    source = source or FakeSource.sample()
    app = SupervisorApp(source, clock=lambda: NOW, screen_seconds=0.2)
    notes: list[str] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        notes.append(message)
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return app, source, notes


def calls(source: FakeSource, method: str) -> list[dict[str, Any]]:
    return [params for name, params in source.calls if name == method]


async def fill(pilot: Pilot[Any], **fields: str) -> None:
    for name, value in fields.items():
        pilot.app.screen.query_one(f"#{name}", Input).value = value
    await pilot.press("enter")


async def select(pilot: Pilot[Any], name: str) -> None:
    app = pilot.app
    assert isinstance(app, SupervisorApp)
    app.select_agent(name)
    await wait_for(pilot, lambda: app.selected == name and app.agents_table.current_key == name)


def test_shows_the_tree_and_what_needs_a_human_first() -> None:
    app, _, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, diffstat=True)
        assert app.agents_table.keys == ["api", "auth", "auth.tests", "auth.tests.data", "billing", "docs",
                                         "reports", "search", "ui"]
        assert app.attention_table.keys == ["ui", "docs", "billing", "reports", "search", "api"]
        assert app.attention_table.display
        assert app.sub_title == "9 agents · 7 live · 6 need you · $6.68+ spent · tasks 2 open · 2 claimed · 2 done"
        assert app.title == "supervisor — demo-shop"

    run(app, scenario)


def test_moving_the_cursor_previews_the_pane_and_its_events() -> None:
    app, source, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        assert app.selected == "api"
        await pilot.press("down")
        await wait_for(pilot, lambda: "Editing files" in app.preview.text, message="auth's pane")
        assert app.selected == "auth"
        assert app.preview.border_title == "auth — working"
        assert any(line.style for text in app.preview.lines for line in text.spans), "colours are kept"
        assert calls(source, "screen")[-1] == {"name": "auth", "history": 500, "ansi": True}
        await wait_for(pilot, lambda: app.event_log.border_title == "Events — auth")
        await wait_for(pilot, lambda: len(app.events_shown) == 2, message="auth's two events")
        await pilot.press("e")  # all agents
        await wait_for(pilot, lambda: len(app.events_shown) == len(source.events), message="every event")
        source.emit("billing", "sent", text="are you there?")
        await wait_for(pilot, lambda: len(app.events_shown) == len(source.events) and
                       "are you there?" in app.events_shown[-1], message="a new event, at once")

    run(app, scenario)


def test_a_selection_made_in_code_outlives_the_cursor_news_still_on_its_way() -> None:
    """A row highlighted before the dashboard selected another agent itself (a new session from the form)
    arrives after that selection: the agent chosen stays selected, under the cursor."""
    from textual.widgets import DataTable

    app, _, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        table = app.agents_table
        await pilot.press("down")
        await wait_for(pilot, lambda: app.selected == "auth")
        stale = DataTable.RowHighlighted(table, table.get_row_index("auth"), table.coordinate_to_cell_key(
            table.cursor_coordinate).row_key)
        app.select_agent("billing")
        table.post_message(stale)  # news of the cursor on auth, handled after the selection of billing
        await pilot.pause()
        await wait_for(pilot, lambda: not any(app._busy.values()))
        assert (app.selected, table.current_key) == ("billing", "billing")

    run(app, scenario)


def test_a_state_change_updates_cells_in_place() -> None:
    app, source, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, diffstat=True)
        table = app.agents_table
        rows_before = dict(table.rows)
        updates = table.cell_updates
        source.set_state("api", "working", cpu_percent=55.0)
        await wait_for(pilot, lambda: table.get_cell("api", "state").plain == "working", message="new state")
        assert table.get_cell("api", "cpu").plain == "55%"
        assert dict(table.rows) == rows_before  # same row objects: nothing rebuilt
        # state, time in state, CPU (and nothing else, whatever the number of agents)
        await wait_for(pilot, lambda: not any(app._busy.values()))
        assert table.cell_updates - updates <= 3

    run(app, scenario)


def test_new_session_form_checks_the_name_and_starts_it() -> None:
    app, source, notes = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        form = app.screen
        form.query_one("#name", Input).value = "Bad Name"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "invalid agent name" in str(form.query_one("#error").render()))
        form.query_one("#name", Input).value = "payments"
        form.query_one("#task", Input).value = "Add refunds"
        form.query_one("#command", Input).value = "python -m supervisor.demo.agent"
        await pilot.click("#start")
        await wait_for(pilot, lambda: calls(source, "start"), message="the start request")
        assert calls(source, "start") == [{"name": "payments", "task": "Add refunds", "profile": None,
                                           "command": "python -m supervisor.demo.agent", "wait": False}]
        await wait_for(pilot, lambda: app.agents_table.current_key == "payments", message="the new row selected")
        assert app.agents_table.keys.index("payments") == app.agents_table.keys.index("docs") + 1
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewSessionScreen))
        assert len(calls(source, "start")) == 1
        assert any("payments: starting" in note for note in notes)

    run(app, scenario)


def test_new_session_form_refuses_a_broken_contract_and_sends_a_good_one(tmp_path: Path) -> None:
    app, source, _notes = make()
    deep = tmp_path / ("a-rather-long-directory-name-" * 4) / ("and-another-one-" * 4)
    deep.mkdir(parents=True)
    broken = deep / "broken.md"
    broken.write_text("# What This Session Can Do\n- Modify: src/**\n- Colour: blue\n")
    good = tmp_path / "good.md"
    good.write_text("# What This Session Can Do\n- Modify: src/**\n")

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        form = app.screen
        form.query_one("#name", Input).value = "payments"
        form.query_one("#contract", Input).value = str(broken)
        await pilot.click("#start")
        await wait_for(pilot, lambda: f"{broken}:3" in str(form.query_one("#error").render()),
                       message="the contract's error with its line")
        assert not calls(source, "start")
        form.query_one("#contract", Input).value = str(good)
        # Enter, not a click: the error just grew the form, and a click computed before the next layout
        # pass would land where the button was.
        await pilot.press("enter")
        await wait_for(pilot, lambda: calls(source, "start"), message="the start request")
        request = calls(source, "start")[0]
        assert request["contract"] == good.read_text() and request["contract_path"] == str(good)

    run(app, scenario)


def test_send_types_text_into_the_agent() -> None:
    app, source, notes = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await select(pilot, "auth")
        await pilot.press("i")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "run the tests")
        await wait_for(pilot, lambda: calls(source, "send"), message="the send request")
        assert calls(source, "send") == [{"name": "auth", "text": "run the tests"}]
        await wait_for(pilot, lambda: "auth: sent" in notes)

    run(app, scenario)


def test_approve_deny_merge_helper_snooze_say_when_the_engine_lacks_them() -> None:
    app, source, notes = make(FakeSource.sample(methods=FIRST_METHODS | TASK_METHODS))

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await select(pilot, "ui")
        await pilot.press("y")
        await wait_for(pilot, lambda: any("approve" in n and "not available yet" in n for n in notes))
        await pilot.press("d")  # the form first: the engine has not said it lacks `deny` yet
        await screen_is(pilot, PromptScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("deny" in n and "not available yet" in n for n in notes))
        await pilot.press("d")  # now it knows: no form
        await wait_for(pilot, lambda: sum("deny" in n for n in notes) == 2)
        assert not isinstance(app.screen, PromptScreen)
        await pilot.press("m")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#merge")
        await wait_for(pilot, lambda: any("merge" in n and "not available yet" in n for n in notes))
        await pilot.press("h")
        await screen_is(pilot, NewHelperScreen)
        await fill(pilot, name="tests", role="test-agent")
        await wait_for(pilot, lambda: any("helper" in n and "not available yet" in n for n in notes))
        await pilot.press("z")
        await screen_is(pilot, PromptScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("snooze" in n and "not available yet" in n for n in notes))
        assert [m for m, _ in source.calls if m in ("approve", "deny", "merge", "helper", "snooze")] == [
            "approve", "deny", "merge", "helper", "snooze"]

    run(app, scenario)


def test_approve_deny_merge_helper_snooze_when_the_engine_has_them() -> None:
    app, source, notes = make()  # the stand-in offers what today's engine offers

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await select(pilot, "ui")
        await pilot.press("y")
        await wait_for(pilot, lambda: calls(source, "approve") == [{"name": "ui", "by": "dashboard"}])
        await wait_for(pilot, lambda: app.agents_table.get_cell("ui", "state").plain == "working")
        source.set_state("ui", "waiting", waiting_reason="approval: push?")  # it asks again
        await pilot.press("d")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "not on main")
        await wait_for(pilot, lambda: calls(source, "deny") == [{"name": "ui", "reason": "not on main",
                                                                 "by": "dashboard"}])
        await pilot.press("m")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("enter")  # the default (last) button: Merge
        await wait_for(pilot, lambda: calls(source, "merge") == [{"name": "ui"}])
        assert source.timeouts["merge"] is not None and source.timeouts["merge"] >= 3600  # a long merge is waited for
        await pilot.press("h")
        await screen_is(pilot, NewHelperScreen)
        await pilot.press("enter")  # a name and a role are needed
        await wait_for(pilot, lambda: "needed" in str(app.screen.query_one("#error").render()))
        await fill(pilot, name="tests", role="test-agent", task="write tests", paths="a/** b/**")
        await wait_for(pilot, lambda: calls(source, "helper"))
        assert calls(source, "helper") == [{"name": "tests", "role": "test-agent", "parent": "ui",
                                            "task": "write tests", "paths": ["a/**", "b/**"]}]
        await pilot.press("z")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "30m")
        await wait_for(pilot, lambda: calls(source, "snooze") == [{"name": "ui", "duration": "30m"}])
        await wait_for(pilot, lambda: "zz" in app.agents_table.get_cell("ui", "badges").plain, message="zz badge")
        await wait_for(pilot, lambda: {"ui: approved", "ui: denied", "ui: merged 2 commits into main (fast-forward)",
                                       "ui.tests: started", "ui: alerts snoozed for 30m"} <= set(notes))
        assert "MERGED" in app.agents_table.get_cell("ui", "badges").plain

    run(app, scenario)


def test_stop_kill_restart_and_remove_confirm_first() -> None:
    app, source, notes = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await select(pilot, "billing")
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert not calls(source, "stop")
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("enter")  # Stop, the default
        await wait_for(pilot, lambda: calls(source, "stop") == [{"name": "billing", "kill": False}])
        await wait_for(pilot, lambda: app.agents_table.get_cell("billing", "state").plain == "stopped")
        await pilot.press("r")  # not running: asked too, like s, m and x (an Enter meant for later starts nothing)
        await screen_is(pilot, ConfirmScreen)
        assert not calls(source, "restart")
        await pilot.press("enter")
        await wait_for(pilot, lambda: calls(source, "restart") == [{"name": "billing"}])
        await wait_for(pilot, lambda: app.agents_table.get_cell("billing", "state").plain == "starting")
        await pilot.press("r")  # running now: confirm first
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#restart")
        await wait_for(pilot, lambda: len(calls(source, "restart")) == 2)
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#kill")
        await wait_for(pilot, lambda: calls(source, "stop")[-1] == {"name": "billing", "kill": True})
        await pilot.press("x")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "billing" not in app.agents_table.keys, message="the row removed")
        assert calls(source, "rm") == [{"name": "billing", "force": False}]
        assert app.selected != "billing"
        await select(pilot, "auth")  # running: refused unless forced
        await pilot.press("x")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("auth is still running" in n for n in notes))
        await pilot.press("x")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#force")
        await wait_for(pilot, lambda: "auth" not in app.agents_table.keys)
        assert {"billing: stopped", "billing: restarted", "billing: killed", "billing: removed"} <= set(notes)

    run(app, scenario)


def test_filters_by_text_and_state() -> None:
    app, _, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.focused, Input))
        app.filter_input.value = "fixtures"
        await wait_for(pilot, lambda: app.agents_table.keys == ["auth", "auth.tests", "auth.tests.data"])
        assert app.agents_table.border_title == "Agents (3 of 9)"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.focused is app.agents_table)
        app.filter_input.value = ""
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: app.agents_table.keys == ["api", "billing", "docs", "reports", "search", "ui"])
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: len(app.agents_table.keys) == 9)
        await pilot.press("f", "f", "f")  # all → needs me → live → ended
        await wait_for(pilot, lambda: app.agents_table.keys == ["reports", "search"])
        await pilot.press("f")
        await wait_for(pilot, lambda: app.agents_table.keys == ["auth", "auth.tests"])  # working

    run(app, scenario)


def test_help_palette_and_attach_without_a_terminal() -> None:
    app, _, notes = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("question_mark")
        await screen_is(pilot, HelpScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        app.screen.query_one(Input).value = "go to billing"
        await wait_for(pilot, lambda: "billing" in str(app.screen.query("CommandList").first().get_option_at_index(0)
                                                        .prompt), message="the palette's hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.selected == "billing", message="the palette's jump")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        app.screen.query_one(Input).value = "stop billing"
        await wait_for(pilot, lambda: "Stop billing" in str(app.screen.query("CommandList").first()
                                                            .get_option_at_index(0).prompt))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), message="stop from the palette")
        await pilot.press("escape")
        await pilot.press("enter")  # attach: Pilot's terminal cannot be handed over
        await wait_for(pilot, lambda: any("supervisor attach billing" in n for n in notes))
        await pilot.press("p")
        await wait_for(pilot, lambda: app.focused is app.preview)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.focused is app.agents_table)

    run(app, scenario)


def test_the_preview_scrolls_into_history_and_stays_there() -> None:
    source = FakeSource.sample()
    source.screens["auth"] = "\n".join(f"line {i}" for i in range(300))
    app, source, _ = make(source)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await select(pilot, "auth")
        await wait_for(pilot, lambda: "line 299" in app.preview.text)
        preview = app.preview
        await wait_for(pilot, lambda: preview.scroll_y == preview.max_scroll_y > 0, message="following the end")
        await pilot.press("p", "pageup", "pageup")
        await wait_for(pilot, lambda: preview.scroll_y < preview.max_scroll_y)
        position = preview.scroll_y
        source.screens["auth"] += "\nline 300"
        await wait_for(pilot, lambda: "line 300" in preview.text, message="the new capture")
        assert preview.scroll_y == position  # reading the history is not interrupted
        await pilot.press("end")
        await wait_for(pilot, lambda: preview.scroll_y == preview.max_scroll_y)
        source.screens["auth"] += "\nline 301"
        await wait_for(pilot, lambda: "line 301" in preview.text and preview.scroll_y == preview.max_scroll_y,
                       message="following again")

    run(app, scenario)


def test_the_engine_going_away_shows_a_banner_and_recovers() -> None:
    app, source, notes = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        banner = app.query_one("#banner")
        assert not banner.display
        source.go_down(restartable=False)
        await wait_for(pilot, lambda: banner.display and app.engine_down, message="the banner")
        assert "engine restarting" in str(banner.render())
        await pilot.press("down")  # still responsive
        await wait_for(pilot, lambda: app.selected == "auth")
        source.restartable = True
        await wait_for(pilot, lambda: not banner.display, message="the engine back")
        assert "the engine is back" in notes
        source.set_state("auth", "idle")
        await wait_for(pilot, lambda: app.agents_table.get_cell("auth", "state").plain == "idle",
                       message="changes flowing again")

    run(app, scenario)


def test_a_task_board_refreshed_before_its_table_is_mounted() -> None:
    """The dashboard's refresh may reach a board just pushed, before its table's on_mount added columns."""
    app, _source, _notes = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        tasks = await wait_for(pilot, lambda: app.tasks, message="the tasks")
        board = TaskBoardScreen([], app.clock, lambda *_: None, lambda *_: None)
        board.show(tasks)  # not mounted yet
        await app.push_screen(board)
        await wait_for(pilot, lambda: len(board.table.keys) == len(tasks), message="the rows")
        assert [column.label.plain for column in board.table.columns.values()] == ["ID", "State", "By", "Age",
                                                                                   "Task"]

    run(app, scenario)


def test_the_task_board_lists_adds_releases_and_finishes_tasks() -> None:
    app, source, notes = make()

    def board() -> TaskBoardScreen:
        assert isinstance(app.screen, TaskBoardScreen)
        return app.screen

    def row(task: int) -> list[str]:
        return [cell.plain for cell in board().table.get_row(str(task))]

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await wait_for(pilot, lambda: app.tasks is not None, message="the task board")
        await pilot.press("t")
        await screen_is(pilot, TaskBoardScreen)
        assert board().table.keys == ["1", "2", "3", "4", "5", "6"]
        assert row(3)[1:3] == ["claimed", "docs"] and row(4)[1:3] == ["claimed", "human"]
        assert row(5)[4] == "Add an index on orders.created_at  (back: search exited)"
        await pilot.press("a")
        await screen_is(pilot, PromptScreen)
        await type_in(pilot, "Check the CSV export")
        await wait_for(pilot, lambda: calls(source, "task_add") == [{"texts": ["Check the CSV export"]}])
        await wait_for(pilot, lambda: isinstance(app.screen, TaskBoardScreen) and "7" in board().table.keys,
                       message="the new task on the board")
        assert row(7)[1:3] == ["open", "-"]
        board().table.move_cursor(row=2)  # task 3, claimed by docs: the human releases any claim
        await pilot.press("r")
        await wait_for(pilot, lambda: calls(source, "task_release") == [{"task_id": 3}])
        await wait_for(pilot, lambda: row(3)[1] == "open", message="task 3 back on the board")
        await pilot.press("d")
        await wait_for(pilot, lambda: calls(source, "task_done") == [{"task_id": 3}])
        await wait_for(pilot, lambda: row(3)[1] == "done", message="task 3 done")
        await pilot.press("r")  # a done task is not claimed: said, not sent
        await wait_for(pilot, lambda: any("task 3 is done, not claimed" in n for n in notes))
        assert len(calls(source, "task_release")) == 1
        await wait_for(pilot, lambda: app.sub_title.endswith("tasks 3 open · 1 claimed · 3 done"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TaskBoardScreen))

    run(app, scenario)


def test_no_task_board_without_the_engine_request() -> None:
    app, _, notes = make(FakeSource.sample(methods=ENGINE_METHODS))

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await wait_for(pilot, lambda: "task_ls" in app.unavailable, message="task_ls found missing")
        assert app.sub_title == "9 agents · 7 live · 6 need you · $6.68+ spent"
        await pilot.press("t")
        await wait_for(pilot, lambda: any("not available yet" in n for n in notes))
        assert not isinstance(app.screen, TaskBoardScreen)

    run(app, scenario)


def test_a_changed_cell_is_drawn_anew_and_the_rest_of_the_row_is_not() -> None:
    """Cells are updated without making the whole table stale; what is drawn must still be the new value."""
    app, source, _ = make()

    def drawn(name: str) -> str:
        table = app.agents_table
        return table.render_line(table.header_height + table.get_row_index(name)).text

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, diffstat=True)
        table = app.agents_table
        assert "idle" in drawn("api") and "Add the /health endpoint" in drawn("api")
        # Each row's cells as drawn (supervisor.ui.rowdraw): (value, width, styles, segments) per column.
        docs = [cell[2] for cell in table._placed[RowKey("docs")][2]]
        api_name = table._placed[RowKey("api")][2][0][2]
        updates = table._update_count  # part of every cache key: a change of it makes the whole table stale
        longer = "Add the /health endpoint, and a readiness probe that checks the database and the queue"
        source.set_state("api", "working", cpu_percent=55.0, task=longer)  # longer than any task so far: cut
        await wait_for(pilot, lambda: "working" in drawn("api"), message="the new state drawn")
        assert "55%" in drawn("api") and "Add the /health endpoint, and" in drawn("api")
        assert "idle" in drawn("docs")
        after = [cell[2] for cell in table._placed[RowKey("docs")][2]]
        assert all(a is b for a, b in zip(after, docs, strict=True)), "another row's cells stay drawn"
        assert table._placed[RowKey("api")][2][0][2] is api_name, "the row's unchanged cells were not drawn again"
        assert table._update_count == updates, "the table was not made stale as a whole"

    run(app, scenario)


def test_running_the_cursor_down_the_list_loads_only_where_it_stops() -> None:
    source = FakeSource.sample()
    app = SupervisorApp(source, clock=lambda: NOW, settle_seconds=3.0)  # longer than any pause between the key presses

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        assert app.selected == "api"
        before = len(source.calls)
        await pilot.press("down", "down", "down")  # auth, auth.tests, auth.tests.data
        assert app.selected == "auth.tests.data"
        assert app.preview.border_title == "auth.tests.data — idle"  # at once
        await wait_for(pilot, lambda: app.events_of == "auth.tests.data", message="its events, once settled")
        fetched = [params.get("name") for method, params in source.calls[before:] if method in ("screen", "events")]
        assert set(fetched) == {"auth.tests.data"}, fetched

    run(app, scenario)


def test_a_slow_engine_is_not_a_dead_one() -> None:
    """A request the engine took but has not answered in time (busy, or a long merge) shows no "restarting"
    banner; an engine that does not even answer a ping gets a banner saying so, until it answers again."""
    app, source, notes = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await select(pilot, "api")
        source.slow.add("merge")
        await pilot.press("m")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("enter")
        note = await wait_for(pilot, lambda: next((n for n in notes if "has not answered merge" in n), None))
        assert "may still be doing it" in note
        assert not app.banner.display and app.engine_down is None
        source.slow.update({"changes", "ping"})  # now it answers nothing at all
        source.emit("api", "sent", text="wake the long poll")
        await wait_for(pilot, lambda: app.banner.display, message="the banner")
        assert "engine not answering" in str(app.banner.render())
        assert "restarting" not in str(app.banner.render())
        source.slow.clear()
        await wait_for(pilot, lambda: not app.banner.display, message="the banner gone once it answers")
        assert "the engine is back" in notes

    run(app, scenario)


def test_a_merge_that_takes_long_still_reports_its_result() -> None:
    app, source, notes = make()
    gate = source.gates["merge"] = threading.Event()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await select(pilot, "api")
        await pilot.press("m")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: calls(source, "merge"), message="the merge request")
        await pilot.press("down", "up")  # the dashboard goes on meanwhile
        assert not any("merged" in n for n in notes)
        gate.set()
        await wait_for(pilot, lambda: "api: merged 2 commits into main (fast-forward)" in notes)

    run(app, scenario)


def test_enter_on_needs_you_goes_to_the_agent_and_tab_walks_the_panels() -> None:
    app, _, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        assert app.focused is app.agents_table
        await pilot.press("tab")
        await wait_for(pilot, lambda: app.focused is app.preview)
        await pilot.press("tab")
        await wait_for(pilot, lambda: app.focused is app.event_log)
        await pilot.press("tab")
        await wait_for(pilot, lambda: app.focused is app.filter_input)
        await pilot.press("tab", "tab")  # the state filter, then the Needs you list
        await wait_for(pilot, lambda: app.focused is app.attention_table)
        assert app.attention_table.keys[:3] == ["ui", "docs", "billing"]
        await pilot.press("down", "down")
        await wait_for(pilot, lambda: app.attention_table.current_key == "billing")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.focused is app.agents_table and app.agents_table.current_key == "billing",
                       message="the agent list on billing")
        assert app.selected == "billing"

    run(app, scenario)


def test_help_closes_with_q_and_question_mark_and_q_then_quits() -> None:
    app, _, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        for closing in ("q", "question_mark", "escape"):
            await pilot.press("question_mark")
            await screen_is(pilot, HelpScreen)
            await pilot.press(closing)
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), message=f"help closed by {closing}")
            assert app.is_running  # q closed the help, not the dashboard
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None, message="the dashboard quitting")

    run(app, scenario)
    assert app.return_code == 0


def test_the_new_session_form_offers_every_registered_profile() -> None:
    from textual.widgets import Select

    from supervisor.agents import PROFILES

    app, source, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        form = app.screen
        form.query_one("#name", Input).value = "payments"
        profile = form.query_one("#profile", Select)
        assert [str(option[0]) for option in profile._options[1:]] == list(PROFILES)  # after the blank "default"
        profile.focus()
        await pilot.press("enter")  # open the list, go down to `demo`, take it
        await wait_for(pilot, lambda: profile.expanded)
        await pilot.press(*["down"] * (list(PROFILES).index("demo") + 1), "enter")
        await wait_for(pilot, lambda: profile.value == "demo")
        await pilot.click("#start")
        await wait_for(pilot, lambda: calls(source, "start"), message="the start request")
        assert calls(source, "start")[0]["profile"] == "demo"

    run(app, scenario)


def test_an_edit_of_supervisor_yaml_the_engine_refused_is_told() -> None:
    app, source, notes = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        source.emit(None, "config_invalid", error="/repo/supervisor.yaml:7: unknown key 'stall_afterr'")
        await wait_for(pilot, lambda: any("supervisor.yaml:7" in note for note in notes), message="the notice")
        assert "keeps the configuration it read before" in notes[-1]

    run(app, scenario)


def test_a_listing_sent_before_a_start_does_not_take_the_new_agent_away() -> None:
    """A listing answered before the start, arriving after it, lacks the new agent: the row and the cursor
    on it stay, until a listing asked after the start says otherwise."""
    app, source, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await wait_for(pilot, lambda: not app._busy.get("ls"), message="no listing in flight")
        flight = source.in_flight["ls"] = threading.Event()
        answered = source.answered.get("ls", 0)
        app.request_ls()
        await wait_for(pilot, lambda: source.answered.get("ls", 0) > answered, message="the old listing")
        del source.in_flight["ls"]
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        app.screen.query_one("#name", Input).value = "payments"
        app.screen.query_one("#command", Input).value = "python -m supervisor.demo.agent"
        await pilot.click("#start")
        await wait_for(pilot, lambda: app.selected == "payments", message="the new agent selected")
        flight.set()  # the listing from before the start arrives
        await wait_for(pilot, lambda: source.answered.get("ls", 0) > answered + 1, message="a listing after it")
        await wait_for(pilot, lambda: not app._busy.get("ls"), message="the listings applied")
        assert app.selected == "payments" and app.agents_table.current_key == "payments"
        assert "payments" in app.agents_table.keys

    run(app, scenario)


class RefusingMerges(FakeSource):
    """The stand-in, its merges refused by an audit with many findings."""

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = 30.0) -> Any:
        if method == "merge":
            super().call(method, params, timeout=timeout)  # recorded like any other request
            raise RequestFailed("ui: the audit refused the merge:\n" +
                                "\n".join(f"  commit {i}abc touches secrets/key{i}.pem" for i in range(12)),
                                hint="`supervisor show ui` lists them")
        return super().call(method, params, timeout=timeout)


def test_a_long_refusal_stays_in_a_dialog_until_dismissed() -> None:
    source = RefusingMerges.sample()
    app, _, notes = make(source)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await select(pilot, "ui")
        await pilot.press("m")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("enter")
        await screen_is(pilot, RefusalScreen)
        assert "secrets/key11.pem" in app.screen.text  # type: ignore[attr-defined]
        assert not any("audit refused" in n for n in notes)
        await pilot.pause(0.5)
        assert isinstance(app.screen, RefusalScreen)  # no timeout takes it away
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RefusalScreen))

    run(app, scenario)


def test_the_chosen_theme_is_remembered_in_the_users_config(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    first = SupervisorApp(FakeSource.sample(), clock=lambda: NOW, remember_settings=True)

    async def choose(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        first.theme = "solarized-light"
        await wait_for(pilot, lambda: (tmp_path / "config/supervisor/dashboard.json").exists(),
                       message="the settings file")

    run(first, choose)
    second = SupervisorApp(FakeSource.sample(), clock=lambda: NOW, remember_settings=True)

    async def reopened(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        assert second.theme == "solarized-light"

    run(second, reopened)


@pytest.mark.parametrize("width", [80, 100, 120, 130, 140, 160, 200])
def test_the_footer_shows_whole_keys_dropping_the_least_needed_first(width: int) -> None:
    """No key is cut mid-word: those that do not fit are left out whole (help and quit always stay), and every
    key still works; from 123 columns (compact) every key shows."""
    from textual.widgets._footer import FooterKey

    from supervisor.ui.footer import DROP_ORDER, SAME_KEY

    app, _, _ = make()

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.pause()
        keys = [key for key in app.footer.query(FooterKey) if key.display]
        shown = {SAME_KEY.get(key.action, key.action) for key in keys}
        spans = sorted((key.region.x, key.region.right) for key in keys)
        assert all(right <= width for _, right in spans), spans  # nothing past the edge
        assert all(one[1] <= two[0] for one, two in itertools.pairwise(spans)), spans  # no overlap

        def whole(key: FooterKey) -> int:  # `k Label`, compact; ` k Label ` roomy
            return len(key.key_display) + len(key.description) + (1 if app.footer.compact else 3)

        assert all(key.region.width == whole(key) for key in keys if not key.has_class("-command-palette")), \
            "each key whole"
        assert {"help", "quit"} <= shown
        dropped = [action for action in DROP_ORDER if action not in shown]
        assert dropped == list(DROP_ORDER[:len(dropped)]), "dropped in order, least needed first"
        assert bool(dropped) == (width < 123)
        if width == 80:
            assert shown == {"attach", "send", "approve", "deny", "stop", "restart", "merge", "help", "quit"}

    run(app, scenario, size=(width, 30))
