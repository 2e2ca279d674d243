"""What every alert channel offers: send one alert (raising DeliveryFailed to be retried), and a reachability
check for `supervisor doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from supervisor.alerts.content import AlertContent


class DeliveryFailed(Exception):
    """The alert did not get through; it is retried with backoff, or after `retry_after` seconds when the
    service said so (Slack's Retry-After). The message never contains a secret."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Sent:
    detail: str = ""
    thread: str | None = None  # a reference that later alerts about the same agent reply to (Slack: channel:ts)


@dataclass(frozen=True)
class Reachability:
    ok: bool
    detail: str
    hint: str | None = None


class Channel(Protocol):
    name: str

    @property
    def thread_key(self) -> str | None:
        """Where this channel keeps per-agent threads (None: it has none)."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or a stored error."""

    def send(self, alert: AlertContent, thread: str | None, now: float) -> Sent: ...

    def check(self) -> Reachability: ...
