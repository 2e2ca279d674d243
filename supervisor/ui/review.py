"""Reviewing work inside the dashboard: an agent's diff (`D`) and a best-of-N's candidates side by side (`C`).

The diff view shows what `supervisor diff NAME` prints, file by file: the changed files on the left, the
selected one's hunks on the right with its code coloured. The comparison shows what `supervisor compare NAME`
prints, one column per candidate; from there a candidate's diff is one key away, and so is merging it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from supervisor.ui.difftext import file_counts, file_label, file_lines
from supervisor.ui.palette import Palette
from supervisor.ui.pane import PaneView

REVIEW_CSS = """
DiffScreen, CompareScreen { background: $background; align: left top; }
#review-body { height: 1fr; }
#review-title { height: 1; padding: 0 1; background: $panel; color: $foreground; text-style: bold; }
#files { width: 32%; max-width: 60; height: 1fr; border: round $foreground 30%; background: $surface; }
#files:focus { border: round $accent; }
#diff { width: 1fr; border: round $foreground 30%; }
#diff:focus { border: round $accent; }
#candidates { height: 1fr; border: round $foreground 30%; background: $surface; }
#candidates:focus { border: round $accent; }
#files, #diff, #candidates { border-title-color: $foreground; border-subtitle-color: $foreground 70%; }
#review-note { height: auto; padding: 0 1; color: $text-muted; }
"""


class DiffBody(PaneView):
    """A file's diff: it opens at its first line, and scrolls both ways."""

    FOLLOWS_BOTTOM = False


class DiffScreen(ModalScreen[str | None]):
    """One agent's changes against its base, file by file. Modal (the dashboard's keys do not reach through it);
    dismissed with "merge" when the human merges from here, else None."""

    DEFAULT_CSS = REVIEW_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,D", "close", "Back"),
        Binding("n,right_square_bracket", "next_file", "Next file"),
        Binding("p,left_square_bracket", "previous_file", "Previous file"),
        Binding("m", "merge", "Merge it"),
        Binding("f", "focus_files", "Files", show=False),
    ]

    def __init__(self, agent: str, palette: Palette) -> None:
        super().__init__()
        self.agent = agent
        self.palette = palette
        self.files: list[dict[str, Any]] = []
        self.current = -1  # the file shown
        self.loaded = False

    def compose(self) -> ComposeResult:
        self.title_line = Static(f"{self.agent}: its changes against its base", id="review-title")
        self.file_list = OptionList(id="files")
        self.body = DiffBody(id="diff")
        yield self.title_line
        with Horizontal(id="review-body"):
            yield self.file_list
            yield self.body
        yield Footer()

    def on_mount(self) -> None:
        self.file_list.border_title = "Files"
        self.body.border_subtitle = "n/p: next/previous file · ↑↓ PgUp PgDn: scroll · Esc: back"
        if not self.loaded:  # (the answer may have come before the screen was mounted)
            self.body.border_title = "Diff"
            self.body.message(f"reading {self.agent}'s changes…")
        self.body.focus()

    def show(self, result: dict[str, Any]) -> None:
        """The engine's `diff` answer."""
        self.loaded = True
        self.files = list(result.get("files") or [])
        added = sum(int(found.get("added") or 0) for found in self.files)
        removed = sum(int(found.get("removed") or 0) for found in self.files)
        base = str(result.get("base") or "")[:10]
        title = Text(f"{self.agent}", style="bold")
        title.append(f"  {len(self.files)} file{'' if len(self.files) == 1 else 's'} changed against its base {base}"
                     f" (branch {result.get('branch')})  ", style="")
        title.append(f"+{added}", style=self.palette.good)
        title.append(f" −{removed}", style=self.palette.bad)
        self.title_line.update(title)
        self.file_list.clear_options()
        for found in self.files:
            label = file_label(found)
            label.append("  ")
            label.append_text(file_counts(found, self.palette))
            self.file_list.add_option(Option(label))
        if not self.files:
            self.body.message(f"{self.agent} changed nothing against its base {base}")
            return
        self.select_file(0)

    def failed(self, message: str) -> None:
        self.loaded = True
        self.body.message(message)

    def select_file(self, index: int) -> None:
        if not self.files:
            return
        index = max(0, min(len(self.files) - 1, index))
        if self.file_list.highlighted != index:
            self.file_list.highlighted = index
        if index == self.current:
            return
        self.current = index
        found = self.files[index]
        self.body.border_title = f"{found.get('path')} ({index + 1} of {len(self.files)})"
        self.body.show(None, file_lines(found, self.palette, agent=self.agent), reset=True)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.select_file(event.option_index)

    def action_next_file(self) -> None:
        self.select_file(self.current + 1)

    def action_previous_file(self) -> None:
        self.select_file(self.current - 1)

    def action_focus_files(self) -> None:
        self.file_list.focus()

    def action_merge(self) -> None:
        self.dismiss("merge")

    def action_close(self) -> None:
        self.dismiss(None)


