"""`host.pyz reap -- ARGV...`: what an agent's pane on a host runs first when no sandbox holds it.

It makes itself the child subreaper of what it starts (prctl PR_SET_CHILD_SUBREAPER): a process of the agent's
that double-forks or calls setsid is re-parented to it, not to init, so it stays in the pane's tree, where a
stop walks. It runs ARGV as its one child, with the environment it was given (the pane's, holding the launch
token `SUPERVISOR_LAUNCH` every process of the launch inherits), reaps whatever is re-parented to it, and when
its child ends, ends what the child left behind (TERM, a short grace, KILL: as a sandbox's end would) and exits
with the child's status, so the pane dies with the agent.

Signals: TERM is passed on to its child (a stop TERMs every process anyway; the reaper stays until it is
KILLed, catching what is orphaned meanwhile); INT, QUIT and HUP reach the child from the terminal as they reach
the reaper, which only ignores them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

from .ending import end_processes

PR_SET_CHILD_SUBREAPER = 36
LEFTOVER_GRACE = 2.0


def make_subreaper() -> str | None:
    """Become the child subreaper of this process's descendants → None, or why not."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            return os.strerror(ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        return str(exc)
    return None


def main(argv: Sequence[str]) -> int:
    words = list(argv[1:] if argv[:1] == ["--"] else argv)
    if not words:
        print("usage: reap -- PROGRAM [ARG...]", file=sys.stderr)
        return 2
    why = make_subreaper()
    if why is not None:
        print(f"supervisor: cannot become the subreaper of this agent's processes ({why}): a process it "
              "detaches may outlive a stop", file=sys.stderr)
    try:
        child = subprocess.Popen(words)
    except OSError as exc:
        print(f"supervisor: cannot run {words[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127

    def pass_on(number: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            child.send_signal(number)

    def ignore(number: int, frame: FrameType | None) -> None:
        return None

    # Python handlers, not SIG_IGN: an exec resets handlers, so what the child runs next gets the defaults.
    signal.signal(signal.SIGTERM, pass_on)
    for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(number, ignore)
    code = _wait_for(child.pid)
    child.returncode = code
    end_processes([os.getpid()], grace=LEFTOVER_GRACE)  # what it left behind (re-parented here)
    _reap_all()
    return code if code >= 0 else 128 - code


def _wait_for(pid: int) -> int:
    """Reap every child (the orphans re-parented here too) until `pid` ends → its exit code (-N: signal N)."""
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if done == pid:
            return os.waitstatus_to_exitcode(status)


def _reap_all() -> None:
    while True:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if done == 0:
            return
