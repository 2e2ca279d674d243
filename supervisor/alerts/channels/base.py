"""What every alert channel offers: send one alert (raising DeliveryFailed to be retried), and a reachability
check for `supervisor doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from supervisor.alerts.content import AlertContent


class DeliveryFailed(Exception):
    """The alert did not get through; it is retried with backoff, or after `retry_after` seconds when the
    service said so (Slack's Retry-After). `maybe_sent`: it may have got through all the same (no answer came
    after it was sent). The message never contains a secret."""

    def __init__(self, message: str, retry_after: float | None = None, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


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


@runtime_checkable
class Recalling(Protocol):
    """A channel that can read back what it sent, so a message that may have got through is not sent twice."""

    def recall(self, alert: AlertContent, thread: str | None, since: float, elsewhere: str | None) -> Sent | None:
        """The message an attempt that started at `since` posted for `alert` (in `thread`, or at the top when
        None; `elsewhere`: another thread of the channel, which tells where it is), or None when it is not there.
        Raises DeliveryFailed when it cannot look now."""
