"""The demo agent: a scripted fake AI coding CLI for tests and ``supervisor demo``.

Run it as ``python -m supervisor.demo.agent [--scenario NAME | --script FILE]``. It behaves like an
interactive agent CLI on a real terminal: it puts the tty in raw mode, enables bracketed paste, shows
an input box, and runs one *turn* of its script for each prompt submitted with Enter.

Screen (what screen patterns can rely on)::

    demo-agent 0.1.0 — /path/to/cwd       banner, once
    ────────────────────────────────       input box, shown only while idle; the cursor sits
    › text being typed                     on the input line; more lines of a multi-line
    ────────────────────────────────       input are indented by two spaces

    › submitted prompt                     history line once Enter was pressed (box erased)
    ⠋ Working… (3s)                        `work` progress, redrawn in place every 0.5 s,
    · Worked for 3s                        replaced by this line when the step ends
    QUESTION                               `ask`: the question, the options and the footer;
    ❯ 1. Yes                               the three lines below the question are erased
      2. No                                once answered, and `approved` or `denied` is
    Esc to cancel                          printed in their place
    ✓ done                                 the end of every turn (also after `denied`)
    (interrupted)                          Ctrl-C: the turn is abandoned, no `✓ done`
    (nothing more to do)                   a prompt after the last turn (followed by `✓ done`)

Script (``--script FILE``, YAML)::

    start: [...steps run once after launch, before the first prompt...]   # optional
    turns:
      - [...steps for the 1st submitted prompt...]
      - [...steps for the 2nd...]

Each step is a one-key mapping:

``say: TEXT``                 print TEXT
``work: DURATION``            a spinner line updated every 0.5 s for DURATION (output, little CPU)
``think: DURATION``           burn CPU silently for DURATION
``quiet: DURATION``           no output and no CPU for DURATION (a stall)
``ask: QUESTION``             approval dialog; ``1``/``y`` → ``approved``, ``2``/``n``/Esc → ``denied``
                              (ends the turn); a typed or pasted ``yes``/``no`` + Enter works too
``write: {path: P, content: C}``  write a file relative to the cwd, creating directories
``commit: MESSAGE``           ``git add -A`` + ``git commit -q -m MESSAGE``; failures are printed
``run: SHELL``                run a shell command, print its output
``spawn: SHELL``              start a background child (stays in this process tree)
``spawn_detached: SHELL``     start a command double-forked into its own session (escapes the tree)
``box: DURATION``             the input box for DURATION, then gone (a CLI drawing its box before a dialog):
                              typed text shows in it and is then dropped; an Enter goes to the next dialog
``trust: QUESTION``           a workspace-trust dialog: ``1. Trust folder`` (selected) / ``2. Don't trust``;
                              Enter or ``1`` → ``trusted``, ``2`` or Esc → ``not trusted``; pastes are ignored
``exit: CODE``                exit with CODE
``echo_env: NAME``            print ``NAME=<value>``
``api_error: TEXT``           print ``API Error: TEXT`` and end the turn (with ``--claude``: StopFailure, no Stop)
``limit: DURATION``           end the turn on a usage limit that resets DURATION from now, in the words of the
                              look's CLI; until then every prompt gets the limit again (supervisor/demo/limits.py)
``reply: {input: N, output: N, cache_read: N, cache_write: N, blocks: N, model: M}``  with ``--claude``: a model
                              response in the session transcript, as Claude Code writes it (claude_transcript.py)

Durations: ``3s``, ``1.5s``, ``500ms``, ``2m``, ``1h30m`` or a number of seconds.

Built-in scenarios (``--scenario NAME``, see SCENARIOS below): ``gentle`` (the default), ``worker``,
``asker``, ``staller``, ``crasher``, ``committer``, ``boundary``.

Options: ``--record FILE`` appends ``{"ts": <epoch>, "text": <prompt>}`` per submitted prompt;
``--start-delay DURATION`` sleeps between the banner and the start steps (a slow-starting CLI);
``--toast-after DURATION`` shows a passing notice in the footer that long after each turn, for 2 s;
``--drop-early-input`` discards what was typed before the prompt first shows; ``--ignore-term``.
With ``--claude`` (Claude Code's hooks, see ``claude_hooks``) each prompt is kept in its conversation's file, and
``--resume ID`` resumes that conversation: ``resumed conversation ID`` and its prompts show, and the script goes on
at the turn after the last one it ran (an unknown ID: ``No conversation found with session ID: ID``, exit 1).

Keys: Enter submits (an empty input is ignored); a bracketed paste is inserted as is, newlines
included, or, longer than 800 characters, folded like Claude Code folds it: ``[Pasted text #1 +12 lines]``
shows in the input box and the history line, and the prompt taken (recorded, given to the hooks) is the whole
text; Backspace edits; Ctrl-U clears the input; Ctrl-C abandons the turn, twice within 1 s exits
130; Ctrl-D on an empty input and the prompt ``/exit`` exit 0. Input typed during a turn is kept, and
a prompt submitted during a turn runs right after it. A prompt starting with ``!`` is run as a shell
command (a ``run`` step, hooks included), like Claude Code's shell mode, without using a turn.
SIGTERM prints ``bye`` and exits 143, unless ``--ignore-term`` (then it prints ``(ignoring SIGTERM)``
and goes on).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import math
import os
import re
import select
import shutil
import signal
import string
import subprocess
import sys
import termios
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import yaml

from supervisor import __version__
from supervisor.demo.claude_hooks import ClaudeHooks, permission_decision
from supervisor.demo.limits import limit_message

INTERRUPTED = "(interrupted)"
TOAST = "tmux focus-events off · add 'set -g focus-events on' to ~/.tmux.conf and reattach for focus tracking"
TOAST_SECONDS = 2.0
NOTHING_LEFT = "(nothing more to do)"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


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
FOLD_CHARS = 800  # a longer paste shows as `[Pasted text #N +L lines]`, as in Claude Code
ESC_WAIT = 0.05  # a lone ESC not followed by more bytes within this time is the Esc key
DOUBLE_CTRL_C = 1.0

# One complete escape sequence: CSI (ESC [ params final), SS3 (ESC O x) or ESC + one character.
_ESC_SEQ = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|O.|[^\[O])", re.DOTALL)
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")
_CONTROLS = {"\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace",
             "\x03": "ctrl-c", "\x04": "ctrl-d", "\x15": "ctrl-u"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ScriptError(Exception):
    """The script is not valid."""


class EndTurn(Exception):
    """Raised by a step to end the current turn early (an approval was denied, an API error). `hook`: what
    the real Claude Code tells its hooks at that end: Stop, StopFailure, or nothing (a No in its dialog)."""

    def __init__(self, hook: str | None = "Stop", **fields: Any) -> None:
        super().__init__(hook)
        self.hook, self.fields = hook, fields or ({"stop_hook_active": False} if hook == "Stop" else {})


class Terminated(BaseException):
    """SIGTERM arrived: restore the terminal, print ``bye``, exit 143."""


def out(text: str) -> None:
    """Write to the terminal at once (UTF-8 whatever the locale, no buffering)."""
    data = text.encode("utf-8", "replace")
    while data:
        data = data[os.write(1, data):]


def parse_duration(value: object) -> float:
    """``3s``, ``1.5s``, ``500ms``, ``2m``, ``1h30m`` or a plain number of seconds → seconds."""
    if isinstance(value, bool):
        raise ScriptError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        try:
            return float(text)
        except ValueError:
            raise ScriptError(f"not a duration: {value!r}") from None
    return sum(float(n) * _UNITS[u] for n, u in parts)


# ---------------------------------------------------------------------------------------- keys


class Key(NamedTuple):
    """One input event: name is text, paste, enter, backspace, ctrl-c, ctrl-d, ctrl-u, esc, eof, other."""

    name: str
    text: str = ""


class KeyReader:
    """Decodes raw terminal input into keys, bracketed pastes and escape sequences."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.buf = ""
        self.in_paste = False
        self.eof = False
        self.keys: deque[Key] = deque()

    def next_key(self, timeout: float) -> Key | None:
        """The next key, waiting at most ``timeout`` seconds; None when none came."""
        deadline = time.monotonic() + timeout
        while not self.keys:
            left = deadline - time.monotonic()
            partial = bool(self.buf) and not self.in_paste  # an unfinished escape sequence
            if self.eof:
                time.sleep(max(0.0, left))
                return None
            if left <= 0 and not partial:
                return None
            ready, _, _ = select.select([self.fd], [], [], ESC_WAIT if partial else left)
            if ready:
                data = os.read(self.fd, 65536)
                if not data:
                    self.eof = True
                    self.keys.append(Key("eof"))
                self.buf += self.decoder.decode(data)
            elif partial:
                self.buf = self.buf[1:]
                self.keys.append(Key("esc"))
            self._parse()
        return self.keys.popleft()

    def discard(self) -> None:
        """Forget everything typed so far (also what the kernel holds)."""
        with contextlib.suppress(termios.error):
            termios.tcflush(self.fd, termios.TCIFLUSH)
        self.buf, self.in_paste = "", False
        self.keys.clear()

    def _parse(self) -> None:
        while self.buf:
            if self.in_paste:
                end = self.buf.find(PASTE_END)
                if end < 0:
                    return
                text = self.buf[:end].replace("\r\n", "\n").replace("\r", "\n")
                self.keys.append(Key("paste", text))
                self.buf, self.in_paste = self.buf[end + len(PASTE_END):], False
            elif self.buf.startswith(PASTE_START):
                self.buf, self.in_paste = self.buf[len(PASTE_START):], True
            elif self.buf.startswith("\x1b"):
                if PASTE_START.startswith(self.buf) or not (match := _ESC_SEQ.match(self.buf)):
                    return  # wait for the rest of the sequence
                self.keys.append(Key("esc" if match.group() == "\x1b\x1b" else "other", match.group()))
                self.buf = self.buf[match.end():]
            elif match := _PRINTABLE.match(self.buf):
                self.keys.append(Key("text", match.group()))
                self.buf = self.buf[match.end():]
            else:
                char, self.buf = self.buf[0], self.buf[1:]
                self.keys.append(Key(_CONTROLS.get(char, "other"), char))


