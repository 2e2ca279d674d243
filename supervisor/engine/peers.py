"""The process at the other end of a control connection, pinned when the connection is accepted.

The kernel says which process connected (SO_PEERCRED: its pid as of `connect`). A pid alone names nobody once
that process has exited: a caller can connect, hand the connection to a child and exit, and the pid then leads
to nothing (or, later, to an unrelated process that got the same number). So the peer is pinned at accept, by
a pidfd of it where the kernel gives one (SO_PEERPIDFD, Linux 6.5) and by its start time from /proc in any case,
and a request is judged only while that same process is still alive (`Peer.alive`). A peer that is not is
refused all but reads (supervisor/engine/callers.py).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
from dataclasses import dataclass, field

_PEERCRED = struct.Struct("3i")
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)  # Linux >= 6.5; Python names it only from 3.14


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket (pid 0: one the kernel cannot name in
    this PID namespace)."""
    pid, uid, gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return pid, uid, gid


def start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22); None when it is gone or
    exited (a zombie)."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # comm may hold spaces and parentheses
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def peer_pidfd(sock: socket.socket) -> int | None:
    """A pidfd of the peer (the caller closes it); None where the kernel has none to give."""
    with contextlib.suppress(OSError):
        fd = sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
        return fd if fd >= 0 else None
    return None


@dataclass(frozen=True)
class Peer:
    """Who sent a request: the process (`pid`, from the kernel) and the agent whose socket it came through
    (None: the human's socket). `start` and `pidfd` pin that process as it was at accept."""

    pid: int
    agent: str | None
    start: int | None = field(default=None, compare=False)
    pidfd: int | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, sock: socket.socket, pid: int, agent: str | None) -> Peer:
        """The peer of an accepted connection, pinned now."""
        pidfd = peer_pidfd(sock) if pid > 0 else None
        return cls(pid, agent, start_time(pid), pidfd)

    def alive(self) -> bool:
        """Whether the process that connected still runs, and is the same one (not a new process that got
        its pid)."""
        if self.pid <= 0 or self.start is None:
            return False
        if self.pidfd is not None:
            with contextlib.suppress(OSError, ValueError):
                poller = select.poll()
                poller.register(self.pidfd, select.POLLIN)
                if poller.poll(0):  # a pidfd turns readable once its process has exited
                    return False
        return start_time(self.pid) == self.start

    def close(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
