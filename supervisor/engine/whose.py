"""Whether this process is one of an agent's: an agent never starts the engine.

An engine started from an agent's pane would live in the agent's process tree and cgroup (the human's `stop` of
that agent would end it too), or in its sandbox (where the store is out of sight). So `engine start`, `ui`,
`engine --foreground` and every command that would start an engine refuse to when this process carries an
agent's variables, descends from a process that was started with them (an agent's pane), or runs in an agent's
cgroup. The engine itself checks its own lineage against its agents' pane processes as it starts.
"""

from __future__ import annotations

import contextlib
import os
import re

from supervisor.errors import SupervisorError
from supervisor.hostside.lineage import lineage
from supervisor.paths import RepoPaths

AGENT_VARIABLES = ("SUPERVISOR_AGENT", "SUPERVISOR_SOCKET")
_AGENT_CGROUP = re.compile(r"/supervisor\.[0-9a-f]{10}/[^/]+")  # confinement.repository_cgroup / the agent


def agent_around(pid: int | None = None) -> str | None:
    """Why process `pid` (this one) is an agent's, or None."""
    if pid is None:
        pid = os.getpid()
        for key in AGENT_VARIABLES:
            if os.environ.get(key):
                return f"it runs with {key} set (an agent's environment)"
    for ancestor in lineage(pid):
        told = _agent_of(ancestor)
        if told is not None:
            return f"it runs inside agent {told}'s process tree (pid {ancestor})"
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("0::") and _AGENT_CGROUP.search(line[3:].strip()):
                return f"it runs in an agent's cgroup ({line[3:].strip()})"
    return None


def _agent_of(pid: int) -> str | None:
    """The agent a process was started as (SUPERVISOR_AGENT in the environment it began with), if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read(1024 * 1024)
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(b"SUPERVISOR_AGENT=") and len(entry) > len(b"SUPERVISOR_AGENT="):
            return entry.split(b"=", 1)[1].decode(errors="replace")
    return None


INSIDE_A_SANDBOX = "the engine cannot be reached from inside an agent's sandbox"


def refuse_inside_an_agent(paths: RepoPaths | None = None, pid: int | None = None) -> None:
    """SupervisorError when this process (or `pid`) is an agent's: it must not start the engine."""
    if paths is not None and paths.sandbox_mark.exists():
        raise SupervisorError(f"{INSIDE_A_SANDBOX}, and an agent does not start it",
                              hint="an agent reaches it only through its own socket (SUPERVISOR_SOCKET); it "
                                   "starts with the next supervisor command run outside the agents")
    why = agent_around(pid)
    if why is not None:
        raise SupervisorError(f"the engine is not running, and an agent does not start it: {why}",
                              hint="it starts with the next supervisor command run outside the agents (hook "
                                   "events wait in the agent's spool until then)")