# ---------------------------------------------------------------------------------- line editor


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
        body = [look.prompt + lines[0], *("  " + line for line in lines[1:])]
        rule = "─" * min(cols, 80)
        rows = [max(1, math.ceil(len(line) / cols)) for line in body]
        column = min(len(body[-1]) - (rows[-1] - 1) * cols, cols - 1)
        footer = f"{look.footer}    {self.toast}" if self.toast else look.footer
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


# ---------------------------------------------------------------------------------------- agent

Step = tuple[str, Any]


@dataclass
class Script:
    start: list[Step] = field(default_factory=list)
    turns: list[list[Step]] = field(default_factory=list)


@dataclass
class Agent:
    script: Script
    record: Path | None = None
    ignore_term: bool = False
    start_delay: float = 0.0
    drop_early_input: bool = False
    fd: int = 0
    reader: KeyReader = field(init=False)
    editor: LineEditor = field(default_factory=LineEditor)
    queue: list[str] = field(default_factory=list)
    announced: list[str] = field(default_factory=list)  # queued prompts whose UserPromptSubmit already fired
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    turn: int = 0
    last_ctrl_c: float = -math.inf
    term_pending: bool = False
    turn_started: float = 0.0
    held: list[Key] = field(default_factory=list)  # keys typed into a `box` that the next dialog reads
    hooks: ClaudeHooks | None = None  # --claude: call Claude Code's hooks like the real CLI
    notify_delay: float = 1.0  # --claude: seconds from a dialog to its Notification hook
    toast_after: float | None = None  # --toast-after: seconds from a turn's end to a passing footer notice
    toast_at: float = math.inf
    toast_log: Path | None = None  # --toast-log: where the notice's coming and going is written
    start_source: str = "startup"  # --claude: SessionStart's source (`resume` with --resume/--continue)
    resumed: list[str] | None = None  # --claude --resume: the prompts of the conversation it resumed
    limited_until: float = 0.0  # a `limit` step's reset: until then, every prompt gets the limit again

    def __post_init__(self) -> None:
        self.reader = KeyReader(self.fd)

    def run(self) -> int:
        """Run until exit; the input box never stays on screen after the agent has gone."""
        try:
            return self.session()
        finally:
            with contextlib.suppress(OSError):
                self.editor.erase()

    def session(self) -> int:
        out(f"demo-agent {__version__} — {os.getcwd()}\n")
        if self.hooks and self.resumed is not None:  # the conversation so far, as Claude Code shows it again
            out(f"resumed conversation {self.hooks.session_id}\n")
            out("".join(look.prompt + prompt.split("\n")[0] + "\n" for prompt in self.resumed))
            self.turn = min(len(self.script.turns), sum(1 for p in self.resumed if not p.startswith("!")))
        time.sleep(self.start_delay)
        if self.hooks:
            self.hooks.fire("SessionStart", self.start_source, source=self.start_source)
        self.run_steps(self.script.start, done=False)
        if self.drop_early_input:
            self.reader.discard()
        while True:
            shown = self.read_prompt()
            first, *rest = shown.split("\n")
            out("\n".join([look.prompt + first, *("  " + line for line in rest)]) + "\n")
            text = self.editor.expand(shown)
            self.turn_started = time.monotonic()
            if self.record:
                with self.record.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"ts": time.time(), "text": text}, ensure_ascii=False) + "\n")
            if text == "/exit":
                return 0
            if self.hooks:
                self.hooks.remember(text)
            if self.hooks and not (self.announced and self.announced[0] == shown):
                self.hooks.fire("UserPromptSubmit", prompt=text)
            elif self.announced:
                self.announced.pop(0)  # its hook fired when it was queued
            if text.startswith("!"):  # shell mode, like Claude Code's `!`: run it, no turn of the script
                self.run_steps([("run", text[1:].strip())], done=True)
            elif time.time() < self.limited_until:
                self.run_steps([("limit", None)], done=True)
            elif self.turn < len(self.script.turns):
                self.turn += 1
                self.run_steps(self.script.turns[self.turn - 1], done=True)
            else:
                self.run_steps([("say", NOTHING_LEFT)], done=True)

    def read_prompt(self) -> str:
        """Show the input box and edit until a non-empty input is submitted."""
        if self.queue:
            return self.queue.pop(0)
        self.editor.draw()
        while True:
            try:
                key = self.poll(0.5 if self.toast_at == math.inf else 0.1)
                self.show_toast()
                if key is None:
                    continue
                if key.name == "ctrl-c":
                    raise KeyboardInterrupt
                if key.name in ("ctrl-d", "eof") and not self.editor.text:
                    self.editor.erase()
                    raise SystemExit(0)
                if key.name == "enter" and self.editor.text.strip():
                    self.editor.erase()
                    return self.editor.take().strip()
                self.editor.feed(key)
            except KeyboardInterrupt:
                self.editor.erase()
                self.editor.take()
                self.interrupted()
                self.editor.draw()

    def run_steps(self, steps: list[Step], done: bool) -> None:
        end = EndTurn()
        try:
            for kind, arg in steps:
                STEPS[kind](self, arg)
        except EndTurn as early:
            end = early
        except KeyboardInterrupt:
            self.interrupted()  # like Esc in Claude Code: no hook at all
            return
        if done:
            out(look.done.format(s=int(time.monotonic() - self.turn_started)) + "\n")
            if self.toast_after is not None:
                self.toast_at = time.monotonic() + self.toast_after
            if self.hooks and end.hook:
                self.hooks.fire(end.hook, **end.fields)

    def show_toast(self) -> None:
        """Claude Code's passing footer notice after a turn (`tmux focus-events off · …`): shown, then gone."""
        now = time.monotonic()
        if now >= self.toast_at and not self.editor.toast:
            self.editor.toast = TOAST
            self.editor.draw()
            self._toast_said("shown")
        elif now >= self.toast_at + TOAST_SECONDS and self.editor.toast:
            self.editor.toast, self.toast_at = "", math.inf
            self.editor.draw()
            self._toast_said("gone")

    def _toast_said(self, what: str) -> None:
        """--toast-log: a line as the notice comes and goes (a test on a loaded machine may not see 2 s of it)."""
        if self.toast_log is not None:
            with self.toast_log.open("a", encoding="utf-8") as log:
                log.write(what + "\n")

    def interrupted(self) -> None:
        now = time.monotonic()
        if now - self.last_ctrl_c < DOUBLE_CTRL_C:
            raise SystemExit(130)
        self.last_ctrl_c = now
        self.queue.clear()
        self.announced.clear()
        out("\r\x1b[K" + INTERRUPTED + "\n")

    def poll(self, timeout: float) -> Key | None:
        """Wait up to ``timeout`` for a key; also reap children and report an ignored SIGTERM."""
        self.children = [child for child in self.children if child.poll() is None]
        if self.term_pending:
            self.term_pending = False
            shown = self.editor.shown
            self.editor.erase()
            out("\r\x1b[K(ignoring SIGTERM)\n")
            if shown:
                self.editor.draw()
        return self.reader.next_key(timeout)

    def pause(self, seconds: float, busy: bool = False) -> None:
        """Let ``seconds`` pass (sleeping, or burning CPU when busy), handling keys typed meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if busy:
                stop = time.monotonic() + min(left, 0.05)
                while time.monotonic() < stop:
                    pass
            key = self.poll(0 if busy else min(left, 0.5))
            if key is not None:
                self.type_ahead(key)

    def type_ahead(self, key: Key) -> None:
        """A key typed during a turn: Ctrl-C interrupts, Enter queues the input, the rest edits it. Like
        Claude Code, --claude tells UserPromptSubmit when the prompt is queued, not when its turn comes."""
        if key.name == "ctrl-c":
            raise KeyboardInterrupt
        if key.name == "enter" and self.editor.text.strip():
            queued = self.editor.take().strip()
            self.queue.append(queued)
            if self.hooks:
                self.announced.append(queued)
                self.hooks.fire("UserPromptSubmit", prompt=self.editor.expand(queued))
        else:
            self.editor.feed(key)

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self.ignore_term:
            self.term_pending = True
        else:
            raise Terminated


# ---------------------------------------------------------------------------------------- steps


def step_say(agent: Agent, text: Any) -> None:
    out(f"{text}\n")


def step_work(agent: Agent, duration: Any) -> None:
    seconds = parse_duration(duration)
    start = time.monotonic()
    try:
        for frame in range(math.ceil(seconds / 0.5) or 1):
            elapsed = int(time.monotonic() - start)
            out("\r\x1b[K" + look.spin(frame, elapsed, "Working"))
            agent.pause(min(0.5, start + seconds - time.monotonic()))
    finally:
        out("\r\x1b[K")
    out(f"· Worked for {parse_duration(duration):g}s\n")


def step_hang(agent: Agent, duration: Any) -> None:
    """A hung request: the spinner and its elapsed counter keep animating, nothing else happens."""
    seconds = parse_duration(duration)
    start = time.monotonic()
    frame = 0
    try:
        while (left := start + seconds - time.monotonic()) > 0:
            out("\r\x1b[K" + look.spin(frame, int(time.monotonic() - start), "Thinking"))
            agent.pause(min(0.5, left))
            frame += 1
    finally:
        out("\r\x1b[K")


def step_think(agent: Agent, duration: Any) -> None:
    agent.pause(parse_duration(duration), busy=True)


def step_quiet(agent: Agent, duration: Any) -> None:
    agent.pause(parse_duration(duration))


def step_ask(agent: Agent, question: Any) -> None:
    tool_input = {"command": str(question), "description": "asked by the demo agent"}
    if agent.hooks:
        allowed, message = permission_decision(agent.hooks.tool("PermissionRequest", "Bash", tool_input))
        if allowed is not None:
            out(f"{question}\n" + ("approved (by hook)\n" if allowed else f"denied (by hook): {message}\n"))
            if not allowed:
                raise EndTurn
            return
    out(f"{question}\n" + "\n".join(look.options) + "\n")
    notify_at = time.monotonic() + agent.notify_delay if agent.hooks else math.inf
    answers = {**dict(look.answers), "yes": True, "no": False}
    typed = ""
    picked = ""
    answer: bool | None = None
    try:
        while answer is None:
            key = agent.poll(0.1 if notify_at < math.inf else 0.5)
            if agent.hooks and time.monotonic() >= notify_at:
                notify_at = math.inf
                agent.hooks.fire("Notification", "permission_prompt", notification_type="permission_prompt",
                                 message="Claude needs your permission to use Bash")
            if key is None:
                continue
            if key.name == "ctrl-c":
                raise KeyboardInterrupt
            if key.name == "esc":
                answer = False
            elif key.name == "text" and not typed and key.text.lower() in dict(look.answers):
                picked = key.text.lower()
                answer = answers[picked]  # a single key press answers at once
            elif key.name in ("text", "paste"):
                typed += key.text
            elif key.name == "backspace":
                typed = typed[:-1]
            elif key.name == "enter":
                answer, typed = answers.get(typed.strip().lower()), ""
    finally:
        out(f"\x1b[{len(look.options)}A\r\x1b[J")  # the options go, answered or interrupted
    standing = answer and look is GEMINI_LOOK and picked == "2"
    out(("approved for this session\n" if standing else "approved\n") if answer else "denied\n")
    if not answer:
        raise EndTurn(hook=None)  # a No in its own dialog: the real CLI sends no hook at all


def step_box(agent: Agent, duration: Any) -> None:
    """Gemini CLI draws its input box a moment before its trust dialog: keys typed then land in the dialog."""
    end = time.monotonic() + parse_duration(duration)
    agent.editor.draw()
    while (left := end - time.monotonic()) > 0:
        key = agent.poll(min(left, 0.05))
        if key is not None and key.name == "enter":
            agent.held.append(key)
        elif key is not None:
            agent.editor.feed(key)
    agent.editor.erase()
    agent.editor.take()


def step_trust(agent: Agent, question: Any) -> None:
    options = [f"{look.selected} 1. Trust folder", "  2. Don't trust"]
    footer = [] if look is GEMINI_LOOK else ["Esc to cancel"]
    out(f"{question}\n\n" + "\n".join([*options, *footer]) + "\n")
    trusted: bool | None = None
    while trusted is None:
        key = agent.held.pop(0) if agent.held else agent.poll(0.5)
        if key is None or key.name == "paste":
            continue
        if key.name == "ctrl-c":
            raise KeyboardInterrupt
        if key.name == "enter" or (key.name == "text" and key.text == "1"):
            trusted = True
        elif key.name == "esc" or (key.name == "text" and key.text == "2"):
            trusted = False
    out(f"\x1b[{len(options) + len(footer) + 1}A\r\x1b[J" + ("trusted\n" if trusted else "not trusted\n"))


def step_write(agent: Agent, spec: Any) -> None:
    path = Path(spec["path"])
    if agent.hooks:
        agent.hooks.tool("PreToolUse", "Write", {"file_path": str(path.absolute())})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(spec.get("content", "")), encoding="utf-8")
    out(f"wrote {path}\n")


def step_commit(agent: Agent, message: Any) -> None:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)

    try:
        result = git("add", "-A")
        if result.returncode == 0:
            result = git("commit", "-q", "-m", str(message))
    except OSError as error:
        out(f"commit failed: {error}\n")
        return
    if result.returncode != 0:
        out(result.stdout + result.stderr + f"commit failed (exit {result.returncode})\n")
    else:
        out(f"committed {git('rev-parse', '--short', 'HEAD').stdout.strip()} {message}\n")


def step_run(agent: Agent, command: Any) -> None:
    if agent.hooks:
        answer = agent.hooks.tool("PreToolUse", "Bash", {"command": str(command)})
        decision = (answer.get("hookSpecificOutput") or {}).get("permissionDecision")
        if decision == "deny":
            out(f"denied by PreToolUse hook: {command}\n")
            raise EndTurn
        if decision == "ask":  # like the real CLI: ask for permission first (hooks, then its dialog)
            step_ask(agent, f"Bash({command})")
        try:
            _run(agent, command)
        finally:
            agent.hooks.tool("PostToolUse", "Bash", {"command": str(command)}, tool_response={})
        return
    _run(agent, command)


def _run(agent: Agent, command: Any) -> None:
    out(f"$ {command}\n")
    proc = subprocess.Popen(str(command), shell=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    fd, ends_line = proc.stdout.fileno(), True
    os.set_blocking(fd, False)
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                agent.pause(0.05)
                continue
            if not chunk:
                break
            out(chunk.decode("utf-8", "replace"))
            ends_line = chunk.endswith(b"\n")
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    out(("" if ends_line else "\n") + (f"(exit {code})\n" if code else ""))


def step_spawn(agent: Agent, command: Any) -> None:
    child = subprocess.Popen(str(command), shell=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent.children.append(child)
    out(f"spawned pid {child.pid}\n")


def step_spawn_detached(agent: Agent, command: Any) -> None:
    # sh (in a new session) starts the command in the background and exits at once: the command is
    # orphaned (re-parented to init or a subreaper) in its own session, with our environment.
    launcher = '/bin/sh -c "$1" </dev/null >/dev/null 2>&1 & echo $!'
    result = subprocess.run(["/bin/sh", "-c", launcher, "sh", str(command)], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, start_new_session=True)
    out(f"spawned detached pid {result.stdout.strip()}\n")


def step_exit(agent: Agent, code: Any) -> None:
    raise SystemExit(int(code))


def step_api_error(agent: Agent, text: Any) -> None:
    out(f"API Error: {text}\n")
    raise EndTurn("StopFailure", error="unknown", last_assistant_message=f"API Error: {text}")


def step_limit(agent: Agent, duration: Any) -> None:
    """A usage limit ends the turn (`duration`: it resets that long from now; None: the one in force, again)."""
    if duration is not None:
        agent.limited_until = time.time() + parse_duration(duration)
    name = next(key for key, value in LOOKS.items() if value is look)
    message = limit_message(name, agent.limited_until)
    out(message + "\n")
    raise EndTurn("StopFailure", error="rate_limit", last_assistant_message=message.strip(" ⎿\u00a0"))


def step_reply(agent: Agent, spec: Any) -> None:
    if agent.hooks and agent.hooks.transcript:
        agent.hooks.transcript.reply(agent.hooks.session_id, dict(spec or {}))


def step_echo_env(agent: Agent, name: Any) -> None:
    out(f"{name}={os.environ.get(str(name), '')}\n")


STEPS: dict[str, Callable[[Agent, Any], None]] = {
    "say": step_say, "work": step_work, "hang": step_hang, "think": step_think, "quiet": step_quiet,
    "ask": step_ask, "box": step_box, "trust": step_trust,
    "write": step_write, "commit": step_commit, "run": step_run, "spawn": step_spawn,
    "spawn_detached": step_spawn_detached, "exit": step_exit, "echo_env": step_echo_env,
    "api_error": step_api_error, "limit": step_limit, "reply": step_reply,
}

# ------------------------------------------------------------------------------------ scripts

# Built-in scenarios. `$agent` stands for the name of the working directory (the agent's worktree).
SCENARIOS: dict[str, str] = {
    "gentle": """
