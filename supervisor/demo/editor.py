"""The demo agent's input box."""

from __future__ import annotations

import math
import shutil

from supervisor.demo import looks
from supervisor.demo.terminal import Key, out

FOLD_CHARS = 800  # a longer paste shows as `[Pasted text #N +L lines]`, as in Claude Code


class LineEditor:
    """The input box: the text being typed, drawn between two rules with the cursor at its end.

    A paste longer than FOLD_CHARS shows folded, as Claude Code shows it: `[Pasted text #N +L lines]` stands
    in the box (and in the history line once submitted) for the text, which `expand` puts back."""

    def __init__(self) -> None:
        self.text = ""
        self.shown = False
        self.cursor_row = 0  # rows from the top of the drawn box to the cursor
        self.pasted: dict[str, str] = {}  # placeholder → the text it stands for
        self.toast = ""  # a passing notice to the right of the footer (--toast-after)

    def feed(self, key: Key) -> None:
        """Apply an editing key (anything else is ignored)."""
        if key.name == "paste" and len(key.text) > FOLD_CHARS:
            lines = key.text.count("\n")
            placeholder = f"[Pasted text #{len(self.pasted) + 1} +{lines} lines]"
            self.pasted[placeholder] = key.text
            self.text += placeholder
        elif key.name in ("text", "paste"):
            self.text += key.text
        elif key.name == "backspace":
            self.text = self.text[:-1]
        elif key.name == "ctrl-u":
            self.text = ""
        if self.shown:
            self.draw()

    def take(self) -> str:
        text, self.text = self.text, ""
        return text

    def expand(self, text: str) -> str:
        """The text a submitted input stands for: each folded paste's placeholder replaced by the paste."""
        for placeholder, pasted in self.pasted.items():
            text = text.replace(placeholder, pasted)
        return text

    def draw(self) -> None:
        cols = max(shutil.get_terminal_size().columns, 4)
        lines = self.text.split("\n")
        body = [looks.look.prompt + lines[0], *("  " + line for line in lines[1:])]
        rule = "─" * min(cols, 80)
        rows = [max(1, math.ceil(len(line) / cols)) for line in body]
        column = min(len(body[-1]) - (rows[-1] - 1) * cols, cols - 1)
        footer = f"{looks.look.footer}    {self.toast}" if self.toast else looks.look.footer
        below = [rule, footer] if footer else [rule]
        move = f"\x1b[{len(below)}A\r" + (f"\x1b[{column}C" if column else "")
        out(self._home() + "\x1b[J" + "\n".join([rule, *body, *below]) + move)
        self.cursor_row, self.shown = sum(rows), True

    def erase(self) -> None:
        if self.shown:
            out(self._home() + "\x1b[J")
        self.cursor_row, self.shown = 0, False

    def _home(self) -> str:
        return "\r" + (f"\x1b[{self.cursor_row}A" if self.cursor_row else "")
