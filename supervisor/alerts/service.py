"""The alert service: reads `trigger` events from the store's log and notifies people (SPEC §8).

Threads of its own, none of them the watcher's:
- the router thread sleeps until an event that is the alerts' business is written (`Router.wanted`: a
  trigger, an agent created, removed or ended; told by the store, `Store.listen_events`), the store is
  touched (a reloaded configuration), a request changed a silence, or its next due time; then it turns the
  new events into grouped alerts in the outbox (router.py) and wakes the workers. The watch tick's other
  writes (states, screens, conflicts, ...) do not wake it: the next step reads past them;
- one delivery worker per configured channel sends from the outbox (delivery.py).
Channels are rebuilt when the engine reloads supervisor.yaml. Requests (`op_*`) answer the CLI and dashboard:
alerts, alerts_test, snooze, unsnooze, silences.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from supervisor.alerts import silences
from supervisor.alerts.channels import Channel, DeliveryFailed, build_channels
from supervisor.alerts.content import make_test_alert, redact
from supervisor.alerts.delivery import DeliveryWorker
from supervisor.alerts.outbox import Outbox, ensure_schema
from supervisor.alerts.replies import SlackReplies
from supervisor.alerts.router import Router, Settings
from supervisor.config import AlertsConfig
from supervisor.core import subjects
from supervisor.errors import UsageError
from supervisor.suggest import did_you_mean

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

POLL = 5.0  # the router looks at the clock at least this often (what falls due wakes it at its time)
STOP_WAIT = 3.0  # at shutdown, how long a send in progress may finish (so it is not sent again at restart)
INSTANCE_KEY = "alerts.instance"


class AlertService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        ensure_schema(self.store)
        self.outbox = Outbox(self.store)
        self.router = Router(self.store)
        self.replies = SlackReplies(engine, self.outbox)
        self.instance = self._instance()
        self._stopping = threading.Event()
        self._dirty = threading.Event()  # a request changed something the router must look at
        self._rung = threading.Event()  # an event of the alerts' business, or a touch, since the last step began
        self._rung.set()  # the first step at once: groups and reminders that fell due while no engine ran
        self.store.listen_events(Router.wanted, lambda _event: self._rung.set())
        self.store.listen_touches(self._rung.set)
        self._lock = threading.Lock()
        self._config: AlertsConfig | None = None
        self._settings: Settings | None = None
        self._channels: dict[str, Channel] = {}
        self._workers: dict[str, DeliveryWorker] = {}
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        now = time.time()
        self.outbox.prune(now)
        self.outbox.retry_now(now)  # what failed before a restart is tried again at once
        self.sync_channels()
        self._thread = threading.Thread(target=self._run, name="alerts-router", daemon=True)
        self._thread.start()
        self.replies.start()

    def stop(self) -> None:
        """Stop quickly: only a send in progress is given time to finish (so it is not repeated at the next
        start). The router is not waited for: each of its steps is one transaction, safe to abandon."""
        self._stopping.set()
        self._rung.set()  # the router ends now, not at its next look at the clock
        self.replies.stop()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake()
        deadline = time.monotonic() + STOP_WAIT
        for worker in workers:
            if worker.thread.is_alive():
                worker.thread.join(max(0.0, deadline - time.monotonic()))

    def _instance(self) -> str:
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (INSTANCE_KEY, secrets.token_hex(6)))
            return str(db.execute("SELECT value FROM meta WHERE key = ?", (INSTANCE_KEY,)).fetchone()[0])

    # channels -----------------------------------------------------------------------------------------

    def sync_channels(self) -> Settings:
        """Build the channels from the engine's current config when it changed; the router's settings."""
        config = self.engine.config.alerts
        with self._lock:
            if self._settings is not None and config is self._config:
                return self._settings
            if self._settings is None or config != self._config:
                try:
                    channels = build_channels(config, self.engine.paths.root, self.instance, self.engine.tmux)
                except (ValueError, OSError) as exc:
                    log.error("alert channels not rebuilt: %s", exc)
                    channels = self._channels
                self._channels = channels
                self._settings = Settings.from_config(config, self.engine.paths.name, tuple(channels))
                cancelled = self.outbox.cancel_other_channels(channels)
                if cancelled:
                    log.warning("%d undelivered alert(s) dropped: their channel is no longer configured", cancelled)
                for name in channels:
                    if name not in self._workers and not self._stopping.is_set():
                        worker = DeliveryWorker(name, self.outbox, self.channel, self._stopping)
                        self._workers[name] = worker
                        worker.start()
                log.info("alert channels: %s", ", ".join(channels) or "none")
            self._config = config
            for worker in self._workers.values():
                worker.wake()
            return self._settings

    def channel(self, name: str) -> Channel | None:
        with self._lock:
            return self._channels.get(name)

    # the router thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        seen: int | None = None
        next_due: float | None = None
        while not self._stopping.is_set():
            timeout = POLL if next_due is None else min(POLL, max(0.0, next_due - time.time()))
            try:
                self._rung.wait(timeout)
                if self._stopping.is_set():
                    return
                rung = self._rung.is_set()
                if rung:
                    self._rung.clear()  # what is written from now on rings again
                settings = self.sync_channels()
                due = next_due is not None and time.time() >= next_due
                if seen is not None and not rung and not due and not self._dirty.is_set():
                    continue
                # Cleared only once seen set: a snooze set between a look and a clear would be lost otherwise.
                dirty = self._dirty.is_set()
                if dirty:
                    self._dirty.clear()
                forced = due or dirty
                step = self.router.step(settings, time.time(), forced=forced)
                seen, next_due = step.cursor, step.next_due
                if step.queued:
                    self._wake_workers()
            except sqlite3.ProgrammingError:
                if self._stopping.is_set():
                    return  # the store closed at shutdown
                log.exception("alert router failed")
                next_due = time.time() + 1.0
            except Exception:
                log.exception("alert router failed")
                next_due = time.time() + 1.0

    def _wake_workers(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake()

    # requests -----------------------------------------------------------------------------------------

    def op_alerts(self, name: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest alerts (of one agent, or all), newest first, with each channel's delivery."""
        return self.outbox.alerts(name, int(limit))

    def op_alerts_test(self) -> dict[str, Any]:
        """Send a test alert on every configured channel, now, outside the outbox; each channel's result."""
        self.engine.reload_config_if_changed()  # test what supervisor.yaml says now
        self.sync_channels()
        with self._lock:
            channels = dict(self._channels)
        now = time.time()
        content = make_test_alert(self.engine.paths.name, now)
        results: dict[str, dict[str, Any]] = {}

        def attempt(name: str, channel: Channel) -> None:
            started = time.monotonic()
            try:
                sent = channel.send(content, None, now)
                result = {"ok": True, "detail": sent.detail}
            except DeliveryFailed as exc:
                result = {"ok": False, "detail": redact(exc.message, channel.secrets)}
            except Exception as exc:  # a test reports every failure rather than failing the request
                result = {"ok": False, "detail": redact(f"{type(exc).__name__}: {exc}", channel.secrets)}
            results[name] = {"channel": name, **result, "seconds": round(time.monotonic() - started, 3)}

        threads = [threading.Thread(target=attempt, args=item, daemon=True) for item in channels.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        listed = [results.get(name, {"channel": name, "ok": False, "detail": "no answer within 120s"})
                  for name in channels]
        return {"channels": listed, "ok": bool(listed) and all(item["ok"] for item in listed)}

    def op_snooze(self, name: str | None = None, trigger: str | None = None,
                  duration: str | float = "1h") -> dict[str, Any]:
        """Silence alerts about agent `name` and/or `trigger` for `duration` (e.g. 30m). An agent that does not
        exist is refused (a typo would silence nothing); other subjects (`tmux:`, `host:NAME`) need none."""
        silences.check_target(name, trigger)
        if name is not None and subjects.is_agent(name) and self.store.get_agent(name) is None:
            known = [agent.name for agent in self.store.agents()]
            raise UsageError(f"no agent named {name!r}",
                             hint=did_you_mean(name, known) or "`supervisor ls` lists the agents")
        seconds = silences.seconds(duration)
        now = time.time()
        with self.store.transaction() as db:
            silence = silences.add(db, name, trigger, now + seconds, now)
        self._dirty.set()
        self.store.touch()
        return silence.view(now)

    def op_unsnooze(self, name: str | None = None, trigger: str | None = None,
                    id: int | None = None) -> dict[str, Any]:
        """End silences: one by id, or those for exactly this agent and trigger. Held alerts go out now."""
        if id is None:
            silences.check_target(name, trigger)
        with self.store.transaction() as db:
            removed = silences.remove(db, id, name, trigger)
        if not removed:
            raise UsageError("no such silence", hint="`supervisor alerts silences` lists them")
        self._dirty.set()
        self.store.touch()
        return {"removed": removed}

    def op_silences(self) -> list[dict[str, Any]]:
        now = time.time()
        with self.store.transaction() as db:
            return [silence.view(now) for silence in silences.active(db, now)]