turns:
  - [say: "Reading the task…", work: 2s, say: "The task is done."]
  - [work: 1s, say: "Had another look; nothing else to change."]
""",
    "worker": """
turns:
  - [say: "Planning the change…", work: 2s, think: 1s, say: "Editing files…", work: 2s,
     say: "All tests pass."]
  - [say: "Following up…", work: 3s, say: "Done with the follow-up."]
""",
    "asker": """
turns:
  - [say: "The build directory is stale.", work: 1s, ask: "Do you want to run `rm -rf build/`?",
     run: "echo removed build/", work: 1s, say: "Cleaned up."]
""",
    "staller": """
turns:
  - [say: "Starting on it…", work: 2s, say: "Waiting for the test database…", quiet: 24h]
""",
    "crasher": """
turns:
  - [say: "Starting on it…", work: 1s, say: "Error: unexpected response from the model API",
     exit: 3]
""",
    "committer": """
turns:
  - [say: "Writing notes…", work: 2s,
     write: {path: notes/$agent.md, content: "Notes written by the demo agent $agent.\\n"},
     commit: "Add notes from $agent", say: "Committed my notes."]
""",
    "boundary": """
turns:
  - [say: "Fixing something outside my area…", work: 1s,
     write: {path: outside/boundary-violation.txt, content: "This file is outside the boundary.\\n"},
     commit: "Touch a file outside the boundary",
     run: "git diff --cached --quiet || git commit -q --no-verify -m 'Touch a file outside the boundary'",
     say: "Committed outside my boundary."]
