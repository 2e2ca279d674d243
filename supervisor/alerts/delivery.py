"""One delivery worker thread per channel: takes due deliveries from the outbox, sends, records the result.

A slow or dead channel only ever holds up its own worker: the watcher appends events and never waits on one,
and the other channels keep going. Failures back off exponentially (capped); a rate limit's Retry-After
pauses the whole channel, since Slack's limits are per method and workspace, not per message.

On a channel that can read back what it sent (Slack with a bot token), each attempt is recorded before the
channel is called. One still recorded when a delivery comes up again (the engine died between the channel
accepting it and the store marking it sent, or it timed out) may have got through: the channel is asked
first, and what it finds is marked sent without posting again. The others (webhook, email, command, tmux)
record nothing (nothing would read it back) and send again.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable

from supervisor.alerts.channels import Channel, DeliveryFailed, Recalling, Sent
from supervisor.alerts.content import redact
from supervisor.alerts.outbox import Delivery, Outbox

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 300.0
IDLE_WAIT = 30.0


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 0.5, 1, 2, 4 … up to 5 minutes, ±10%."""
    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1))
    return float(delay * random.uniform(0.9, 1.1))


class DeliveryWorker:
    def __init__(self, name: str, outbox: Outbox, channel_for: Callable[[str], Channel | None],
                 stopping: threading.Event) -> None:
        self.name = name
        self.outbox = outbox
        self.channel_for = channel_for  # read each time: a config reload may swap the channel
        self.stopping = stopping
        self.kick = threading.Event()
        self.paused_until = 0.0
        self.thread = threading.Thread(target=self._run, name=f"alerts-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self.kick.set()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                wait = self.run_once()
            except sqlite3.ProgrammingError:
                if self.stopping.is_set():
                    return  # the store closed under us at shutdown
                raise
            except Exception:
                log.exception("alert delivery on %s failed unexpectedly", self.name)
                wait = 5.0
            if wait is not None and wait > 0:
                self.kick.wait(min(wait, IDLE_WAIT))

    def run_once(self) -> float | None:
        """Send the next due delivery, if any; how long to wait before looking again (0: look at once)."""
        self.kick.clear()
        now = time.time()
        if now < self.paused_until:
            return self.paused_until - now
        channel = self.channel_for(self.name)
        if channel is None:
            return IDLE_WAIT
        delivery, next_due = self.outbox.next_delivery(self.name, now)
        if delivery is None:
            return IDLE_WAIT if next_due is None else max(0.0, next_due - now)
        self.attempt(channel, delivery)
        return 0.0

    def attempt(self, channel: Channel, delivery: Delivery) -> None:
        key = channel.thread_key
        thread = self.outbox.thread(delivery.subject, key) if key else None
        started = time.time()
        try:
            sent = self._recall(channel, delivery, thread, key)
            if sent is None:
                # Only a channel that can look reads the attempt back. (What `isinstance(channel, Recalling)`
                # asks, without its cost: a runtime-checkable protocol's check is slow enough to see per alert.)
                if callable(getattr(channel, "recall", None)):
                    self.outbox.begin(delivery, started)
                sent = channel.send(delivery.content, thread, started)
        except Exception as exc:
            self._failed(channel, delivery, exc)
            return
        if key and sent.thread and thread and sent.thread != thread:
            self.outbox.forget_thread(delivery.subject, key)  # the old thread was lost; this one replaces it
        self.outbox.mark_sent(delivery, sent.detail, key, sent.thread)
        log.info("alert %d about %s sent to %s in %.2fs (%s)", delivery.alert, delivery.subject, self.name,
                 time.time() - started, sent.detail)

    def _recall(self, channel: Channel, delivery: Delivery, thread: str | None, key: str | None) -> Sent | None:
        """What an earlier attempt that may have got through did post, if the channel can tell; else None."""
        if delivery.in_flight is None or not isinstance(channel, Recalling):
            return None
        elsewhere = self.outbox.any_thread(key) if key and thread is None else None
        try:
            found = channel.recall(delivery.content, thread, delivery.in_flight, elsewhere)
        except DeliveryFailed as exc:  # still unknown whether the earlier attempt got through
            raise DeliveryFailed(f"could not look for an earlier attempt: {exc.message}", exc.retry_after,
                                 maybe_sent=True) from None
        if found is not None:
            log.info("alert %d to %s: found already delivered by an attempt before a restart; not sent again",
                     delivery.alert, self.name)
        return found

    def _failed(self, channel: Channel, delivery: Delivery, exc: Exception) -> None:
        maybe_sent = True  # a bug or a library surprise: nothing tells whether it got through
        if isinstance(exc, DeliveryFailed):
            maybe_sent = exc.maybe_sent
        else:
            log.exception("alert %d to %s: unexpected error", delivery.alert, self.name)
            exc = DeliveryFailed(f"{type(exc).__name__}: {exc}"[:300])
        error = redact(exc.message, channel.secrets)
        if exc.retry_after is not None:
            self.paused_until = time.time() + exc.retry_after
            next_attempt = self.paused_until
        else:
            next_attempt = time.time() + backoff(delivery.attempts + 1)
        log.warning("alert %d to %s not delivered (attempt %d): %s", delivery.alert, self.name,
                    delivery.attempts + 1, error)
        self.outbox.mark_failed(delivery, error, next_attempt, maybe_sent)
