"""A persistent tmux control-mode client (`tmux -C`) for the watcher's per-tick queries.

Spawning a tmux client for each query costs a process start every time; one control-mode connection
answers any number of commands (DESIGN.md: about 0.6% of a core at 100 panes, against 1.4% for one
spawned tmux a tick). It attaches to the `_engine` session the server keeps for it, with output notifications
off and without a say in window sizes, and never starts a server (`tmux -N`: attaching to a dead server's
socket would otherwise start a new, empty one). Each command's reply arrives between `%begin TIME NUMBER FLAGS` and
`%end`/`%error` with the same number and flags (FLAGS 1: a command of this client); pane text inside a
block may itself start with `%`, so only that exact pair delimits it.

Replies are read in large chunks and cut at their `%end` line (its time, number and flags are the `%begin`'s,
so the whole line is known in advance): a tick's captures are thousands of lines, and reading them one by one
cost the watcher more than everything else it does with them.

The client's bytes go through a `Pipe`: a local `tmux -C` process's stdio (`ProcessPipe`), or a host's tmux
relayed over its link (supervisor/hosts/remote/tmuxlink.py); the parsing is the same.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

READ_BYTES = 1 << 20


class ControlError(Exception):
    pass


def _command_line(group: Sequence[Sequence[str]]) -> str:
    """Commands chained with ';' on one line, each argument in single quotes (a tick writes hundreds)."""
    quoted = []
    for command in group:
        text = "'" + "' '".join(command) + "'"
        if text.count("'") != 2 * len(command) or "\n" in text:
            raise ControlError("argument not quotable for control mode")
        quoted.append(text)
    return " ; ".join(quoted)


class Pipe(Protocol):
    """Where a control-mode client's bytes go and come from."""

    @property
    def alive(self) -> bool: ...

    def write(self, data: bytes) -> None:
        """Send command lines; ControlError when the other end is gone."""
        ...

    def read(self) -> bytes:
        """The next bytes tmux printed (at least one); ControlError when it ended (or did not answer in time)."""
        ...

    def close(self) -> None: ...


class ProcessPipe:
    """A local `tmux -C` process attached to `session` of the server at `socket`."""

    def __init__(self, socket: Path, session: str, env: Mapping[str, str] | None = None) -> None:
        self._proc = subprocess.Popen(
            ["tmux", "-N", "-S", str(socket), "-C", *attach_args(session)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=None if env is None else dict(env),  # attaching copies some of its variables into the session
        )

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def write(self, data: bytes) -> None:
        stdin = self._proc.stdin
        if stdin is None:
            raise ControlError("no pipes")
        try:
            stdin.write(data)
            stdin.flush()
        except (OSError, ValueError) as exc:  # ValueError: another thread closed it (its query failed)
            raise ControlError(f"control client gone: {exc}") from exc

    def read(self) -> bytes:
        stdout = self._proc.stdout
        if stdout is None:
            raise ControlError("no pipes")
        try:
            data = os.read(stdout.fileno(), READ_BYTES)
        except OSError as exc:
            raise ControlError(f"control client gone: {exc}") from exc
        if not data:
            raise ControlError("control client ended")
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def attach_args(session: str) -> list[str]:
    """The control client's command: attached to `session`, with output notifications off and no say in sizes."""
    return ["attach-session", "-t", f"={session}", "-f", "no-output,ignore-size,read-only"]


class ControlClient:
    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self._lock = threading.Lock()
        self._buffer = bytearray()  # read from tmux; taken up to _taken
        self._taken = 0

    @classmethod
    def local(cls, socket: Path, session: str, env: Mapping[str, str] | None = None) -> ControlClient:
        return cls(ProcessPipe(socket, session, env))

    @property
    def alive(self) -> bool:
        return self._pipe.alive

    def run(self, groups: Sequence[Sequence[Sequence[str]]]) -> list[tuple[bool, list[str]]]:
        """Run commands in order; for each: (succeeded, output lines). Each group is one command line, which
        tmux runs without reading any pane in between; when a command of a group fails, tmux skips the rest
        of that group (they come back failed, with no output), and the next group runs as usual."""
        text = "".join(_command_line(group) + "\n" for group in groups if group)
        with self._lock:
            self._pipe.write(text.encode())
            del self._buffer[:self._taken]  # what earlier calls took (notifications may follow it)
            self._taken = 0
            results: list[tuple[bool, list[str]]] = []
            for group in groups:
                for index in range(len(group)):
                    ok, body = self._next_reply()
                    results.append((ok, body))
                    if not ok:
                        results += [(False, [])] * (len(group) - index - 1)
                        break
            return results

    def _next_reply(self) -> tuple[bool, list[str]]:
        while True:
            header = self._line()
            if not header.startswith(b"%begin "):
                continue  # a notification
            parts = header.split(b" ")
            if len(parts) != 4:
                continue
            ok, body = self._block(header[len(b"%begin"):])
            if parts[3] == b"1":
                return ok, body

    def _fill(self) -> None:
        self._buffer += self._pipe.read()

    def _line(self) -> bytes:
        start = self._taken
        while (end := self._buffer.find(b"\n", start)) < 0:
            start = len(self._buffer)
            self._fill()
        line = bytes(self._buffer[self._taken:end])
        self._taken = end + 1
        return line

    def _block(self, tail: bytes) -> tuple[bool, list[str]]:
        """One reply's lines, up to the `%end` or `%error` line that ends with `tail` (the `%begin` line's
        time, number and flags), decoded at once. Searched from the header's own newline, so an empty reply's
        end line, which follows the header at once, is found too."""
        ends = (b"\n%end" + tail + b"\n", b"\n%error" + tail + b"\n")
        first = start = self._taken - 1
        while True:
            # The error line is looked for only before the end line (not through the replies that follow).
            ended = self._buffer.find(ends[0], start)
            failed = self._buffer.find(ends[1], start, len(self._buffer) if ended < 0 else ended + len(ends[1]))
            if ended >= 0 or failed >= 0:
                ok = failed < 0 or 0 <= ended < failed
                at = ended if ok else failed
                text = self._buffer[first + 1:at + 1].decode(errors="replace")
                self._taken = at + len(ends[0] if ok else ends[1])
                return ok, text.split("\n")[:-1] if text else []
            start = max(first, len(self._buffer) - len(ends[1]))
            self._fill()

    def close(self) -> None:
        self._pipe.close()
