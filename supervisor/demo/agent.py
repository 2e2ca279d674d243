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

Built-in scenarios (``--scenario NAME``, in supervisor/demo/script.py): ``gentle`` (the default), ``worker``,
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
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from supervisor import __version__
from supervisor.demo import looks
from supervisor.demo.claude_hooks import ClaudeHooks
from supervisor.demo.durations import ScriptError, parse_duration
from supervisor.demo.editor import LineEditor
from supervisor.demo.script import DEFAULT_SCENARIO, SCENARIOS, Script, Step, builtin_script, parse_script
from supervisor.demo.steps import STEPS, EndTurn
from supervisor.demo.terminal import Key, KeyReader, out, terminal_mode

INTERRUPTED = "(interrupted)"
TOAST = "tmux focus-events off · add 'set -g focus-events on' to ~/.tmux.conf and reattach for focus tracking"
TOAST_SECONDS = 2.0
NOTHING_LEFT = "(nothing more to do)"
DOUBLE_CTRL_C = 1.0


class Terminated(BaseException):
    """SIGTERM arrived: restore the terminal, print ``bye``, exit 143."""



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
            out("".join(looks.look.prompt + prompt.split("\n")[0] + "\n" for prompt in self.resumed))
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
            out("\n".join([looks.look.prompt + first, *("  " + line for line in rest)]) + "\n")
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
            out(looks.look.done.format(s=int(time.monotonic() - self.turn_started)) + "\n")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supervisor.demo.agent",
                                     description="A scripted fake AI coding CLI (the demo agent).")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--script", type=Path, metavar="FILE", help="YAML script of turns")
    source.add_argument("--scenario", choices=sorted(SCENARIOS), help="a built-in script")
    parser.add_argument("--record", type=Path, metavar="FILE", help="append each submitted prompt as JSON")
    parser.add_argument("--claude", action="store_true",
                        help="behave like Claude Code: call the hooks of its settings files with its JSON")
    parser.add_argument("--look", choices=sorted(looks.LOOKS), default="demo",
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
    looks.look = looks.LOOKS[args.look]
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