""",
}
DEFAULT_SCENARIO = "gentle"


def parse_script(text: str, origin: str) -> Script:
    """Parse and check a YAML script; ScriptError says what is wrong."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScriptError(f"{origin}: {error}") from None
    if not isinstance(data, dict) or set(data) - {"start", "turns"}:
        raise ScriptError(f"{origin}: expected a mapping with the keys `start` and `turns`")

    def steps(value: object, where: str) -> list[Step]:
        if not isinstance(value, list):
            raise ScriptError(f"{origin}: {where}: expected a list of steps")
        result: list[Step] = []
        for i, step in enumerate(value, 1):
            if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in STEPS:
                raise ScriptError(f"{origin}: {where}, step {i}: expected one of {', '.join(STEPS)}: …")
            kind, arg = next(iter(step.items()))
            if kind in ("work", "think", "quiet", "box", "limit"):
                parse_duration(arg)
            elif kind == "write" and not (isinstance(arg, dict) and "path" in arg):
                raise ScriptError(f"{origin}: {where}, step {i}: write needs {{path: …, content: …}}")
            elif kind == "exit" and not isinstance(arg, int):
                raise ScriptError(f"{origin}: {where}, step {i}: exit needs an integer")
            result.append((kind, arg))
        return result

    turns = data.get("turns") or []
    if not isinstance(turns, list):
        raise ScriptError(f"{origin}: turns: expected a list of turns")
    return Script(start=steps(data.get("start") or [], "start"),
                  turns=[steps(turn, f"turn {n}") for n, turn in enumerate(turns, 1)])


