"""The client API's wire format: one JSON request line, one JSON response line, per connection.

Kept to the standard library so that the CLI, the hook command and the dashboard connect cheaply."""

from __future__ import annotations

import json
import socket
from typing import Any

MAX_LINE = 16 * 1024 * 1024


class ProtocolError(Exception):
    pass


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def recv_message(sock: socket.socket) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
        if size > MAX_LINE:
            raise ProtocolError("message too large")
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
