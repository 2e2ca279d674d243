"""The trial run that tells why an agent's sandbox cannot be made, in bubblewrap's own words, before a pane would
only say "exited 1 while starting".

A trial is a bubblewrap start of its own (tens of ms, more on a loaded machine): run before every launch it
doubled the sandbox's cost per start. So it runs before the first sandboxed launch of this bubblewrap on this
kernel (and after any trial that failed), and is kept as passed for the engine's life; a later launch whose
pane ends while starting is tried again then (`fault`), and only then, to say why.
"""

from __future__ import annotations

import os
import subprocess
import threading

from supervisor.hosts import sandbox

TIMEOUT = 30.0

_passed: set[tuple[object, ...]] = set()
_lock = threading.Lock()


def _key(bwrap: str) -> tuple[object, ...] | None:
    """This bubblewrap as a file (replaced or upgraded: tried again) on this kernel; None when it cannot be told."""
    try:
        info = os.stat(bwrap)
    except OSError:
        return None
    return os.path.realpath(bwrap), info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size, os.uname().release


def passed(bwrap: str) -> bool:
    """Whether a trial of this bubblewrap on this kernel passed already in this process."""
    key = _key(bwrap)
    with _lock:
        return key is not None and key in _passed


def forget() -> None:
    """Every trial kept as passed (a launch failed after all: the next one is tried first)."""
    with _lock:
        _passed.clear()


def run(spec: sandbox.Spec, bwrap: str) -> str | None:
    """Run `true` in the sandbox of `spec`: None when it ran (kept as passed), else bubblewrap's last line."""
    try:
        tried = subprocess.run(sandbox.argv(spec, ["true"], bwrap), capture_output=True, text=True, check=False,
                               stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        forget()
        return str(exc)
    if tried.returncode != 0:
        forget()
        return (tried.stderr.strip().splitlines() or [f"exit status {tried.returncode}"])[-1]
    key = _key(bwrap)
    if key is not None:
        with _lock:
            _passed.add(key)
    return None
