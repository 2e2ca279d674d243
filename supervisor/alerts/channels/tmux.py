"""The tmux channel: a status-line message and a bell for every client attached to supervisor's own tmux
server. Nobody attached means nobody to show it to: the delivery counts as done (the other channels carry it)."""

from __future__ import annotations

import contextlib
import os

from supervisor.alerts.channels.base import DeliveryFailed, Reachability, Sent
from supervisor.alerts.content import AlertContent
from supervisor.tmux.server import Tmux, TmuxError

SHOW_MS = 15000


class TmuxChannel:
    name = "tmux"

    def __init__(self, tmux: Tmux) -> None:
        self.tmux = tmux

    @property
    def thread_key(self) -> str | None:
        return None

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()

    def clients(self) -> list[tuple[str, str]]:
        if self.tmux.nothing_answers():  # no server here (every agent on hosts): nobody attached, no tmux process
            return []
        try:
            lines = self.tmux.query("list-clients", "-F", "#{client_name}\t#{client_tty}\t#{client_control_mode}")
        except TmuxError:
            if not self.tmux.alive():
                return []
            raise
        found = []
        for line in lines:
            name, tty, control = [*line.split("\t"), "", ""][:3]
            if name and control != "1":  # a control-mode client is a program (the dashboard's watcher), not a person
                found.append((name, tty))
        return found

    def send(self, alert: AlertContent, thread: str | None, now: float) -> Sent:
        try:
            clients = self.clients()
            if not clients:
                return Sent("no client attached")
            message = alert.one_line().replace("#", "##")  # display-message expands formats
            for name, tty in clients:
                self.tmux.query("display-message", "-c", name, "-d", str(SHOW_MS), message)
                _bell(tty)
        except TmuxError as exc:
            raise DeliveryFailed(f"tmux: {exc}") from None
        return Sent(f"shown to {len(clients)} client(s)")

    def check(self) -> Reachability:
        try:
            count = len(self.clients())
        except TmuxError as exc:
            return Reachability(False, f"tmux: {exc}")
        return Reachability(True, f"{count} client(s) attached to supervisor's tmux server")


def _bell(tty: str) -> None:
    """Ring the terminal of an attached client (tmux has no command for it; the tty is the user's own)."""
    if not tty.startswith("/dev/"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(tty, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            os.write(fd, b"\a")
        finally:
            os.close(fd)
