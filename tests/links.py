"""Helpers for the link tests: what a link pushed, and links over the local transport or the test sshd."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from supervisor.hosts.link import LinkDown
from tests.conftest import wait_until


class Heard:
    """Events a link pushed, and its on_down calls, as they came."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.downs: list[LinkDown] = []
        self._lock = threading.Lock()

    def event(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(message)

    def down(self, error: LinkDown) -> None:
        with self._lock:
            self.downs.append(error)

    def wait_for(self, match: Callable[[dict[str, Any]], bool], message: str, timeout: float = 15) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            with self._lock:
                return next((event for event in self.events if match(event)), None)

        return wait_until(found, timeout=timeout, message=message)  # type: ignore[no-any-return]


def ssh_argv(config: Path, host: str, words: Sequence[str]) -> list[str]:
    """What `supervisor.hosts.ssh.ssh_argv` gives for a host of the test sshd config (the options every link
    uses, the remote command quoted into the one string ssh hands the host's shell)."""
    return ["ssh", "-F", str(config), "-T", "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o",
            "ControlPath=none", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5", "-o",
            "ServerAliveCountMax=3", host, "--", shlex.join(words)]