def builtin_script(name: str) -> Script:
    text = string.Template(SCENARIOS[name]).safe_substitute(agent=Path.cwd().name)
    return parse_script(text, f"scenario {name}")


# ------------------------------------------------------------------------------------- terminal


@contextlib.contextmanager
def terminal_mode(fd: int) -> Iterator[None]:
    """Raw input (no echo, no line editing, Ctrl-C as a byte), output processing kept; bracketed paste.

    Both are undone on the way out, whatever the reason (exceptions, SystemExit, SIGTERM).
    """
    saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    if saved is not None:
        mode = termios.tcgetattr(fd)
        mode[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON)
        mode[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)
    out("\x1b[?2004h")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            out("\x1b[?2004l")
            if saved is not None:
                termios.tcsetattr(fd, termios.TCSAFLUSH, saved)  # unread input is dropped too


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supervisor.demo.agent",
                                     description="A scripted fake AI coding CLI (the demo agent).")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--script", type=Path, metavar="FILE", help="YAML script of turns")
    source.add_argument("--scenario", choices=sorted(SCENARIOS), help="a built-in script")
    parser.add_argument("--record", type=Path, metavar="FILE", help="append each submitted prompt as JSON")
    parser.add_argument("--claude", action="store_true",
                        help="behave like Claude Code: call the hooks of its settings files with its JSON")
    parser.add_argument("--look", choices=sorted(LOOKS), default="demo",
                        help="screen texts: the demo agent's own, or Claude Code's or Gemini CLI's markers")
    parser.add_argument("--notify-delay", default="1s", metavar="DURATION",
                        help="with --claude: time from a dialog to its Notification hook (real CLI: ~8 s)")
    parser.add_argument("--resume", metavar="SESSION_ID",
                        help="with --claude: resume this conversation (shows `resumed conversation ID` and its "
                             "prompts, goes on with the script's next turn; its hooks carry this id; SessionStart "
                             "source resume)")
    parser.add_argument("--continue", dest="continue_", action="store_true",
                        help="with --claude: resume this folder's newest conversation (SessionStart source resume)")
    parser.add_argument("--model", help="with --claude: the model its transcript names (default claude-sonnet-4-5)")
    parser.add_argument("--toast-after", metavar="DURATION",
                        help="show Claude Code's passing footer notice this long after each turn, for 2 s")
    parser.add_argument("--toast-log", type=Path, metavar="FILE",
                        help="append `shown` and `gone` to FILE as the notice comes and goes")
    parser.add_argument("--ignore-term", action="store_true", help="ignore SIGTERM (needs SIGKILL)")
    parser.add_argument("--start-delay", default="0", metavar="DURATION", help="sleep before the prompt")
    parser.add_argument("--drop-early-input", action="store_true",
                        help="discard input typed before the prompt first shows")
    args = parser.parse_args(argv)
    try:
        if args.script:
            script = parse_script(args.script.read_text(encoding="utf-8"), str(args.script))
        else:
            script = builtin_script(args.scenario or DEFAULT_SCENARIO)
        delay = parse_duration(args.start_delay)
        notify_delay = parse_duration(args.notify_delay)
        toast_after = parse_duration(args.toast_after) if args.toast_after else None
    except (OSError, ScriptError) as error:
        print(f"demo-agent: error: {error}", file=sys.stderr)
        return 2

    agent = Agent(script, record=args.record, ignore_term=args.ignore_term, start_delay=delay,
                  drop_early_input=args.drop_early_input, fd=sys.stdin.fileno(), notify_delay=notify_delay,
                  toast_after=toast_after, toast_log=args.toast_log)
    if args.claude:
        agent.hooks = ClaudeHooks.load(Path.cwd(), Path.home())
        if args.resume or args.continue_:  # as Claude Code: its own conversation by id, or this folder's newest
            session = args.resume or agent.hooks.newest()
            agent.resumed = agent.hooks.recall(session) if session else None
            if session is None or agent.resumed is None:
                print(f"No conversation found with session ID: {session}" if session else
                      "No conversation found to continue", file=sys.stderr)
                return 1
            agent.hooks.session_id = session
        if args.model and agent.hooks.transcript:
            agent.hooks.transcript.model = args.model
        agent.start_source = "resume" if args.resume or args.continue_ else "startup"
    global look
    look = LOOKS[args.look]
    signal.signal(signal.SIGTERM, agent.on_sigterm)
    signal.signal(signal.SIGHUP, lambda signum, frame: sys.exit(128 + signum))
    try:
        with terminal_mode(agent.fd):
            code = agent.run()
    except Terminated:
        out("bye\n")
        code = 143
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except KeyboardInterrupt:  # SIGINT from outside while starting up
        code = 130
    if agent.hooks:
        agent.hooks.fire("SessionEnd", "other", reason="prompt_input_exit" if code == 0 else "other")
    return code


if __name__ == "__main__":
    sys.exit(main())
