"""A host's tmux server driven by the same `supervisor.tmux.server.Tmux` code as the local one, over the host's
link: one-off commands through the `run` op, the watcher's control-mode client through the host program's tmux
relay (`tmux_start`/`tmux_send`, whose pushed `tmux` events carry tmux's raw output bytes in base64, parsed at
home by supervisor/tmux/control.py as a local client's are).

Every request has a short deadline (`CALL_TIMEOUT`): a slow or dropping host makes its own commands fail with a
`LinkError` (a `SupervisorError`), never a local one wait. A failure is never taken for "no server": the
caller (the host's watch) skips its tick instead of judging panes it could not list.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from supervisor.errors import SupervisorError
from supervisor.hosts.link import Link, LinkError
from supervisor.tmux.control import ControlClient, ControlError, attach_args
from supervisor.tmux.transport import Done

CALL_TIMEOUT = 10.0  # seconds for one request to the host (a command line, a relayed command's reply)
_numbers = itertools.count(1)


class RelayPipe:
    """A control-mode client's bytes, relayed: written with `tmux_send`, read from the pushed `tmux` events."""

    def __init__(self, link: Link, name: str, relays: Relays) -> None:
        self.link = link
        self.name = name
        self._relays = relays
        self._data = bytearray()
        self._ended: str | None = None
        self._changed = threading.Condition()

    @property
    def alive(self) -> bool:
        return self._ended is None and self.link.up

    def feed(self, data: bytes) -> None:
        with self._changed:
            self._data += data
            self._changed.notify_all()

    def ended(self, why: str) -> None:
        with self._changed:
            self._ended = why
            self._changed.notify_all()

    def write(self, data: bytes) -> None:
        lines = data.decode("utf-8", "surrogateescape").split("\n")[:-1]
        try:
            self.link.call("tmux_send", relay=self.name, lines=lines, timeout=CALL_TIMEOUT)
        except LinkError as exc:
            raise ControlError(str(exc)) from exc

    def read(self) -> bytes:
        with self._changed:
            if not self._changed.wait_for(lambda: self._data or self._ended is not None or not self.link.up,
                                          CALL_TIMEOUT):
                raise ControlError(f"{self.link.name}: tmux did not answer within {CALL_TIMEOUT:g}s")
            if not self._data:
                raise ControlError(f"{self.link.name}: tmux control client ended: {self._ended or 'link down'}")
            data = bytes(self._data)
            self._data.clear()
            return data

    def close(self) -> None:
        self._relays.forget(self.name)
        self.ended("closed")
        if self.link.up:
            with contextlib.suppress(LinkError):
                self.link.call("tmux_stop", relay=self.name, timeout=CALL_TIMEOUT)


class Relays:
    """The relays of one host, by name: its pushed `tmux` and `tmux_exit` events go to the pipe they name."""

    def __init__(self) -> None:
        self._pipes: dict[str, RelayPipe] = {}
        self._lock = threading.Lock()

    def event(self, message: Mapping[str, Any]) -> None:
        """A pushed event (on the link's reader thread: only hands the bytes over)."""
        with self._lock:
            pipe = self._pipes.get(str(message.get("relay")))
        if pipe is None:
            return
        if message.get("event") == "tmux":
            data = message.get("data")
            try:
                pipe.feed(base64.b64decode(data, validate=True) if isinstance(data, str) else b"")
            except ValueError:  # not what the host program sends: the client ends, its next query says why
                pipe.ended("the host sent tmux output that is not base64")
        elif message.get("event") == "tmux_exit":
            pipe.ended(f"exit {message.get('rc')}: {message.get('stderr') or ''}".strip())

    def open(self, link: Link, socket: Path, session: str) -> RelayPipe:
        name = f"watch-{next(_numbers)}-{uuid.uuid4().hex[:6]}"
        pipe = RelayPipe(link, name, self)
        with self._lock:
            self._pipes[name] = pipe  # before it starts: its first lines may come before the answer
        try:
            link.call("tmux_start", relay=name, socket=str(socket), args=["-N", *attach_args(session)],
                      timeout=CALL_TIMEOUT)
        except LinkError as exc:
            self.forget(name)
            raise ControlError(str(exc)) from exc
        return pipe

    def forget(self, name: str) -> None:
        with self._lock:
            self._pipes.pop(name, None)


class LinkTransport:
    """`supervisor.tmux.transport.Transport` for a host's tmux, over its link (`link()`: the link now, or
    HostUnreachable)."""

    local = False

    def __init__(self, link: Callable[[], Link], relays: Relays) -> None:
        self._link = link
        self.relays = relays

    def spawn(self, socket: Path, args: list[str], env: Mapping[str, str] | None) -> Done:
        ran = self._link().call("run", argv=["tmux", "-S", str(socket), *args], timeout=CALL_TIMEOUT)
        stdout = str(ran["stdout"]).split("\n")
        while stdout and stdout[-1] == "":
            stdout.pop()
        return Done(int(ran["rc"]), stdout, [line for line in str(ran["stderr"]).split("\n") if line])

    def control(self, socket: Path, session: str, env: Mapping[str, str] | None) -> ControlClient:
        try:
            link = self._link()
        except SupervisorError as exc:  # unreachable: the command line that follows says so
            raise ControlError(str(exc)) from exc
        return ControlClient(self.relays.open(link, socket, session))

    def write_file(self, path: Path, text: str) -> None:
        self._link().call("write", path=str(path), text=text, mode=0o600, timeout=CALL_TIMEOUT)

    @contextlib.contextmanager
    def staged(self, data: bytes, folder: Path) -> Iterator[str]:
        path = str(folder / f".paste-{uuid.uuid4().hex}")
        link = self._link()
        link.call("write", path=path, text=data.decode("utf-8", "surrogateescape"), mode=0o600, timeout=CALL_TIMEOUT)
        try:
            yield path
        finally:
            with contextlib.suppress(LinkError):
                link.call("remove", paths=[path], timeout=CALL_TIMEOUT)

    def still_runs(self, server: str, socket: Path) -> bool:
        return False  # a host's server that lost its socket is not told apart yet: taken as ended
