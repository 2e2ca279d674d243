"""The engine's control sockets: the human's (the repository's `engine.sock`) and one per agent.

A connection through an agent's socket IS that agent, whatever it sends: the socket it comes through is its
identity (nothing in the request says who it is). Every socket is a Unix socket only the user can open: another
user is refused outright.

One thread waits on every listening socket at once (a selector; it sleeps until a connection comes, never wakes
on a timer), and each connection is answered on a thread of its own, which carries one request. One agent cannot
hold the control plane: at most AGENT_CONNECTIONS connections at once through its socket, a whole request read
within READ_DEADLINE, at most AGENT_LINE bytes; out of descriptors, a connection is refused, never spun on.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.engine import unixpath
from supervisor.engine.peers import Peer, peer_credentials
from supervisor.engine.protocol import MAX_LINE, ProtocolError, TooLarge, recv_message, send_message
from supervisor.errors import SupervisorError, UsageError

log = logging.getLogger(__name__)

AGENT_CONNECTIONS = 32  # open at once through one agent's socket (held approvals, parallel hooks); more: refused
AGENT_LINE = 2 * 1024 * 1024  # a request through an agent's socket (a hook event is cut to 1 MiB)
READ_DEADLINE = 30.0  # seconds for a whole request to arrive, however it is paced

Handler = Callable[[str, dict[str, Any], Peer], Any]
Note = Callable[[], str | None]

__all__ = ["AGENT_CONNECTIONS", "ControlServer", "Peer", "answer", "clear_path", "peer_credentials"]


@dataclass
class _Listener:
    sock: socket.socket
    path: Path
    agent: str | None
    inode: tuple[int, int]  # (st_dev, st_ino) of the socket it bound: what is at `path` may be another's since
    active: int = 0  # connections being answered


def clear_path(path: Path) -> None:
    """Remove whatever is at `path` (a stale socket, a file, a link, a folder someone planted), never following
    a symbolic link."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)  # fd-based on Linux: a link inside is removed, never followed
    else:
        path.unlink(missing_ok=True)


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None


