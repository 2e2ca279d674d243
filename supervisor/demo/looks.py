"""How the demo agent's screen looks: its own texts, or Claude Code's or Gemini CLI's markers (`--look`), so that
screen patterns can be tested against the texts each real CLI shows. `look` is the one chosen for this run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Look:
    """What the agent's screen looks like: its own (`demo`), or Claude Code's markers (`claude`), so that
    screen-pattern fallbacks can be tested against the texts the real CLI shows."""

    prompt: str
    spinner: str
    options: tuple[str, ...]
    done: str  # the end-of-turn line; {s} is the turn's duration in seconds
    footer: str = ""  # a line under the input box (Claude Code shows its permission mode there)
    # What a key pressed in an `ask` dialog means: True allows, False refuses (the others are ignored).
    answers: tuple[tuple[str, bool], ...] = (("1", True), ("y", True), ("2", False), ("n", False))
    selected: str = "❯"  # the mark of the selected option

    def spin(self, frame: int, elapsed: int, busy: str) -> str:
        if self is CLAUDE_LOOK:
            return f"{self.spinner[frame % len(self.spinner)]} {busy}… ({elapsed}s · esc to interrupt)"
        if self is GEMINI_LOOK:
            return f"{self.spinner[frame % len(self.spinner)]} {busy}... (esc to cancel, {elapsed}s)"
        return f"{self.spinner[frame % len(self.spinner)]} {busy}… ({elapsed}s)"


DEMO_LOOK = Look(prompt="› ", spinner="⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", options=("❯ 1. Yes", "  2. No", "Esc to cancel"),
                 done="✓ done")
CLAUDE_LOOK = Look(prompt="❯\u00a0", spinner="·✢✳✶✻✽",
                   options=("❯ 1. Yes", "  2. No", "", "Esc to cancel · Tab to amend"),
                   done="✻ Worked for {s}s · done", footer="  ⏵⏵ auto mode on (shift+tab to cycle)")
# Gemini CLI's texts: its input box placeholder, its working line, its three-option approval box.
GEMINI_LOOK = Look(prompt=" > ", spinner="⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏",
                   options=("│ ● 1. Allow once", "│   2. Allow for this session", "│   3. No, suggest changes (esc)"),
                   done="✦ Done.", footer="   Type your message or @path/to/file",
                   answers=(("1", True), ("2", True), ("3", False)), selected="●")
LOOKS = {"demo": DEMO_LOOK, "claude": CLAUDE_LOOK, "gemini": GEMINI_LOOK}
look = DEMO_LOOK  # chosen by --look
