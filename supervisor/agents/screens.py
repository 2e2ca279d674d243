"""Reading an agent's state from its screen: the fallback when the CLI reports nothing itself.

Rules per profile, applied to the last lines of the screen only:
- the newest (lowest) line carrying a marker decides; within one line waiting beats working beats idle;
- no marker at all decides nothing (the caller falls back on activity); an idle marker that a CLI draws in
  every state (Codex's and Gemini's input boxes) is weak: it decides only when no other marker shows;
- a screen that merely re-draws (a spinner frame, an elapsed-time counter, a token count) has not
  progressed: `progress_key` removes those volatile parts before screens are compared.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    WORKING = "working"
    IDLE = "idle"
    WAITING = "waiting"


_PRIORITY = {Verdict.WAITING: 0, Verdict.WORKING: 1, Verdict.IDLE: 2}
_RULE = re.compile(r"[─━═╭╮╰╯]{3,}")  # a line that only draws: the edge of a dialog


@dataclass(frozen=True)
class Marker:
    verdict: Verdict
    pattern: re.Pattern[str]
    name: str  # which rule fired, recorded as evidence
    weak: bool = False  # drawn in every state (an input box): it decides only when no other marker shows

    def reason(self, line: str, screen: list[str], index: int) -> str | None:
        """What a waiting agent waits for, from the dialog the marker is part of (the lines up to a rule
        above it): the question nearest its options, else the first question in its text, else its first
        line (a notice), else the marked line itself."""
        if self.verdict != Verdict.WAITING:
            return None
        block: list[str] = []
        for above in reversed(screen[max(0, index - 15): index + 1]):
            if _RULE.fullmatch(above.strip()):
                break
            block.insert(0, above.strip(" │╭╮╰╯─▎"))
        texts = [text for text in block if text]
        for text in reversed(texts):
            if text.endswith("?"):
                return text
        for text in texts:
            if "?" in text:
                return text[:text.index("?") + 1]
        first = texts[0] if texts else ""
        return first if first and first != line.strip(" │╭╮╰╯─▎") else line.strip(" │╭╮╰╯─") or self.name


@dataclass(frozen=True)
class Reading:
    verdict: Verdict | None
    rule: str | None = None
    line: str | None = None
    reason: str | None = None


def _compile(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


# Spinner glyphs, elapsed counters, token counts and the like: they change while nothing happens.
COMMON_VOLATILE = _compile(
    r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✻✽✶✳✢·∗*◐◓◑◒•◦|/\\-]\s",  # a spinner glyph before text
    r"\(\s*\d+(?:m\s*)?\d*s[^)]*\)",  # (12s), (1m 3s · ↓ 2.1k tokens · esc to interrupt)
    r"\b\d+(?:\.\d+)?k?\s+tokens?\b",
    r"\b\d+m\s*\d+s\b|\b\d+s\b",
    r"[↑↓]\s*[\d.]+k?",
)


@dataclass(frozen=True)
class ScreenRules:
    markers: tuple[Marker, ...]
    errors: tuple[re.Pattern[str], ...] = ()  # error lines, counted for the `errors` trigger
    limits: tuple[re.Pattern[str], ...] = ()  # usage or rate limit messages: alert at once
    volatile: tuple[re.Pattern[str], ...] = field(default=COMMON_VOLATILE)
    lines: int = 30
    # For a CLI that shows nothing while it streams (Codex): its prompt lines, and the line that ends a turn.
    # A weak idle marker then counts only once the last submitted prompt's turn has ended.
    prompt_line: re.Pattern[str] | None = None
    turn_end: re.Pattern[str] | None = None
    # For a CLI that writes a plain scrolling log (aider): its answered questions and old prompts stay on the
    # screen above, and only the newest row that shows anything (where its cursor is) tells its state.
    last_row: bool = False
    # For a CLI that draws no input box while a dialog shows (Gemini): a dialog above its input box is over (a
    # CLI restarting after an answer leaves the old dialog on screen above its new box).
    box_ends_dialogs: bool = False
    # The input line, over the rows that show anything (MULTILINE): what is typed in it is group `typed` of its
    # lowest match; `placeholder` is what the CLI shows in an empty one.
    input_line: re.Pattern[str] | None = None
    placeholder: re.Pattern[str] | None = None

    def typed(self, screen: str) -> str | None:
        """The text typed into the input line and not submitted ("" when it is empty), or None when no input
        line shows (or the profile cannot tell)."""
        if self.input_line is None:
            return None
        found = list(self.input_line.finditer("\n".join(self._rows(screen)) + "\n"))
        if not found:
            return None
        text = " ".join(found[-1].group("typed").split())
        return "" if self.placeholder is not None and self.placeholder.fullmatch(text) else text

    def read(self, screen: str) -> Reading:
        rows = self._rows(screen)
        first = max(0, len(rows) - 1) if self.last_row else 0
        box = self._box_row(rows) if self.box_ends_dialogs else -1
        for weak in (False, True):
            for index in range(len(rows) - 1, first - 1, -1):
                line = rows[index]
                if not line.strip():
                    continue
                hits = [m for m in self.markers if m.weak == weak and m.pattern.search(line)
                        and not (m.verdict == Verdict.WAITING and index < box)]
                if hits:
                    best = min(hits, key=lambda m: _PRIORITY[m.verdict])
                    if best.weak and best.verdict == Verdict.IDLE and not self._turn_ended(rows, index):
                        return Reading(None)  # still streaming its answer, or ambiguous: never guessed idle
                    # A log's rows above are earlier turns, not part of its question.
                    context, at = ([line], 0) if self.last_row else (rows, index)
                    return Reading(best.verdict, best.name, line.strip(), best.reason(line, context, at))
        return Reading(None)

    def _box_row(self, rows: list[str]) -> int:
        """The lowest row showing the input box (a weak idle marker), or -1."""
        idle = [m for m in self.markers if m.weak and m.verdict == Verdict.IDLE]
        return next((index for index in range(len(rows) - 1, -1, -1)
                     if any(m.pattern.search(rows[index]) for m in idle)), -1)

    def _rows(self, screen: str) -> list[str]:
        """The screen's last `lines` rows that show anything, without trailing blanks: a real pane captured
        with `-J` keeps trailing spaces, and Codex and aider paint empty rows with spaces, so a window over raw
        rows can hold nothing but blanks."""
        rows = [row.rstrip() for row in screen.split("\n")]
        return [row for row in rows if row][-self.lines:]

    def _turn_ended(self, rows: list[str], box: int) -> bool:
        """Whether the turn of the last prompt submitted above the input box (at or above row `box`) is over:
        a turn-end line after it, or no prompt submitted in sight (a CLI just started)."""
        if self.prompt_line is None or self.turn_end is None:
            return True
        prompts = [index for index in range(box + 1) if self.prompt_line.search(rows[index])]
        if len(prompts) < 2:  # only the input box itself
            return True
        last, box_row = prompts[-2], prompts[-1]
        return any(self.turn_end.search(row) for row in rows[last + 1:box_row])

    def progress_key(self, screen: str) -> str:
        """A digest of the screen that changes only when its content does, not when it merely animates."""
        text = "\n".join(self._rows(screen))
        for pattern in self.volatile:
            text = pattern.sub("", text)
        text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def may_hold_errors(self, text: str) -> bool:
        """Whether any line of `text` may be an error or limit line: one search over the whole text, so the
        lines are looked at one by one only when something matched."""
        return self._any_error is not None and self._any_error.search(text) is not None

    @functools.cached_property
    def _any_error(self) -> re.Pattern[str] | None:
        patterns = [*self.errors, *self.limits]
        if not patterns:
            return None
        return re.compile("|".join(f"(?{'i' if p.flags & re.IGNORECASE else ''}m:{p.pattern})" for p in patterns))


def marker(verdict: Verdict, name: str, pattern: str, flags: int = 0, *, weak: bool = False) -> Marker:
    return Marker(verdict, re.compile(pattern, flags), name, weak)


# A dialog footer that every blocking TUI prompt of these CLIs shows; an unknown dialog with it is waiting.
ESC_TO_CANCEL = marker(Verdict.WAITING, "dialog: Esc to cancel", r"Esc to cancel|esc to cancel")


# A CLI's own words for a usage or rate limit, not the words alone: an agent writes "rate limit" middleware,
# prints line 429 of a file, or (Codex) tells how far "your usage limits go".
CLI_LIMITS = (re.compile(
    r"usage limit (?:reached|exceeded)|hit (?:your|the) usage limit|rate limit (?:reached|exceeded)"
    r"|rate_limit_error|RateLimitError|quota exceeded|exceeded your (?:current )?quota|RESOURCE_EXHAUSTED"
    r"|\b429 Too Many Requests|\bstatus(?: code)?:? 429\b", re.IGNORECASE),)
