"""What differs between agent CLIs: how to launch and resume them, and how to read their state."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from supervisor.agents.dialogs import ALLOW as _ALLOW
from supervisor.agents.dialogs import DENY as _DENY
from supervisor.agents.dialogs import STANDING as _STANDING
from supervisor.agents.reader import LOCAL, Reader
from supervisor.agents.screens import Reading, ScreenRules, Verdict


def hook_command() -> str:
    """What agent-CLI hooks run: this very installation's supervisor, whatever PATH the agent has."""
    return f"{shlex.quote(sys.executable)} -m supervisor hook"


@dataclass(frozen=True)
class Profile:
    name: str
    default_command: str | None
    stagger: float = 0.0  # seconds between launches of this CLI (some corrupt shared config otherwise)
    screen: ScreenRules | None = None  # screen markers; None: activity and CPU only (generic)
    # Processes of the CLI itself (its CPU animates a spinner; only its tools' CPU means work is done).
    cli_processes: frozenset[str] = frozenset()
    hooks: bool = False  # the CLI reports its own state through hooks supervisor injects
    # The variable prepare_state points at the agent's state folder: a process carrying it with that folder
    # is the agent's wherever it runs and whenever it started (a daemon the CLI keeps per folder, like Codex's
    # app-server, which leaves the pane's process tree and outlives the CLI). `stop` and `rm` end it too.
    state_env: str | None = None
    # Every variable prepare_state sets: an agent's, never the user's, wherever an agent's environment is seen
    # (an engine started from an agent's pane leaves them out of its own).
    state_vars: frozenset[str] = frozenset()
    # Seconds the input box must stay unchanged, alone on screen, before a first prompt is typed into it.
    ready_settle: float = 0.0
    # Seconds a paste may take to show. A CLI that reads its input late (Codex at startup) shows the paste
    # late but never loses it: it is pasted once only (`repaste` false), or it would get it twice.
    echo_timeout: float = 3.0
    repaste: bool = True
    # Seconds between a paste and its Enter: an Enter too close to a paste is taken as part of it (a newline).
    paste_settle: float = 0.15
    # The CLI's own notice that it continues by itself once a usage limit resets: "continue" is not typed then.
    resumes_after_limit: re.Pattern[str] | None = None
    # What the CLI keeps in the user's home (paths relative to it) that a sandboxed agent's own HOME must hold
    # too, or the CLI starts there as a first-time user: `home_read` shown read-only (config it only reads: always
    # the user's current one), `home_seed` copied once, when the agent's HOME has nothing there (state the CLI
    # also writes: its caches, its record of what the user has seen). Never what the sandbox masks (credentials).
    home_read: tuple[str, ...] = ()
    home_seed: tuple[str, ...] = ()

    def resume_line(self, command: str, session: str | None, state: Path,
                    reader: Reader = LOCAL) -> str | None:
        """The command that launches the CLI in the agent's own conversation again: `session` is the CLI's id of
        it (as its hooks or its files told), `state` the agent's CLI state folder (on its machine, read through
        `reader`). None when it cannot be resumed
        so (no id known, or a CLI that keeps no conversation): the agent starts afresh and is given its task
        again. Never "the newest conversation in this folder", which may be another's."""
        return None

    def find_session(self, state: Path, worktree: Path, since: float, reader: Reader = LOCAL) -> str | None:
        """The CLI's id of the conversation the agent began at `since` or later, read from the files the CLI
        keeps in the agent's state folder (on its machine, through `reader`); None while none shows (or the CLI
        tells it otherwise: hooks)."""
        return None

    def prepare_worktree(self, repo_root: Path, worktree: Path, home: Path, hook_command: str) -> None:
        """Anything the CLI needs in a new worktree before it is launched (trust, hooks)."""

    def prepare_state(self, state: Path, home: Path, repo_root: Path, worktree: Path,
                      hook_command: str) -> dict[str, str]:
        """Make the CLI's own state folder for one agent (`state`, the agent's alone), seeded from the user's
        (`home`), and return the environment variables that point the CLI at it. `hook_command`: what its hooks
        run (`supervisor hook` as the machine the agent runs on runs it: this one's, or a host's client).

        Each agent keeps its CLI's config, sessions, rules and daemons in a folder of its own, so no agent can
        plant hooks, rules or settings into another agent or into the user's own sessions, and a daemon a CLI
        starts per config folder (Codex's app-server) belongs to one agent. Default: the CLI keeps no state
        that supervisor manages (nothing to set)."""
        return {}

    def ready(self, screen: str) -> bool | None:
        """True when the screen shows the CLI waiting for input; None when this profile cannot tell."""
        verdict = self.read(screen).verdict
        return None if verdict is None else verdict == Verdict.IDLE

    def read(self, screen: str) -> Reading:
        return self.screen.read(screen) if self.screen is not None else Reading(None)

    def answer_taken(self, before: str, after: str) -> bool:
        """Whether the dialog answered on screen `before` went away (`after`: the screen now)."""
        return self.read(after).verdict != Verdict.WAITING

    def answer_keys(self, screen: str, allow: bool, always: bool = False) -> str | tuple[str, ...] | None:
        """The key that picks the dialog's option meaning "yes, this once" (or "no"), found by its label, never
        by its position; Escape to refuse a dialog with no such option. None when no such option can be told.
        A tuple: keys sent one after another (a letter, then Enter).

        An option that grants more than this one call ("Yes, and don't ask again", "Allow for this session",
        "always allow") is never what an approval means: the CLI would write a standing rule. With `always` (the
        human asked for it: `approve --always`) that option is the one picked, and None when there is none."""
        rows = screen.rstrip().splitlines()[-20:]
        options = [(match.group(1), match.group(2).strip().lower()) for row in rows
                   if (match := _OPTION.match(row)) is not None]
        wanted = _ALLOW if allow else _DENY
        for key, label in options:
            if wanted.match(label) and (not allow or bool(_STANDING.search(label)) == always):
                return key
        if always:
            return None
        if not allow and any("esc to cancel" in row.lower() for row in rows):
            return "Escape"
        return None


# A numbered option, as each CLI marks the selected one: Claude `❯`, Codex `›`, Gemini `●` (inside a box).
_OPTION = re.compile(r"^\s*(?:│\s*)*(?:[❯›●]\s*)?(\d+)\.\s+(.+?)\s*│?\s*$")
