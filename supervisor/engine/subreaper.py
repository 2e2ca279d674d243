"""The first process of an agent's pane: it makes itself a child subreaper, joins the agent's cgroup when it
has one, and execs the agent's command in its place (no process of ours stays).

A child subreaper (prctl PR_SET_CHILD_SUBREAPER, kept across execve) adopts every orphan of its tree: a
command that double-forks, `setsid -f`s or `nohup`s itself away from its parent is re-parented to the agent's
own first process instead of init, so `stop` finds it by walking the pane's tree whatever it did to its
environment or session. Inside a PID namespace (the sandbox) the same holds, and the namespace dies as one.

Run as a script (`python -I -S subreaper.py CGROUP SHELL COMMAND`), it imports nothing of the supervisor
package and no site: a few milliseconds of start-up for each agent launch (README, Security).
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36
NO_CGROUP = "-"


def become_subreaper() -> bool:
    """Mark this process a child subreaper; False where the system has no such thing (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def join_cgroup(folder: str) -> bool:
    """Move this process into the cgroup v2 `folder` (its children follow it); False when it cannot."""
    try:
        with open(os.path.join(folder, "cgroup.procs"), "w", encoding="ascii") as procs:
            procs.write("0\n")
        return True
    except OSError:
        return False


def command_line(command: str, cgroup: str | None = None) -> str:
    """`command` (a shell command line, as tmux runs it) started through this module: a child subreaper, in
    `cgroup` when given. On a system without prctl, `command` as it is."""
    if not sys.platform.startswith("linux"):
        return command
    import shlex  # only the engine needs it; the prefix itself starts without it

    prefix = [sys.executable, "-I", "-S", os.path.abspath(__file__), cgroup or NO_CGROUP, "/bin/sh"]
    return f"exec {shlex.join(prefix)} {shlex.quote(command)}"


def main(argv: list[str]) -> None:
    cgroup, shell, command = argv
    become_subreaper()
    if cgroup != NO_CGROUP:
        join_cgroup(cgroup)
    os.execv(shell, [shell, "-c", command])


if __name__ == "__main__":
    main(sys.argv[1:])
