"""Modal screens: help, the new-session and new-helper forms, a one-line prompt, a confirmation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from supervisor.agents import PROFILES
from supervisor.ui import hostchoice
from supervisor.ui.actions import ACTIONS
from supervisor.ui.hostchoice import Refused, Started
from supervisor.ui.model import LOCAL_HOST

# Not scoped: the same rules serve every modal screen below.
MODAL_CSS = """
ModalScreen {
    align: center middle;
    background: $background 60%;
}
ModalScreen > Vertical {
    width: 76;
    height: auto;
    max-height: 90%;
    border: round $accent;
    background: $surface;
    padding: 0 1;
}
ModalScreen Label.field {
    margin-top: 1;
    color: $text-muted;
}
ModalScreen .error {
    color: $error;
    height: auto;
}
ModalScreen .buttons {
    height: auto;
    margin-top: 1;
    align-horizontal: right;
}
ModalScreen Button {
    margin-left: 1;
}
"""


class HelpScreen(ModalScreen[None]):
    """Every key, what it does, and the CLI command that does the same."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS + """
    HelpScreen > Vertical { width: 124; max-width: 96%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, padding=(0, 1), show_header=True, header_style="bold")
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does")
        table.add_column("same as", style="green")
        for action in ACTIONS:
            table.add_row(action.display_key, f"{action.title}: {action.help}", action.cli or "")
        table.add_row("ctrl+p", "Command palette: every action, and jump to an agent by name", "")
        table.add_row("tab", "Next panel: needs-me list, agents, preview, events, filters", "")
        with Vertical():
            yield Label(Text("Keys", style="bold"))
            with VerticalScroll():
                yield Static(table)
            yield Label(Text("Esc, q or ? closes. Every action acts on the highlighted agent.", style="dim"))

    def action_dismiss(self, result: Any = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class FormScreen(ModalScreen[dict[str, Any] | None]):
    """A form: its Start button or Enter in a field submits, Cancel or Escape dismisses it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self._submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _submit(self) -> None:
        raise NotImplementedError


class NewSessionScreen(FormScreen):
    """The form for `supervisor start`: name, task, profile, command, contract, and the host when there are
    hosts. With `start`, the form makes the request itself and stays open until the engine answers: a refusal
    is said in the form (supervisor/ui/hostchoice.py); it is dismissed with the form and the engine's answer."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS

    def __init__(self, repository: str | None = None, hosts: list[dict[str, Any]] | None = None,
                 start: Callable[[dict[str, Any], Callable[[Started | Refused], None]], None] | None = None) -> None:
        super().__init__()
        self.repository = repository  # `ui --all`: the repository it starts in
        self.hosts = hosts  # the engine's `hosts` rows when there are hosts to choose from: a Host field
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("New session" + (f" in {self.repository}" if self.repository else ""), style="bold"))
            yield Label("Name (a-z, 0-9, -)", classes="field")
            yield Input(placeholder="auth", id="name")
            yield Label("Task: the first prompt", classes="field")
            yield Input(placeholder="Harden the auth package", id="task")
            yield Label("Profile (blank: supervisor.yaml's)", classes="field")
            yield Select([(p, p) for p in PROFILES], prompt="default", id="profile")  # every registered one
            yield Label("Command (blank: the profile's)", classes="field")
            yield Input(placeholder="claude", id="command")
            yield Label("Contract: a SESSION.md file (blank: may change everything)", classes="field")
            yield Input(placeholder="contracts/auth.md", id="contract")
            if self.hosts:
                yield Label("Host: where it runs (its free places, and whether it is up)", classes="field")
                yield Select(hostchoice.choices(self.hosts), value=LOCAL_HOST, allow_blank=False, id="host")
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start", variant="primary", id="start")

    def _submit(self) -> None:
        from supervisor.client import contract_params
        from supervisor.core.model import validate_name
        from supervisor.errors import UsageError

        name = self.query_one("#name", Input).value.strip()
        error = self.query_one("#error", Static)
        try:
            validate_name(name)
            if "." in name:
                raise UsageError("a session name cannot contain '.'; press h for a helper")
        except UsageError as exc:
            error.update(exc.message if name else "a name is needed")
            self.query_one("#name", Input).focus()
            return
        contract: dict[str, str] = {}
        file = self.query_one("#contract", Input).value.strip()
        if file:
            try:
                contract = contract_params(file)
            except UsageError as exc:
                error.update(exc.message)
                self.query_one("#contract", Input).focus()
                return
        profile = self.query_one("#profile", Select).value
        form: dict[str, Any] = {
            "name": name,
            "task": self.query_one("#task", Input).value.strip() or None,
            "profile": profile if isinstance(profile, str) else None,
            "command": self.query_one("#command", Input).value.strip() or None,
            "wait": False,
            **contract,
        }
        if self.hosts:
            host = self.query_one("#host", Select).value
            form["host"] = host if isinstance(host, str) else LOCAL_HOST
        if self.start is None:
            self.dismiss(form)
            return
        button = self.query_one("#start", Button)
        if button.disabled:
            return  # a start is under way
        button.disabled = True
        error.update(f"starting {name}" + (f" on {form['host']}" if "host" in form else "") + "…")
        self.start(form, lambda answer: self._answered(form, answer))

    def _answered(self, form: dict[str, Any], answer: Started | Refused) -> None:
        """The engine's answer to the form's start: a refusal stays in the form, to choose again."""
        if isinstance(answer, Started):
            self.dismiss({**form, "agent": answer.agent})
            return
        self.query_one("#start", Button).disabled = False
        self.query_one("#error", Static).update(answer.message)
        (self.query_one("#host", Select) if self.hosts else self.query_one("#name", Input)).focus()



