"""Helpers for the link tests: what a link pushed, and the transport to a test host."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from supervisor.config import HostConfig
from supervisor.hosts.link import LinkDown
from supervisor.hosts.ssh import ssh_argv
from tests.conftest import wait_until
from tests.sshd import SshHosts


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


def host_argv(ssh_hosts: SshHosts, name: str, words: Sequence[str]) -> list[str]:
    """The link's transport to test host `name`, as the engine builds it (`ssh_argv`), running `words`."""
    return ssh_argv(HostConfig(name=name, ssh=name, ssh_config=ssh_hosts.config), *words)
