"""The engine's control sockets: the human's (the repository's `engine.sock`) and one per agent.

A connection through an agent's socket IS that agent, whatever it sends: the socket it comes through is its
identity (nothing in the request says who it is). Every socket is a Unix socket only the user can open: another
user is refused outright.

One thread waits on every listening socket at once (a selector; it sleeps until a connection comes, never wakes
on a timer), and each connection is answered on a thread of its own, which carries one request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.engine import unixpath
from supervisor.engine.protocol import LIMIT, ProtocolError, TooLarge, recv_message, send_message
from supervisor.errors import SupervisorError, UsageError

log = logging.getLogger(__name__)

_PEERCRED = struct.Struct("3i")


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    pid, uid, gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return pid, uid, gid


@dataclass(frozen=True)
class Peer:
    """Who sent a request: the process (`pid`, from the kernel) and the agent whose socket it came through
    (None: the human's socket)."""

    pid: int
    agent: str | None


Handler = Callable[[str, dict[str, Any], Peer], Any]
Note = Callable[[], str | None]


@dataclass
class _Listener:
    sock: socket.socket
    path: Path
    agent: str | None


class ControlServer:
    """Listening sockets, each for the human (`agent` None) or one agent; `serve_in_thread` answers them all."""

    def __init__(self, handler: Handler, note: Note = lambda: None) -> None:
        self.handler = handler
        self.note = note  # said with every answer while it holds (the store cannot be written)
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._selector.register(self._wake_in, selectors.EVENT_READ, None)
        self._listeners: dict[Path, _Listener] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # sockets ------------------------------------------------------------------------------------------

    def listen(self, path: Path, agent: str | None = None) -> None:
        """Listen on `path` (a stale socket there is replaced: the caller holds the engine lock, so no live engine
        owns it). Connections wait in its backlog until the server runs."""
        with self._lock:
            if path in self._listeners:
                return
            if path.exists() or path.is_symlink():
                path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o177)
            try:
                unixpath.bind(sock, path)
            except BaseException:
                sock.close()
                raise
            finally:
                os.umask(old_umask)
            path.chmod(0o600)
            # A full Unix socket backlog refuses a client with a timeout outright (EAGAIN): twenty CLIs at once
            # (a swarm claiming tasks) must all wait in line.
            sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
            listener = _Listener(sock, path, agent)
            self._listeners[path] = listener
            self._selector.register(sock, selectors.EVENT_READ, listener)
        self._wake()

    def forget(self, path: Path) -> None:
        """Stop listening on `path` and remove it; a connection waiting in its backlog is dropped."""
        with self._lock:
            listener = self._listeners.pop(path, None)
            if listener is None:
                return
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(listener.sock)
            listener.sock.close()
            with contextlib.suppress(OSError):
                if path.is_socket():
                    path.unlink()

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
            except OSError as exc:  # forgotten meanwhile (closed), or out of descriptors: said, not fatal
                if listener.sock.fileno() != -1:
                    log.warning("accepting on %s failed: %s", listener.path, exc)
                return
            conn.setblocking(True)
            threading.Thread(target=self._answer, args=(conn, listener.agent), name="request",
                             daemon=True).start()

    def _answer(self, sock: socket.socket, agent: str | None) -> None:
        with sock:
            self._handle(sock, agent)

    def _handle(self, sock: socket.socket, agent: str | None) -> None:
        sock.settimeout(30)
        try:
            pid, uid, _gid = peer_credentials(sock)
            if uid != os.getuid():
                log.warning("refused a connection from uid %d (pid %d)", uid, pid)
                send_message(sock, _error(SupervisorError("permission denied")))
                return
            message = recv_message(sock)
            sock.settimeout(None)  # some requests (start, stop) legitimately take a while
            method = message.get("method")
            params = message.get("params") or {}
            if not isinstance(method, str) or not isinstance(params, dict):
                raise ProtocolError("a request needs a method and params")
            result = self.handler(method, params, Peer(pid, agent))
            reply = {"ok": True, "result": result}
            note = self.note()
            if note:
                reply["note"] = note
            try:
                send_message(sock, reply)
            except (BrokenPipeError, ConnectionResetError):  # it gave up waiting (a hook after 5 s, a Ctrl-C)
                log.info("the caller of %s (pid %d) left before its answer", method, pid)
        except SupervisorError as exc:
            _try_send(sock, _error(exc))
        except TooLarge:
            # Answered without reading the rest: the client may still be sending, and finds the answer
            # when its write fails.
            _try_send(sock, _error(UsageError(f"bad request: the request is larger than the engine takes "
                                              f"(at most {LIMIT})")))
        except ProtocolError as exc:
            _try_send(sock, _error(UsageError(f"bad request: {exc}")))
        except Exception as exc:
            log.exception("request failed")
            _try_send(sock, _error(SupervisorError(f"internal error in the engine: {exc!r}",
                                                   hint="see the engine log")))


def _error(exc: SupervisorError) -> dict[str, Any]:
    return {"ok": False, "error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}


def _try_send(sock: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the client went away
        send_message(sock, message)