class NewHelperScreen(FormScreen):
    """The form for `supervisor helper`: a helper under the selected agent."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS

    def __init__(self, parent_name: str) -> None:
        super().__init__()
        self.parent_name = parent_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text.assemble(("New helper under ", "bold"), (self.parent_name, "bold cyan")))
            yield Label("Name (its full name is PARENT.NAME)", classes="field")
            yield Input(placeholder="tests", id="name")
            yield Label("Role (from the parent's Helper Permissions)", classes="field")
            yield Input(placeholder="test-agent", id="role")
            yield Label("Task", classes="field")
            yield Input(placeholder="Write the missing tests", id="task")
            yield Label("Paths (optional, narrows the role's Modify; space-separated)", classes="field")
            yield Input(placeholder="packages/auth/__tests__/**", id="paths")
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start helper", variant="primary", id="start")

    def _submit(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        role = self.query_one("#role", Input).value.strip()
        if not name or not role:
            self.query_one("#error", Static).update("a name and a role are needed")
            return
        paths = self.query_one("#paths", Input).value.split()
        self.dismiss({"name": name, "role": role, "parent": self.parent_name,
                      "task": self.query_one("#task", Input).value.strip() or None, "paths": paths or None})


class PromptScreen(ModalScreen[str | None]):
    """One line of text (to send, or a reason); Enter submits, Esc cancels."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", *, allow_empty: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.allow_empty = allow_empty

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.title_text, style="bold"))
            yield Input(placeholder=self.placeholder, id="text")
            yield Label(Text("Enter submits, Esc cancels", style="dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() or self.allow_empty:
            self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[str | None]):
    """A question with a few answers (buttons); the id of the chosen one, or None."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str, str]]) -> None:
        """`choices`: (id, label, variant) per button, the default last."""
        super().__init__()
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.question))
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                for ident, label, variant in self.choices:
                    yield Button(label, id=ident, variant=variant)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query(Button).last().focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RefusalScreen(ModalScreen[None]):
    """Why something was refused, at whatever length (a merge audit's findings, several agents' refusals): it
    stays until dismissed, scrollable, where a notification would vanish before it was read."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS + """
    RefusalScreen > Vertical { width: 100; max-width: 96%; border: round $error; }
    RefusalScreen VerticalScroll { height: auto; max-height: 24; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.title_text, style="bold"))
            with VerticalScroll():
                yield Static(Text(self.text))
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class RestoreScreen(ModalScreen[str]):
    """The offer to bring back the agents whose panes went with the tmux server: `a` (or Enter) restores them all,
    each in its own conversation; `s` leaves them stopped for good (never offered again); Esc leaves them for
    later (`R`, or `supervisor restore --all`). Dismissed with `restore`, `stop` or `later`."""

    SCOPED_CSS = False
    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "later", "Not now"),
                                             Binding("a", "restore", "Restore all"),
                                             Binding("s", "stop", "Leave them stopped")]

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        count = len(self.names)
        listed = Text("\n".join(f"  {name}" for name in self.names[:12]) +
                      (f"\n  … and {count - 12} more" if count > 12 else ""), style="bold cyan")
        with Vertical():
            yield Label(Text(f"{count} agent{'' if count == 1 else 's'} lost {'its' if count == 1 else 'their'} "
                             "pane when supervisor's tmux server ended", style="bold"))
            yield Static(listed)
            yield Label(Text("Restore brings each back in its worktree, in its own conversation (helpers under "
                             "their parents). a: restore all · s: leave them stopped (not offered again) · Esc: not "
                             "now (R offers it again)", style="dim"))
            with Horizontal(classes="buttons"):
                yield Button("Not now", id="later")
                yield Button("Leave stopped", id="stop")
                yield Button("Restore all", variant="primary", id="restore")

    def on_mount(self) -> None:
        self.query_one("#restore", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(str(event.button.id))

    def action_restore(self) -> None:
        self.dismiss("restore")

    def action_stop(self) -> None:
        self.dismiss("stop")

    def action_later(self) -> None:
        self.dismiss("later")