def _bind_private(path: Path) -> tuple[socket.socket, tuple[int, int]]:
    """A socket bound at `path`, 0600 from the moment it is reachable there: bound in a folder of its own (0700,
    so the umask, which is the whole process's, never matters) and moved into place."""
    folder = Path(tempfile.mkdtemp(prefix=".bind-", dir=path.parent))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        made = folder / path.name
        unixpath.bind(sock, made)
        os.chmod(made, 0o600)  # in a folder only this engine made: nothing there to follow
        os.rename(made, path)  # replaces a link or a stale socket; a folder there was cleared before
        inode = _inode(path)
        if inode is None:
            raise OSError(errno.EEXIST, f"{path} was replaced while binding it")
        return sock, inode
    except BaseException:
        sock.close()
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class ControlServer:
    """Listening sockets, each for the human (`agent` None) or one agent; `serve_in_thread` answers them all."""

    def __init__(self, handler: Handler, note: Note = lambda: None) -> None:
        self.handler = handler
        self.note = note  # said with every answer while it holds (the store cannot be written)
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        # Never blocking: a full pair means a wake-up is pending already. Blocking, the engine's start hung for
        # good once it had listened on a few hundred agents' sockets before the serving thread ran to drain it.
        self._wake_out.setblocking(False)
        self._selector.register(self._wake_in, selectors.EVENT_READ, None)
        self._listeners: dict[Path, _Listener] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._starved_said = -1e9
        # given back to take a connection when out of descriptors
        self._spare: int | None = os.open(os.devnull, os.O_RDONLY)

    # sockets ------------------------------------------------------------------------------------------

    def listen(self, path: Path, agent: str | None = None) -> None:
        """Listen on `path`. Whatever is there is removed first (a stale socket: the caller holds the engine lock,
        so no live engine owns it; or anything an agent planted there), never following a link. Connections
        wait in its backlog until the server runs."""
        with self._lock:
            current = self._listeners.get(path)
            if current is not None:
                if _inode(path) == current.inode:
                    return
                self._drop(current)  # what is at its path is not its socket any more: listen anew
            clear_path(path)
            sock, inode = _bind_private(path)
            # A full Unix socket backlog refuses a client with a timeout outright (EAGAIN): twenty CLIs at once
            # (a swarm claiming tasks) must all wait in line.
            sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
            listener = _Listener(sock, path, agent, inode)
            self._listeners[path] = listener
            self._selector.register(sock, selectors.EVENT_READ, listener)
        self._wake()

    def forget(self, path: Path) -> None:
        """Stop listening on `path` and remove it; a connection waiting in its backlog is dropped."""
        with self._lock:
            listener = self._listeners.get(path)
            if listener is not None:
                self._drop(listener)

    def _drop(self, listener: _Listener) -> None:
        self._listeners.pop(listener.path, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(listener.sock)
        listener.sock.close()
        if _inode(listener.path) == listener.inode:  # only its own socket, never what replaced it
            with contextlib.suppress(OSError):
                listener.path.unlink()

    def listening(self) -> dict[Path, str | None]:
        with self._lock:
            return {path: listener.agent for path, listener in self._listeners.items()}

    # serving ------------------------------------------------------------------------------------------

    def serve_in_thread(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._serve, name="control-server", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        """Stop accepting (requests being answered finish on their own threads)."""
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def server_close(self) -> None:
        for path in list(self.listening()):
            self.forget(path)
        self._selector.close()
        self._wake_in.close()
        self._wake_out.close()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (it is being woken already) or closed
            self._wake_out.send(b"\0")

    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _events in self._selector.select():
                listener = key.data
                if listener is None:
                    with contextlib.suppress(OSError):
                        while self._wake_in.recv(4096):
                            pass
                    continue
                self._accept(listener)

    def _accept(self, listener: _Listener) -> None:
        while True:
            try:
                conn, _ = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self._shed(listener)
                elif listener.sock.fileno() != -1:  # (closed: forgotten meanwhile)
                    log.warning("accepting on %s failed: %s", listener.path, exc)
                return
            with self._lock:
                full = listener.agent is not None and listener.active >= AGENT_CONNECTIONS
                if not full:
                    listener.active += 1
            if full:
                _refuse(conn, SupervisorError(f"refused: agent {listener.agent} has {AGENT_CONNECTIONS} requests "
                                              "open already"))
                continue
            try:
                threading.Thread(target=self._answer, args=(conn, listener), name="request", daemon=True).start()
            except RuntimeError:  # no thread to be had: refused, said
                self._done(listener)
                _refuse(conn, SupervisorError("the engine is out of threads; try again"))

    def _shed(self, listener: _Listener) -> None:
        """Out of descriptors: the connection waiting stays in the backlog, and a level-triggered selector
        would report it again at once, forever. Give back the spare descriptor, take the connection and
        close it with a word, then take the spare again."""
        if time.monotonic() - self._starved_said > 60:  # said once a minute, not once a connection
            self._starved_said = time.monotonic()
            log.warning("out of file descriptors: refusing connections on %s", listener.path)
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        try:
            conn, _ = listener.sock.accept()
        except OSError:
            conn = None
        if conn is not None:
            _refuse(conn, SupervisorError("the engine is out of file descriptors; try again"))
        try:
            self._spare = os.open(os.devnull, os.O_RDONLY)
        except OSError:  # still none: stop reading this socket for a moment rather than spin
            time.sleep(0.1)

    def _done(self, listener: _Listener) -> None:
        with self._lock:
            listener.active -= 1

    def _answer(self, sock: socket.socket, listener: _Listener) -> None:
        try:
            with sock:
                self._handle(sock, listener.agent)
        finally:
            self._done(listener)

    def _handle(self, sock: socket.socket, agent: str | None) -> None:
        peer: Peer | None = None
        try:
            pid, uid, _gid = peer_credentials(sock)
            peer = Peer.of(sock, pid, agent)  # pinned before the request is read: it is judged by this process
            if uid != os.getuid():
                log.warning("refused a connection from uid %d (pid %d)", uid, pid)
                send_message(sock, _error(SupervisorError("permission denied")))
                return
            limit = MAX_LINE if agent is None else AGENT_LINE
            message = recv_message(sock, limit, time.monotonic() + READ_DEADLINE)
            sock.settimeout(None)  # some requests (start, stop) legitimately take a while
            reply = answer(self.handler, self.note, message, peer)
            try:
                send_message(sock, reply)
            except (BrokenPipeError, ConnectionResetError):  # it gave up waiting (a hook after 5 s, a Ctrl-C)
                log.info("the caller of %s (pid %d) left before its answer", message.get("method"), pid)
        except SupervisorError as exc:
            _try_send(sock, _error(exc))
        except TooLarge:
            # Answered without reading the rest: the client may still be sending, and finds the answer
            # when its write fails.
            limit = MAX_LINE if agent is None else AGENT_LINE
            _try_send(sock, _error(UsageError(f"bad request: the request is larger than the engine takes "
                                              f"(at most {limit // (1024 * 1024)} MiB)")))
        except ProtocolError as exc:
            _try_send(sock, _error(UsageError(f"bad request: {exc}")))
        except TimeoutError:
            _try_send(sock, _error(UsageError(f"bad request: it did not arrive within {READ_DEADLINE:.0f} s")))
        except Exception as exc:
            log.exception("request failed")
            _try_send(sock, _error(SupervisorError(f"internal error in the engine: {exc!r}",
                                                   hint="see the engine log")))
        finally:
            if peer is not None:
                peer.close()


def answer(handler: Handler, note: Note, message: dict[str, Any], peer: Peer) -> dict[str, Any]:
    """The reply to one request `message` from `peer`, as every socket gives it: this machine's, and an agent's
    socket on a host, whose requests come home over the host's link (supervisor/engine/remoterequests.py)."""
    try:
        method = message.get("method")
        params = message.get("params") or {}
        if not isinstance(method, str) or not isinstance(params, dict):
            raise ProtocolError("a request needs a method and params")
        result = handler(method, params, peer)
    except SupervisorError as exc:
        return _error(exc)
    except ProtocolError as exc:
        return _error(UsageError(f"bad request: {exc}"))
    except Exception as exc:
        log.exception("request failed")
        return _error(SupervisorError(f"internal error in the engine: {exc!r}", hint="see the engine log"))
    reply = {"ok": True, "result": result}
    said = note()
    if said:
        reply["note"] = said
    return reply


def _refuse(conn: socket.socket, exc: SupervisorError) -> None:
    """Answer a connection that is not served with why, without waiting on it, and close it."""
    with conn:
        conn.setblocking(False)
        _try_send(conn, _error(exc))


def _error(exc: SupervisorError) -> dict[str, Any]:
    return {"ok": False, "error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}


def _try_send(sock: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the client went away
        send_message(sock, message)
