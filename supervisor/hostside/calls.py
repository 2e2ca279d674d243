"""One request being answered on the host: its arguments, checked as they are taken, and the way back."""

from __future__ import annotations

import base64
from typing import Any, Protocol

CHUNK = 48 * 1024  # raw bytes per chunk line (64 KiB of base64)


class OpError(Exception):
    """A call that cannot be done, said in one line to the caller."""


class Outlet(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...

    def take_stream(self, name: str) -> str: ...


class Call:
    def __init__(self, outlet: Outlet, number: int, args: dict[str, Any]) -> None:
        self.outlet = outlet
        self.number = number
        self.args = args

    def arg(self, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """Argument `name`, which must be of `kind`; without `default` it must be given."""
        if name not in self.args or self.args[name] is None:
            if default is ...:
                raise OpError(f"missing argument {name!r}")
            return default
        value = self.args[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            raise OpError(f"argument {name!r} has the wrong type ({type(value).__name__})")
        return value

    def strings(self, name: str, default: Any = ...) -> list[str]:
        value = self.arg(name, list, default)
        if not all(isinstance(item, str) for item in value):
            raise OpError(f"argument {name!r} must be a list of strings")
        return list(value)

    def send_bytes(self, data: bytes) -> None:
        """Bytes for the caller, ahead of the reply, in chunk lines."""
        for start in range(0, len(data), CHUNK):
            self.outlet.send({"id": self.number, "chunk": base64.b64encode(data[start:start + CHUNK]).decode()})

    def take_stream(self, name: str) -> str:
        """The file holding upload `name`, whole (the caller removes it)."""
        return self.outlet.take_stream(name)
