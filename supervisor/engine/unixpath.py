"""Unix socket paths longer than the kernel takes (about 107 bytes).

An agent's socket lies in its own runtime folder, named after the agent (up to 98 characters for a helper's
full name), so its path can pass the limit. On Linux such a path is reached through an open handle on its
folder (`/proc/self/fd/N/engine.sock`), for binding and connecting alike; elsewhere it is refused clearly.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from supervisor.errors import SupervisorError

MAX_PATH = 107  # sun_path holds 108 bytes, with its final NUL


def reach(sock: socket.socket, path: Path | str, how: Callable[[socket.socket, str], None]) -> None:
    """`how(sock, address)` (bind or connect) with `path`, through its folder's handle when it is too long."""
    text = str(path)
    if len(os.fsencode(text)) <= MAX_PATH:
        how(sock, text)
        return
    if not Path("/proc/self/fd").is_dir():
        raise SupervisorError(f"the socket path {text} is too long for this system",
                              hint="set SUPERVISOR_RUNTIME_DIR to a shorter directory")
    folder = os.open(os.path.dirname(text) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        how(sock, f"/proc/self/fd/{folder}/{os.path.basename(text)}")
    finally:
        os.close(folder)


def bind(sock: socket.socket, path: Path | str) -> None:
    reach(sock, path, socket.socket.bind)


def connect(sock: socket.socket, path: Path | str) -> None:
    reach(sock, path, socket.socket.connect)
