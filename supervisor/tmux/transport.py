"""How a `Tmux` reaches its server: tmux processes and a control-mode client on this machine (`LocalTransport`),
or the same commands carried to a host's tmux over its link (supervisor/hosts/remote/tmuxlink.py). What
`Tmux` asks of it is only this: run one tmux command line, attach a control-mode client, put a file where the
server reads it, and whether a server instance still runs though its socket does not answer."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from supervisor.tmux.control import ControlClient
from supervisor.tmux.instance import still_runs


@dataclass(frozen=True)
class Done:
    """A tmux process's exit status and output lines."""

    returncode: int
    stdout: list[str]
    stderr: list[str]


class Transport(Protocol):
    local: bool  # the server runs on this machine (its pids and socket file are ours to look at)

    def spawn(self, socket: Path, args: list[str], env: Mapping[str, str] | None) -> Done:
        """`tmux -S socket ARGS`, its exit status and output."""
        ...

    def control(self, socket: Path, session: str, env: Mapping[str, str] | None) -> ControlClient:
        """A control-mode client attached to `session` (never starting a server)."""
        ...

    def write_file(self, path: Path, text: str) -> None:
        """`text` into `path`, where the server's machine reads it (its config)."""
        ...

    def staged(self, data: bytes, folder: Path) -> contextlib.AbstractContextManager[str]:
        """A private file holding `data` in `folder` on the server's machine, removed afterwards (a long paste)."""
        ...

    def still_runs(self, server: str, socket: Path) -> bool:
        """Whether server instance `server` runs on though no server answers at `socket`."""
        ...


class LocalTransport:
    local = True

    def spawn(self, socket: Path, args: list[str], env: Mapping[str, str] | None) -> Done:
        done = subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True, text=True,
                              errors="backslashreplace", env=None if env is None else dict(env),
                              stdin=subprocess.DEVNULL, check=False)
        stdout = done.stdout.split("\n")
        while stdout and stdout[-1] == "":
            stdout.pop()
        return Done(done.returncode, stdout, [line for line in done.stderr.split("\n") if line])

    def control(self, socket: Path, session: str, env: Mapping[str, str] | None) -> ControlClient:
        return ControlClient.local(socket, session, env)

    def write_file(self, path: Path, text: str) -> None:
        path.write_text(text)

    @contextlib.contextmanager
    def staged(self, data: bytes, folder: Path) -> Iterator[str]:
        with tempfile.NamedTemporaryFile(prefix="paste-", dir=folder) as file:
            file.write(data)
            file.flush()
            yield file.name

    def still_runs(self, server: str, socket: Path) -> bool:
        return still_runs(server, socket)


LOCAL_TRANSPORT = LocalTransport()

__all__ = ["LOCAL_TRANSPORT", "Done", "LocalTransport", "Transport"]
