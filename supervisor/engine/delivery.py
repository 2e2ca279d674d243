"""Typing text into an agent's TUI so that it is really submitted.

Pasted as one bracketed paste (so a multi-line task stays one prompt), a pause of at least 150 ms (TUIs
treat an Enter that arrives with the paste as part of it), Enter sent on its own, and each step verified
(see `deliver`); Enter is retried once, the paste only when nothing shows of the first. Control characters
are removed first: text typed into a pane is literal, and an ESC inside the text could otherwise end the
bracketed paste early and be read as keys.

Submitted means the CLI took the text: its hook reported the prompt (Claude Code's UserPromptSubmit), or its
input cleared. Not the text shown back: CLIs fold a long paste into a placeholder ("[Pasted text #1 +12
lines]"), so a long or multi-line text is never looked for on the screen.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from supervisor.agents.screens import Reading
from supervisor.errors import SupervisorError
from supervisor.tmux.server import Tmux, TmuxError

PASTE_SETTLE = 0.15
LONG = 500  # characters: a longer text may show folded, and arrive in the pane over a while
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


class DeliveryError(SupervisorError):
    pass


class DialogShown(DeliveryError):
    """A dialog took the screen before Enter was sent: Enter would have answered it, so it was not sent."""

    def __init__(self, dialog: Reading) -> None:
        super().__init__(f"a dialog showed before the text was submitted: {dialog.reason or dialog.rule}",
                         hint="answer it in the pane; the text goes in once the prompt shows")
        self.dialog = dialog


def literal(text: str) -> str:
    """The text with line endings normalised and every control character but tab and newline removed."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def deliver(tmux: Tmux, pane: str, text: str, *, pane_alive: Callable[[], bool], timeout: float = 3.0,
            repaste: bool = True, submitted: Callable[[], bool] | None = None,
            dialog: Callable[[], Reading | None] | None = None, settle: float = PASTE_SETTLE) -> None:
    """Paste `text` into `pane` and submit it; raises DeliveryError when that cannot be verified.

    A CLI still starting may drop the paste: it is pasted once more when the screen shows no trace of the
    first after `timeout`, unless `repaste` is false (a CLI busy with a turn keeps what is typed, and may
    show it only when the turn ends: a second paste would double it). `submitted`: whether the CLI reported
    taking a prompt since the paste (its hooks); without it, or until then, its input clearing tells.
    `dialog`: the dialog the screen shows, if any; asked right before each Enter, which is never sent into
    one (DialogShown). `settle`: the pause between the paste and Enter (at least PASTE_SETTLE)."""
    text = literal(text).strip("\n")
    if not text.strip():
        raise DeliveryError("nothing to send: the text is empty")
    before = tmux.capture(pane)

    def dead() -> bool:
        return not pane_alive()

    fragment = _fragment(text)
    shown_before = _squash(before).count(fragment) if fragment else 0

    def taken() -> bool:
        screen = tmux.capture(pane)
        # A long text may show folded ("[Pasted text #1 +12 lines]"): then any change counts.
        return _squash(screen).count(fragment) > shown_before if fragment else screen != before

    try:
        for attempt in range(2):
            tmux.paste(pane, text)
            time.sleep(max(PASTE_SETTLE, settle))
            if wait_for(lambda: dead() or taken(), timeout):
                break
            if tmux.capture(pane) != before:
                break  # it changed: the CLI is busy and may show the text later; never paste twice into that
            if attempt or not repaste:
                raise DeliveryError("the agent did not take the pasted text (its screen did not change)",
                                    hint="attach to see what it shows")
        if dead():
            raise DeliveryError("the agent ended while the text was being typed")
        pasted = _settled(tmux, pane, timeout) if len(text) > LONG else tmux.capture(pane)
        rows = _changed_rows(before, pasted)
        first = rows[0] if rows else 0  # where its input shows: a spinner above it says nothing

        def cleared() -> bool:
            """The CLI took it: its hook said so, or its input changed again (cleared, or a new line under it,
            as a line-oriented CLI shows it); when the paste changed nothing (a busy CLI shows it later), any
            change."""
            if submitted is not None and submitted():
                return True
            now, then = tmux.capture(pane).split("\n"), pasted.split("\n")
            return any(_row(now, row) != _row(then, row) for row in range(first, max(len(now), len(then))))

        for _attempt in range(2):
            shown = dialog() if dialog is not None else None
            if shown is not None and not _echoes(shown.line or "", text):
                raise DialogShown(shown)
            tmux.send_keys(pane, "Enter")
            if wait_for(lambda: dead() or cleared(), timeout):
                return  # taken (an agent may also end because of what it was told, e.g. `/exit`)
    except TmuxError as exc:
        raise DeliveryError(f"the text could not be typed: {exc}") from None
    raise DeliveryError("the agent did not accept Enter (the text is still in its input)",
                        hint="attach to see what it shows")


def _settled(tmux: Tmux, pane: str, timeout: float) -> str:
    """The pane's screen once it stopped changing (a long paste arrives, and is echoed, over a while), or
    as it is after `timeout`."""
    screen = tmux.capture(pane)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(PASTE_SETTLE)
        now = tmux.capture(pane)
        if now == screen:
            break
        screen = now
    return screen


def _changed_rows(before: str, after: str) -> list[int]:
    old, new = before.split("\n"), after.split("\n")
    return [row for row in range(max(len(old), len(new))) if _row(old, row) != _row(new, row)]


def _row(rows: list[str], index: int) -> str:
    return rows[index] if index < len(rows) else ""


def _echoes(line: str, text: str) -> bool:
    """Whether a marked line is only the text being typed, shown back (a task that reads "Esc to cancel")."""
    words = set(re.findall(r"\w+", line.lower()))
    return bool(words) and words <= set(re.findall(r"\w+", text.lower()))


def _squash(text: str) -> str:
    return "".join(text.split())


def _fragment(text: str) -> str:
    """A piece of a short one-line text to look for on the screen (spaces ignored, as a TUI may wrap it)."""
    if "\n" in text or len(text) > LONG:
        return ""
    return _squash(text)[-24:]
