"""Commands a host runs for an agent beside its pane (its worktree's `worktrees.setup`, a `merge.check`): run to
their end, or cut at a deadline or a stop with their whole process group; the last lines of their output kept.

What crosses the host interface is plain: the command line in, a `Ran` out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL = 0.1
TAIL_BYTES = 256 * 1024  # of output read back for its last lines
TIMED_OUT = "timeout"
STOPPED = "stopped"


@dataclass(frozen=True)
class Ran:
    """How a command ended: its exit status (None: cut short, `cut` says why), its output's last lines (stdout
    and stderr together) and how long it ran."""

    exit_code: int | None
    lines: tuple[str, ...]
    seconds: float
    cut: str | None = None  # TIMED_OUT | STOPPED


def run(argv: Sequence[str], cwd: Path, env: Mapping[str, str], *, timeout: float | None = None,
        stop: threading.Event | None = None, keep: int = 20) -> Ran:
    """Run `argv` in `cwd` with exactly `env`, no terminal and no input, in a process group of its own that is
    killed whole past `timeout` seconds or once `stop` is set."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        code: int | None = None
        cut = None
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = process.wait(POLL if deadline is not None or stop is not None else None)
                break
            if deadline is not None and time.monotonic() >= deadline:
                cut = TIMED_OUT
            elif stop is not None and stop.is_set():
                cut = STOPPED
            else:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            break
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - TAIL_BYTES))
        lines = log.read().decode("utf-8", "replace").splitlines()
    return Ran(code, tuple(lines[-keep:]) if keep else (), round(time.monotonic() - started, 1), cut)
