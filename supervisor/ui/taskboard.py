"""The dashboard's task board: a count summary for the header, and a screen listing every task.

The screen shows what `supervisor task ls` shows and does what `task add`, `task release` and `task done`
do (as the human: any claim may be released or finished). It is redrawn whenever the app hears of a task
event, cell by cell like the agent table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from supervisor.ui.model import first_line, format_age, parse_ts
from supervisor.ui.screens import MODAL_CSS
from supervisor.ui.tables import SyncTable

# The events that change the board (the long poll hears them; the app then fetches `task_ls`).
TASK_EVENTS = frozenset({"task_added", "task_claimed", "task_done", "task_released"})

TASK_STATE_STYLES = {"open": "bold cyan", "claimed": "bold green", "done": "dim"}


def task_counts(tasks: Iterable[dict[str, Any]]) -> dict[str, int]:
    counted = Counter(str(task.get("state")) for task in tasks)
    return {state: counted.get(state, 0) for state in ("open", "claimed", "done")}


def task_summary(tasks: list[dict[str, Any]] | None) -> str:
    """`tasks 3 open · 2 claimed · 5 done`; empty while there is no task (or no task board)."""
    if not tasks:
        return ""
    counts = task_counts(tasks)
    return f"tasks {counts['open']} open · {counts['claimed']} claimed · {counts['done']} done"


def task_holder(task: dict[str, Any]) -> str:
    if task.get("state") == "open":
        return "-"
    return str(task.get("by") or "human")


def task_cells(task: dict[str, Any], now: float) -> dict[str, Text]:
    """One row of the task table (its age: time in its current state, as in `task ls`)."""
    since = parse_ts(task.get("updated_at"))
    state = str(task.get("state") or "?")
    released = task.get("released") if state == "open" else None
    text = Text(first_line(task.get("text"), 90))
    if released:
        text.append(f"  (back: {released})", style="dim")
    return {
        "id": Text(str(task.get("id")), justify="right"),
        "state": Text(state, style=TASK_STATE_STYLES.get(state, "")),
        "by": Text(task_holder(task), style="dim" if state == "open" else "bold"),
        "age": Text(format_age(now - since) if since else "-", style="dim"),
        "text": text,
    }


class TaskTable(SyncTable):
    COLUMNS = (("id", "ID"), ("state", "State"), ("by", "By"), ("age", "Age"), ("text", "Task"))


class TaskBoardScreen(ModalScreen[None]):
    """Every task, with keys to add one, release a claim or mark a task done."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS + """
    TaskBoardScreen > Vertical { width: 124; max-width: 96%; }
    TaskBoardScreen TaskTable { height: auto; max-height: 30; margin: 1 0; }
    TaskBoardScreen #task-summary { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,t", "close", "Close"),
        Binding("a", "add", "Add"),
        Binding("r", "release", "Release"),
        Binding("d", "done", "Done"),
    ]

    def __init__(self, tasks: list[dict[str, Any]], clock: Callable[[], float],
                 act: Callable[[str, dict[str, Any], str], None], ask: Callable[[str, Callable[[str], None]], None]
                 ) -> None:
        """`act(method, params, note)` sends a request; `ask(title, then)` asks for a line of text."""
        super().__init__()
        self.tasks = tasks
        self.clock = clock
        self.act = act
        self.ask = ask
        self.table = TaskTable(id="tasks")
        self.summary = Static("", id="task-summary")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Task board", style="bold"))
            yield self.summary
            yield self.table
            yield Label(Text("a add (supervisor task add TEXT) · r release (task release ID) · "
                             "d done (task done ID) · esc close", style="dim"))

    def on_mount(self) -> None:
        self.show(self.tasks)
        self.table.focus()

    def show(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks
        now = self.clock()
        self.summary.update(task_summary(tasks) or "no tasks yet: a adds one, as `supervisor task add TEXT` does")
        self.table.sync([(str(task["id"]), task_cells(task, now)) for task in tasks])

    def _current(self) -> dict[str, Any] | None:
        key = self.table.current_key
        task = next((t for t in self.tasks if str(t["id"]) == key), None)
        if task is None:
            self.notify("no task selected", severity="warning", timeout=3)
        return task

    def action_close(self) -> None:
        self.dismiss(None)

    def action_add(self) -> None:
        self.ask("New task (agents claim it with `supervisor task claim`)",
                 lambda text: self.act("task_add", {"texts": [text]}, "task added"))

    def action_release(self) -> None:
        task = self._current()
        if task is None:
            return
        if task.get("state") != "claimed":
            self.notify(f"task {task['id']} is {task.get('state')}, not claimed", severity="warning", timeout=3)
            return
        self.act("task_release", {"task_id": task["id"]}, f"task {task['id']}: back on the board")

    def action_done(self) -> None:
        task = self._current()
        if task is None:
            return
        if task.get("state") == "done":
            self.notify(f"task {task['id']} is already done", severity="warning", timeout=3)
            return
        self.act("task_done", {"task_id": task["id"]}, f"task {task['id']}: done")
