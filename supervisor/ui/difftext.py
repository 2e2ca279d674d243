"""An agent's changed files as coloured lines for the diff view, without Textual.

A file's entry is what the engine's `diff` request gives (`supervisor.git.changes.FileDiff`). Its code is
coloured by the language its name says (pygments), in the theme's colours (`supervisor.ui.palette`); added
and removed lines get a faint background of the theme's success and error colours.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.syntax import Syntax, SyntaxTheme, TokenType
from rich.text import Text

from supervisor.ui.palette import Palette

STATUS_LETTERS = {"added": "A", "deleted": "D", "renamed": "R", "modified": "M"}


class PaletteSyntax(SyntaxTheme):
    """Code coloured in the theme's colours: each kind of token (Literal.String.Doc) takes the style of the
    nearest kind the palette names (Literal.String), on no background of its own."""

    def __init__(self, palette: Palette) -> None:
        self.palette = palette
        self._styles: dict[TokenType, Style] = {}

    def get_style_for_token(self, token_type: TokenType) -> Style:
        style = self._styles.get(token_type)
        if style is None:
            kind = token_type
            while kind and ".".join(kind) not in self.palette.syntax:
                kind = kind[:-1]
            style = Style.parse(self.palette.syntax[".".join(kind)]) if kind else Style.null()
            self._styles[token_type] = style
        return style

    def get_background_style(self) -> Style:
        return Style.null()


def highlighted(code: list[str], path: str, palette: Palette) -> list[Text]:
    """Lines of code coloured as the language of `path` says (lexed together, so a string or comment spanning
    lines is seen as one); plain when the language is unknown."""
    joined = "\n".join(code)
    lexer = Syntax.guess_lexer(path, joined)
    if lexer == "default":
        return [Text(line) for line in code]
    text = Syntax(joined, lexer, theme=PaletteSyntax(palette)).highlight(joined)
    text.style = ""
    lines = list(text.split("\n", allow_blank=True))[:len(code)]
    return lines + [Text() for _ in range(len(code) - len(lines))]


def file_label(found: dict[str, Any]) -> Text:
    """A file as the list shows it: `M path  +3 −1`."""
    label = Text(f"{STATUS_LETTERS.get(str(found.get('status')), '?')} ", style="bold")
    label.append(str(found.get("path")))
    return label


def file_counts(found: dict[str, Any], palette: Palette) -> Text:
    if found.get("binary"):
        return Text("binary", style="dim")
    counts = Text()
    counts.append(f"+{found.get('added', 0)}", style=palette.good)
    counts.append(f" −{found.get('removed', 0)}", style=palette.bad)
    return counts


def file_lines(found: dict[str, Any], palette: Palette, *, agent: str = "NAME") -> list[Text]:
    """One file's diff: a line saying what happened to it, then its hunks with their code coloured."""
    path = str(found.get("path"))
    head = Text(path, style="bold")
    status = str(found.get("status") or "modified")
    if status == "renamed" and found.get("old_path"):
        head.append(f"  (renamed from {found['old_path']})", style="dim")
    elif status in ("added", "deleted"):
        head.append(f"  ({'new file' if status == 'added' else 'deleted'})", style="dim")
    head.append("  ")
    head.append_text(file_counts(found, palette))
    shown = [head, Text()]
    if found.get("binary"):
        return [*shown, Text("a binary file: its content is not shown", style="dim italic")]
    lines = [str(line) for line in found.get("lines") or []]
    code_at = [index for index, line in enumerate(lines) if line[:1] in ("+", "-", " ")]
    code = highlighted([lines[index][1:] for index in code_at], path, palette)
    coloured = dict(zip(code_at, code, strict=True))
    for index, line in enumerate(lines):
        if index not in coloured:  # `@@ -1,3 +1,4 @@ context`, `\ No newline at end of file`
            shown.append(Text(line, style=palette.hunk if line.startswith("@@") else "dim"))
            continue
        sign = line[0]
        text = Text()
        text.append(sign, style=palette.good if sign == "+" else palette.bad if sign == "-" else "dim")
        text.append_text(coloured[index])
        if sign in "+-":
            text.stylize_before(palette.added_line if sign == "+" else palette.removed_line)
        shown.append(text)
    if not lines:
        shown.append(Text("no change to its lines (its mode, or an empty file)", style="dim italic"))
    if found.get("cut"):
        shown.append(Text(f"… {found['cut']} more lines: `supervisor diff {agent}` shows them all", style="dim italic"))
    return shown
