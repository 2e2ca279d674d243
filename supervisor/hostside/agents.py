"""Each agent's own socket on the host (`agent_listen`), relayed home: the engine's side of an agent's CLI hooks
and `supervisor` commands there.

A connection carries one request line, as to the engine's own sockets (supervisor/engine/protocol.py). It is
pushed home as `{"event": "agent_request", "agent": NAME, "conn": ID, "request": {...}}`, and the engine's reply
comes back by `agent_answer` (conn, answer), which writes it to that connection and closes it. The agent is
the one whose socket the connection came through (the engine is told which, never by the request): the socket
is its folder's (0700) and its own (0600), and only this user may connect; of this user's processes, only those
of the agent's own pane (lineage.py: every agent runs as this user when no sandbox holds it).

While this program does not run (the link is down, so it ended with its input), the sockets answer no one:
the host client (`client.py`) then spools hook events into the agent's spool folder, which the engine reads
through `agent_spooled` and `remove` once the link is back.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from . import lineage, procs
from .calls import Call, OpError
from .regular import read_regular

AGENT_LINE = 2 * 1024 * 1024  # a request through an agent's socket, as the engine's own take it
AGENT_CONNECTIONS = 32  # open at once through one agent's socket (held approvals, parallel hooks)
READ_DEADLINE = 30.0  # seconds for a whole request to arrive
SPOOL_FILE = 4 * 1024 * 1024  # a spooled event file at most (an event is cut to 1 MiB by the client)
_PEERCRED = struct.Struct("3i")


class _Listener:
    def __init__(self, agent: str, path: str, sock: socket.socket, inode: tuple[int, int]) -> None:
        self.agent = agent
        self.path = path
        self.sock = sock
        self.inode = inode
        self.active = 0
        self.closed = False


class AgentSockets:
    def __init__(self, push: Callable[..., None]) -> None:
        self._push = push
        self._lock = threading.Lock()
        self._listeners: dict[str, _Listener] = {}  # by agent
        self._waiting: dict[int, tuple[socket.socket, _Listener]] = {}  # conn id → its connection, unanswered
        self._ids = itertools.count(1)
        self.ties = lineage.Ties(procs.keyed_pids)

    # ops ----------------------------------------------------------------------------------------------

    def listen(self, call: Call) -> dict[str, Any]:
        """Listen on `path` for agent `agent` (its folder made 0700, the socket 0600), bound anew each time: a
        new launch (or a new agent of the same name) never inherits a socket an earlier one could have kept.
        `pane`: its pane's process (a pid), LAUNCHING (named by `agent_tie` once the launch gave it:
        connections wait for it), or null (unknown: not checked)."""
        agent = call.arg("agent", str)
        pane = call.arg("pane", (int, str), None)
        if isinstance(pane, bool) or (isinstance(pane, str) and pane != lineage.LAUNCHING):
            raise OpError(f"argument 'pane' is a pid, {lineage.LAUNCHING!r} or null, not {pane!r}")
        self.ties.tie(agent, lineage.UNTIED if pane == lineage.LAUNCHING else pane)
        path = os.path.expanduser(call.arg("path", str))
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        with self._lock:
            current = self._listeners.get(agent)
            if current is not None:
                self._drop(current)
            sock, inode = _bind_private(path)
            sock.listen(socket.SOMAXCONN)
            listener = _Listener(agent, path, sock, inode)
            self._listeners[agent] = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name=f"agent-{agent}").start()
        return {"path": path, "listening": True}

    def tie(self, call: Call) -> dict[str, bool]:
        """Agent `agent`'s pane process is `pid` (its launch gave it): its socket answers that process's tree."""
        self.ties.tie(call.arg("agent", str), call.arg("pid", int))
        return {"tied": True}

    def close(self, call: Call) -> dict[str, bool]:
        """Stop listening for agent `agent` and remove its socket."""
        agent = call.arg("agent", str)
        self.ties.forget(agent)
        with self._lock:
            listener = self._listeners.get(agent)
            if listener is None:
                return {"closed": False}
            self._drop(listener)
        return {"closed": True}

    def answer(self, call: Call) -> dict[str, bool]:
        """Write `answer` (the engine's reply) to connection `conn` and close it → whether it was still open."""
        number = call.arg("conn", int)
        reply = call.arg("answer", dict)
        with self._lock:
            entry = self._waiting.pop(number, None)
        if entry is None:
            return {"delivered": False}
        conn, listener = entry
        delivered = True
        try:
            conn.sendall(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        except OSError:
            delivered = False  # it gave up waiting (a hook after its wait): it spooled the event itself
        finally:
            conn.close()
            self._done(listener)
        return {"delivered": delivered}

    def close_all(self) -> None:
        """This program ends: every socket removed, every connection waiting for an answer closed unanswered
        (its client spools a hook event)."""
        with self._lock:
            for listener in list(self._listeners.values()):
                self._drop(listener)
            waiting, self._waiting = list(self._waiting.values()), {}
        for conn, _ in waiting:
            with contextlib.suppress(OSError):
                conn.close()

    # serving ------------------------------------------------------------------------------------------

    def _drop(self, listener: _Listener) -> None:
        listener.closed = True
        self._listeners.pop(listener.agent, None)
        with contextlib.suppress(OSError):
            listener.sock.shutdown(socket.SHUT_RDWR)
        listener.sock.close()
        if _inode(listener.path) == listener.inode:  # only its own socket, never what replaced it
            with contextlib.suppress(OSError):
                os.unlink(listener.path)

    def _done(self, listener: _Listener) -> None:
        with self._lock:
            listener.active -= 1

    def _accept(self, listener: _Listener) -> None:
        while not listener.closed:
            try:
                conn, _ = listener.sock.accept()
            except InterruptedError:
                continue
            except OSError:
                if listener.closed:
                    return
                time.sleep(0.1)  # out of descriptors: the connection waits in the backlog a moment
                continue
            with self._lock:
                full = listener.active >= AGENT_CONNECTIONS
                if not full:
                    listener.active += 1
            if full:
                _refuse(conn, f"refused: agent {listener.agent} has {AGENT_CONNECTIONS} requests open already")
                continue
            threading.Thread(target=self._request, args=(conn, listener), daemon=True, name="agent-request").start()

    def _request(self, conn: socket.socket, listener: _Listener) -> None:
        """Read the connection's request and push it home (its answer comes by `answer`). Whatever goes wrong
        here (a request nested past what the parser takes included) is said to the client, and the connection
        no longer counts as open."""
        number: int | None = None
        try:
            pid, uid, _ = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
            if uid != os.getuid():
                raise _Refused("permission denied")
            refused = self.ties.refusal(listener.agent, pid)  # judged at once: the process that connected
            request = _read_request(conn)
            if refused is not None:  # heard and refused: a hook's client keeps nothing of it
                _refuse(conn, refused, unheard=False)
                self._done(listener)
                return
            number = next(self._ids)
            with self._lock:
                self._waiting[number] = (conn, listener)
            self._push("agent_request", agent=listener.agent, conn=number, pid=pid, request=request)
        except Exception as exc:
            if number is not None:
                with self._lock:
                    if self._waiting.pop(number, None) is None:
                        return  # answered meanwhile: `answer` closed it and counted it done
            said = str(exc) if isinstance(exc, _Refused) else f"bad request: {type(exc).__name__}: {exc}"[:300]
            _refuse(conn, said)
            self._done(listener)


class _Refused(Exception):
    pass


def _read_request(conn: socket.socket) -> dict[str, Any]:
    deadline = time.monotonic() + READ_DEADLINE
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Refused(f"bad request: it did not arrive within {READ_DEADLINE:.0f} s")
        conn.settimeout(left)
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            raise _Refused(f"bad request: it did not arrive within {READ_DEADLINE:.0f} s") from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > AGENT_LINE:
            raise _Refused(f"bad request: the request is larger than the engine takes (at most "
                           f"{AGENT_LINE // (1024 * 1024)} MiB)")
        if chunk.endswith(b"\n"):
            break
    conn.settimeout(None)
    data = b"".join(chunks)
    if not data.strip():
        raise ValueError("connection closed without a message")
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("malformed message: not an object")
    return message


def _refuse(conn: socket.socket, error: str, *, unheard: bool = True) -> None:
    """Refused here, never seen by the engine (`unheard`: a hook's client spools its event; not for a caller
    that is not the agent's)."""
    with contextlib.suppress(OSError):
        conn.settimeout(1.0)
        conn.sendall(json.dumps({"ok": False, "error": error, "hint": None, "exit_code": 1,
                                 "unheard": unheard}).encode() + b"\n")
    conn.close()


def _inode(path: str) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None


def _bind_private(path: str) -> tuple[socket.socket, tuple[int, int]]:
    """A socket bound at `path`, 0600 from the moment it is reachable there: bound in a folder of its own (0700)
    and moved into place, replacing a stale socket (what else is there is refused: never followed)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISSOCK(info.st_mode) and not stat.S_ISLNK(info.st_mode):
        raise OpError(f"{path} is there and is no socket: it is left alone")
    folder = tempfile.mkdtemp(prefix=".bind-", dir=os.path.dirname(path))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        made = os.path.join(folder, "s")
        sock.bind(made)
        os.chmod(made, 0o600)
        os.rename(made, path)
        inode = _inode(path)
        if inode is None:
            raise OpError(f"{path} was replaced while binding it")
        return sock, inode
    except BaseException:
        sock.close()
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# the spool --------------------------------------------------------------------------------------------------


def spooled(call: Call) -> list[dict[str, Any]]:
    """The hook events spooled in folder `dir`, oldest name first: `name`, `item` (as the client spooled it:
    event, at, key), `mtime`. What is no event there (not a regular file, too large, not a JSON object) is
    removed; a hidden file is one being written, left alone (removed once older than a minute)."""
    folder = os.path.expanduser(call.arg("dir", str))
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(folder, name)
        if name.startswith("."):
            with contextlib.suppress(OSError):
                if os.lstat(path).st_mtime < time.time() - 60:
                    os.unlink(path)
            continue
        item = _spooled_item(path)
        if item is None:
            with contextlib.suppress(OSError):
                os.unlink(path)
            continue
        found.append({"name": name, "item": item[0], "mtime": item[1]})
    return found


def _spooled_item(path: str) -> tuple[dict[str, Any], float] | None:
    read = read_regular(path, SPOOL_FILE)
    if read is None:
        return None
    data, info = read
    try:
        item = json.loads(data)
    except ValueError:
        return None
    return (item, info.st_mtime) if isinstance(item, dict) else None
