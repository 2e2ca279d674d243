"""Starting the engine apart from the terminal that asks for it and from the tmux server it watches.

The engine must outlive what it watches: run in a pane of its own tmux server, it went with that server, and
nobody heard of the agents that went too until a later command started another engine. So any command that
needs it (the CLI, the dashboard) starts it the same way: `supervisor engine --foreground --detached`, in a
session of its own (no controlling terminal: a closing terminal's SIGHUP never reaches it), stdin from
/dev/null, stdout and stderr appended to `engine.out` (what it prints outside its log, such as a crash before
logging starts). It then forks once more and the first process exits, so the engine is nobody's child: not the
dashboard's, not a tmux pane's.

Its environment is the starting command's, less what only means something in that command's terminal
(`TERMINAL_ONLY`): a tmux server the engine starts later hands its panes its own environment, and a variable
naming a terminal window or another tmux pane would be stale there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping

from supervisor.paths import RepoPaths

OUTPUT_KEPT = 1024 * 1024  # bytes of engine.out kept: past it, it moves to engine.out.1 at the next start

# Variables that describe the terminal (or tmux pane) a command runs in, not the user's environment.
TERMINAL_ONLY = frozenset({
    "TERM", "COLORTERM", "COLUMNS", "LINES", "TMUX", "TMUX_PANE", "STY", "WINDOW", "WINDOWID", "SSH_TTY",
    "GPG_TTY", "VTE_VERSION", "TERMINAL_EMULATOR", "LC_TERMINAL", "LC_TERMINAL_VERSION", "TILIX_ID",
})
TERMINAL_PREFIXES = ("TERM_", "KITTY_", "ITERM_", "WEZTERM_", "ALACRITTY_", "KONSOLE_", "GNOME_TERMINAL_",
                     "VSCODE_")


def engine_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without the variables that belong to the terminal it was read in."""
    return {key: value for key, value in environ.items()
            if key not in TERMINAL_ONLY and not key.startswith(TERMINAL_PREFIXES)}


def engine_argv() -> list[str]:
    return [sys.executable, "-m", "supervisor", "engine", "--foreground", "--detached"]


def launch(paths: RepoPaths) -> None:
    """Start an engine for the repository, apart from this process; returns once it is on its own (the engine
    may still be starting: the caller waits for its socket)."""
    output = paths.engine_output
    with contextlib.suppress(OSError):
        if output.stat().st_size > OUTPUT_KEPT:
            output.replace(output.with_name(output.name + ".1"))
    with open(output, "ab") as out:
        os.chmod(output, 0o600)
        starter = subprocess.Popen(engine_argv(), cwd=paths.root, env=engine_environment(os.environ),
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True,
                                   start_new_session=True)
    starter.wait()  # it forks the engine and exits at once


def detach() -> None:
    """In the engine's own process, first thing: fork, and let the parent (the process its starter waits for)
    exit, so the engine carries on reparented, a process of its session that is not its leader (it can never
    gain a controlling terminal). A SIGHUP sent to it anyway is caught and does nothing (a handler, not
    SIG_IGN: what it runs later starts with the default again)."""
    if os.fork() > 0:
        os._exit(0)
    signal.signal(signal.SIGHUP, lambda *_: None)
