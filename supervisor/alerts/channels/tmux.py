"""The tmux channel: a status-line message and a bell for every client attached to supervisor's own tmux
server. Nobody attached means nobody to show it to: the delivery counts as done (the other channels carry it)."""

from __future__ import annotations

import contextlib
import os

from supervisor.alerts.channels.base import DeliveryFailed, Reachability, Sent
from supervisor.alerts.content import AlertContent
from supervisor.tmux.server import Tmux, TmuxError

SHOW_MS = 15000
_LIST_CLIENTS = ["list-clients", "-F", "#{client_name}\t#{client_tty}\t#{client_control_mode}"]


class TmuxChannel:
    name = "tmux"

    def __init__(self, tmux: Tmux) -> None:
        self.tmux = tmux
        self._known: list[tuple[str, str]] = []  # the clients attached at the last look

    @property
    def thread_key(self) -> str | None:
        return None

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()

    def clients(self) -> list[tuple[str, str]]:
        return self._shown_with_clients(None)[0]

    def _shown_with_clients(self, message: str | None) -> tuple[list[tuple[str, str]], set[str]]:
        """The attached clients (name, tty), and those of them `message` was shown to in the same round trip:
        the clients attached last time, asked after the list (so a client listed but not shown to is one
        that attached since, told next by the caller)."""
        if self.tmux.nothing_answers():  # no server here (every agent on hosts): nobody attached, no tmux process
            self._known = []
            return [], set()
        known = self._known if message is not None else []
        failure: TmuxError | None = None
        try:
            results = self.tmux.queries(_LIST_CLIENTS, *[_display(name, message) for name, _ in known]) \
                if known and message is not None else [(True, self.tmux.query(*_LIST_CLIENTS))]
        except TmuxError as exc:
            failure, results = exc, [(False, [])]
        ok, lines = results[0]
        if not ok:
            if not self.tmux.alive():
                self._known = []
                return [], set()
            raise failure or TmuxError(f"tmux list-clients failed: {' '.join(lines) or 'no output'}")
        found = []
        for line in lines:
            name, tty, control = [*line.split("\t"), "", ""][:3]
            if name and control != "1":  # a control-mode client is a program (the dashboard's watcher), not a person
                found.append((name, tty))
        self._known = found
        return found, {name for (name, _), (shown, _) in zip(known, results[1:], strict=True) if shown}

    def send(self, alert: AlertContent, thread: str | None, now: float) -> Sent:
        message = alert.one_line().replace("#", "##")  # display-message expands formats
        try:
            clients, shown = self._shown_with_clients(message)
            if not clients:
                return Sent("no client attached")
            for name, tty in clients:
                if name not in shown:
                    self.tmux.query(*_display(name, message))
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


def _display(client: str, message: str) -> list[str]:
    return ["display-message", "-c", client, "-d", str(SHOW_MS), message]


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
