"""A persistent tmux control-mode client (`tmux -C`) for the watcher's per-tick queries.

Spawning a tmux client for each query costs a process start every time; one control-mode connection
answers any number of commands (DESIGN.md: about 0.6% of a core at 100 panes, against 1.4% for one
spawned tmux a tick). It attaches to the `_engine` session the server keeps for it, with output notifications
off and without a say in window sizes, and never starts a server (`tmux -N`: attaching to a dead server's
socket would otherwise start a new, empty one). Each command's reply arrives between `%begin TIME NUMBER FLAGS` and
`%end`/`%error` with the same number and flags (FLAGS 1: a command of this client); pane text inside a
block may itself start with `%`, so only that exact pair delimits it.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO


class ControlError(Exception):
    pass


def _quote(arg: str) -> str:
    if "'" in arg or "\n" in arg:
        raise ControlError("argument not quotable for control mode")
    return f"'{arg}'"


class ControlClient:
    def __init__(self, socket: Path, session: str, env: Mapping[str, str] | None = None) -> None:
        self._proc = subprocess.Popen(
            ["tmux", "-N", "-S", str(socket), "-C", "attach-session", "-t", f"={session}", "-f",
             "no-output,ignore-size,read-only"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=None if env is None else dict(env),  # attaching copies some of its variables into the session
        )
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def run(self, groups: Sequence[Sequence[Sequence[str]]]) -> list[tuple[bool, list[str]]]:
        """Run commands in order; for each: (succeeded, output lines). Each group is one command line, which
        tmux runs without reading any pane in between; when a command of a group fails, tmux skips the rest
        of that group (they come back failed, with no output), and the next group runs as usual."""
        text = "".join(" ; ".join(" ".join(_quote(arg) for arg in command) for command in group) + "\n"
                       for group in groups if group)
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None:
            raise ControlError("no pipes")
        with self._lock:
            try:
                stdin.write(text.encode())
                stdin.flush()
            except (OSError, ValueError) as exc:  # ValueError: another thread closed it (its query failed)
                raise ControlError(f"control client gone: {exc}") from exc
            results: list[tuple[bool, list[str]]] = []
            for group in groups:
                for index in range(len(group)):
                    ok, body = self._next_reply(stdout)
                    results.append((ok, body))
                    if not ok:
                        results += [(False, [])] * (len(group) - index - 1)
                        break
            return results

    @staticmethod
    def _next_reply(stdout: IO[bytes]) -> tuple[bool, list[str]]:
        while True:
            header = _readline(stdout)
            if not header.startswith(b"%begin "):
                continue  # a notification
            parts = header.split(b" ")
            if len(parts) != 4:
                continue
            number, flags = parts[2], parts[3]
            ok, body = _read_block(stdout, number, flags)
            if flags == b"1":
                return ok, body

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _readline(stream: IO[bytes]) -> bytes:
    raw = stream.readline()
    if not raw:
        raise ControlError("control client ended")
    return raw[:-1] if raw.endswith(b"\n") else raw


def _read_block(stream: IO[bytes], number: bytes, flags: bytes) -> tuple[bool, list[str]]:
    """One reply's lines, decoded at once (a tick's captures are thousands of lines)."""
    raw: list[bytes] = []
    while True:
        line = stream.readline()
        if not line:
            raise ControlError("control client ended")
        if line.startswith((b"%end ", b"%error ")):
            parts = line.rstrip(b"\n").split(b" ")
            if len(parts) == 4 and parts[2] == number and parts[3] == flags:
                text = b"".join(raw).decode(errors="replace")
                return parts[0] == b"%end", text.split("\n")[:-1] if text else []
        raw.append(line if line.endswith(b"\n") else line + b"\n")
