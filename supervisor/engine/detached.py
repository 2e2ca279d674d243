"""Starting the engine apart from the terminal that asks for it and from the tmux server it watches.

The engine must outlive what it watches: run in a pane of its own tmux server, it went with that server, and
nobody heard of the agents that went too until a later command started another engine. So any command that
needs it (the CLI, the dashboard) starts it the same way: `supervisor engine --foreground --detached`, in a
session of its own (no controlling terminal: a closing terminal's SIGHUP never reaches it), stdin from
/dev/null, stdout and stderr appended to `engine.out` (what it prints outside its log, such as a crash before
logging starts). It then forks once more and the first process exits, so the engine is nobody's child: not the
dashboard's, not a tmux pane's.

Its environment is the user's, built from the starting command's (supervisor/engine/environments.py): less
what only means something in that command's terminal, and less any agent's identity, since the command may
run in an agent's pane. A starter that fails before it detaches (a broken installation) is told at once, with
the last line it wrote.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from supervisor.engine.environments import engine_environment
from supervisor.errors import SupervisorError
from supervisor.paths import RepoPaths

OUTPUT_KEPT = 1024 * 1024  # bytes of engine.out kept: past it, it moves to engine.out.1 at the next start

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
        start = out.seek(0, os.SEEK_END)
        starter = subprocess.Popen(engine_argv(), cwd=paths.root,
                                   env=engine_environment(os.environ, paths.state_dir),
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True,
                                   start_new_session=True)
    if starter.wait() != 0:  # it forks the engine and exits 0 at once: it failed before it could
        said = last_line(output, start)
        raise SupervisorError(f"the engine did not start: {said or f'its starter exited {starter.returncode}'}",
                              hint=f"see {output}, or run `supervisor engine --foreground` to see why")


def last_line(path: Path, start: int) -> str | None:
    """The last non-blank line written to `path` past `start`."""
    try:
        with open(path, "rb") as file:
            file.seek(start)
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else None


def detach() -> None:
    """In the engine's own process, first thing: fork, and let the parent (the process its starter waits for)
    exit, so the engine carries on reparented, a process of its session that is not its leader (it can never
    gain a controlling terminal). A SIGHUP sent to it anyway is caught and does nothing (a handler, not
    SIG_IGN: what it runs later starts with the default again)."""
    if os.fork() > 0:
        os._exit(0)
    signal.signal(signal.SIGHUP, lambda *_: None)
