"""The engine's control socket: a Unix socket only the user can open.

Each connection carries one request. The caller is known from the socket's peer credentials: another user
is refused outright, and a process inside an agent's process tree acts as that agent (its token, from
`SUPERVISOR_TOKEN`, must agree), which limits it to the methods an agent may call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.engine.protocol import LIMIT, ProtocolError, TooLarge, recv_message, send_message
from supervisor.errors import SupervisorError, UsageError

log = logging.getLogger(__name__)

_PEERCRED = struct.Struct("3i")


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    pid, uid, gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return pid, uid, gid


Handler = Callable[[str, dict[str, Any], int, str | None], Any]
Note = Callable[[], str | None]


class _RequestHandler(socketserver.BaseRequestHandler):
    server: ControlServer

    def handle(self) -> None:
        sock: socket.socket = self.request
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
            token = message.get("token")
            if not isinstance(method, str) or not isinstance(params, dict):
                raise ProtocolError("a request needs a method and params")
            result = self.server.handler(method, params, pid, token if isinstance(token, str) else None)
            reply = {"ok": True, "result": result}
            note = self.server.note()  # said with every answer while it holds (the store cannot be written)
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


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    # socketserver's default backlog is 5: twenty CLIs connecting at once (a swarm claiming tasks) would
    # find it full, and a full Unix socket backlog refuses a client with a timeout outright (EAGAIN).
    request_queue_size = socket.SOMAXCONN

    def __init__(self, path: Path, handler: Handler, note: Note = lambda: None) -> None:
        self.handler = handler
        self.note = note
        if path.exists() or path.is_symlink():
            path.unlink()  # a stale socket; the caller holds the engine lock, so no live engine owns it
        old_umask = os.umask(0o177)
        try:
            super().__init__(str(path), _RequestHandler)
        finally:
            os.umask(old_umask)
        path.chmod(0o600)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                  name="control-server", daemon=True)
        thread.start()
        return thread