def _verdict(check: dict[str, Any] | None, palette: Palette) -> Text:
    if not check:
        return Text("-", style="dim")
    if check.get("error"):
        return Text(str(check["error"])[:40], style=palette.bad)
    if check.get("passed"):
        return Text(f"passed ({float(check.get('seconds') or 0):.0f}s)", style=palette.good)
    return Text("failed", style=f"bold {palette.bad}")


def compare_rows(result: dict[str, Any], palette: Palette) -> list[list[Text]]:
    """The rows `supervisor compare` prints: a label, then one cell per candidate."""
    candidates = list(result.get("candidates") or [])

    def row(label: str, cells: list[Text]) -> list[Text]:
        return [Text(label, style="bold"), *cells]

    rows = [
        row("state", [Text(str(c.get("state")) + (" (merged)" if c.get("merged") else ""), style=palette.state(
            str(c.get("state")))) for c in candidates]),
        row("commits", [Text(str(c.get("commits", 0))) for c in candidates]),
        row("uncommitted", [Text(str(c.get("uncommitted", 0))) for c in candidates]),
        row("files", [Text(str(len(c.get("files") or {}))) for c in candidates]),
    ]
    lines = []
    for c in candidates:
        text = Text()
        text.append(f"+{c.get('added', 0)}", style=palette.good)
        text.append(f" −{c.get('removed', 0)}", style=palette.bad)
        lines.append(text)
    rows.append(row("lines", lines))
    if result.get("check_command"):
        rows.append(row(f"check `{result['check_command']}`", [_verdict(c.get("check"), palette) for c in candidates]))
    if any(c.get("error") for c in candidates):
        rows.append(row("problem", [Text(str(c.get("error") or ""), style=palette.bad) for c in candidates]))
    paths = sorted({path for c in candidates for path in (c.get("files") or {})})
    for path in paths:
        cells = []
        for c in candidates:
            counts = (c.get("files") or {}).get(path)
            if counts is None:
                cells.append(Text("·", style="dim"))
                continue
            text = Text()
            text.append(f"+{counts[0]}", style=palette.good)
            text.append(f" −{counts[1]}", style=palette.bad)
            cells.append(text)
        rows.append([Text(path), *cells])
    return rows


class CompareScreen(ModalScreen[str | None]):
    """A best-of-N's candidates side by side, one column each; the cursor picks a candidate. Dismissed with
    `diff NAME`, `merge NAME` or `go NAME` (what to do next, done by the app), or None."""

    DEFAULT_CSS = REVIEW_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,C", "close", "Back"),
        Binding("D", "choose('diff')", "Its diff"),
        Binding("m", "choose('merge')", "Merge it"),
        Binding("enter", "choose('go')", "Go to it"),
    ]

    def __init__(self, group: str, palette: Palette) -> None:
        super().__init__()
        self.group = group
        self.palette = palette
        self.candidates: list[str] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        self.title_line = Static(f"{self.group}: comparing its candidates (running merge.check where it applies)…",
                                 id="review-title")
        self.table: DataTable[Text] = DataTable(id="candidates", cursor_type="column", zebra_stripes=True)
        with Vertical(id="review-body"):
            yield self.title_line
            yield self.table
            yield Static(Text("←→: pick a candidate · D: its diff · m: merge it (the others are then removed) · "
                              "⏎: go to it · Esc: back"), id="review-note")
        yield Footer()

    def on_mount(self) -> None:
        self.table.border_title = "Candidates"
        self.table.focus()

    def show(self, result: dict[str, Any]) -> None:
        """The engine's `compare` answer."""
        self.loaded = True
        candidates = list(result.get("candidates") or [])
        self.candidates = [str(c.get("name")) for c in candidates]
        self.title_line.update(Text(f"{self.group}: {len(candidates)} candidates against {result.get('target')}",
                                    style="bold"))
        self.table.clear(columns=True)
        self.table.add_column("", key="label")
        for name in self.candidates:
            self.table.add_column(Text(name, style="bold"), key=name)
        for row in compare_rows(result, self.palette):
            self.table.add_row(*row)
        if self.candidates:
            self.table.move_cursor(column=1)

    def failed(self, message: str) -> None:
        self.loaded = True
        self.title_line.update(Text(message))

    @property
    def chosen(self) -> str | None:
        """The candidate under the cursor."""
        column = self.table.cursor_column
        return self.candidates[column - 1] if 1 <= column <= len(self.candidates) else None

    def action_choose(self, what: str) -> None:
        if self.chosen is not None:
            self.dismiss(f"{what} {self.chosen}")

    def action_close(self) -> None:
        self.dismiss(None)
