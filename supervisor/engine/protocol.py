"""The client API's wire format: one JSON request line, one JSON response line, per connection.

Kept to the standard library so that the CLI, the hook command and the dashboard connect cheaply. A line
is at most MAX_LINE bytes, which carries texts (tasks, sent texts, messages) of several MB: a larger request
is refused by the client before it connects, and by the engine if one arrives anyway."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

MAX_LINE = 16 * 1024 * 1024
LIMIT = f"{MAX_LINE // (1024 * 1024)} MiB"


class ProtocolError(Exception):
    pass


class TooLarge(ProtocolError):
    pass


def encode(message: dict[str, Any]) -> bytes:
    """The message as one line; TooLarge past MAX_LINE."""
    line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
    if len(line) > MAX_LINE:
        raise TooLarge(f"the request is too large ({len(line) / (1024 * 1024):.1f} MiB): the engine takes at most "
                       f"{LIMIT}")
    return line


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def recv_message(sock: socket.socket, limit: int = MAX_LINE, deadline: float | None = None) -> dict[str, Any]:
    """One message; TooLarge past `limit` bytes, TimeoutError once `deadline` (time.monotonic) passes, however
    the sender paces its bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive in time")
            sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the message is larger than {limit // (1024 * 1024)} MiB")
        if chunk.endswith(b"\n"):
            break
    data = b"".join(chunks)
    if not data.strip():
        raise ProtocolError("connection closed without a message")
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"malformed message: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed message: not an object")
    return message
