"""Whether a tmux server instance still runs, when its socket does not answer.

A server instance is named `#{pid}:#{start_time}`. When no server answers at the socket, its agents' panes may
have gone with it, or the socket file alone may be gone (a cleaner of /tmp removed it) while the server and
every agent in it run on. Only the first ends agents: the server is gone when its process is, or when that pid
is now a process that is not listening on this socket (a pid reused). A server still listening on the socket's
path, whether or not the path still exists, still runs.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil


def still_runs(server: str, socket: Path) -> bool:
    """Whether the server instance `server` still runs and listens on `socket`."""
    pid_text, _, _started = server.partition(":")
    if not pid_text.isdigit():
        return False
    try:
        process = psutil.Process(int(pid_text))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        listening = process.net_connections(kind="unix")
    except psutil.Error:
        return False
    wanted = {str(socket)}
    with contextlib.suppress(OSError):
        wanted.add(str(socket.resolve()))
    return any(str(connection.laddr) in wanted for connection in listening)
