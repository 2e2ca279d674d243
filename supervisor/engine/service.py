"""The thread an engine service runs in: started after adoption, asked to stop at shutdown, and never ended
by an error in one of its passes (it is logged, and the next pass comes as usual)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class ServiceThread:
    """`start` runs `run` in a daemon thread named `thread_name`; `stop` sets `stopping`, calls `wake`, and
    waits up to `stop_timeout` for the thread to end."""

    thread_name = "service"
    stop_timeout = 5.0

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=self.stop_timeout)

    def wake(self) -> None:
        """Cut the current pause short (a service that waits on something besides `stopping` overrides it)."""

    def run(self) -> None:
        raise NotImplementedError


class PeriodicService(ServiceThread):
    """A service whose thread runs `step` every `interval` seconds."""

    interval = 1.0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except Exception:
                log.exception("%s: a pass failed", self.thread_name)
            self.pause()

    def step(self) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        self.stopping.wait(self.interval)
