"""A full disk or a read-only store folder: the engine keeps supervising, and says so once.

The store keeps the changes it cannot write in memory (supervisor.core.unwritten), the transcripts the lines
they cannot write (transcripts.Transcripts), engine.log its lines (KeepingFileHandler); `DiskWatch.retry` writes
them once the disk takes them (the store's after 1 s, then less and less often, at least every 30 s). While
anything waits, `note` is the one line every command's answer carries and `engine status` shows.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor.core.store import Store
    from supervisor.engine.transcripts import Transcripts

log = logging.getLogger(__name__)

KEPT_LOG_LINES = 1000  # engine.log lines kept while the disk refuses them (the oldest go first)
FIRST_RETRY, LAST_RETRY = 1.0, 30.0  # seconds between tries to write the store's waiting changes: doubling


class DiskWatch:
    def __init__(self, store: Store, transcripts: Transcripts, folder: str) -> None:
        self.store = store
        self.transcripts = transcripts
        self.folder = folder
        self._next_try = 0.0
        self._delay = FIRST_RETRY

    def retry(self) -> None:
        """Write what waits (called each tick: cheap when nothing does). The store is tried with a backoff:
        each try holds its lock."""
        now = time.monotonic()
        if self.store.unwritten() is None:
            self._next_try, self._delay = 0.0, FIRST_RETRY
        elif now >= self._next_try:
            if self.store.write_unwritten():
                self._next_try, self._delay = 0.0, FIRST_RETRY
            else:
                self._next_try = now + self._delay
                self._delay = min(self._delay * 2, LAST_RETRY)
        self.transcripts.retry()

    def note(self) -> str | None:
        """One line while something cannot be written, else None."""
        fault = self.store.unwritten()
        if fault is not None:
            since = time.strftime("%H:%M:%S", time.localtime(fault.since))
            return (f"the store in {self.folder} cannot be written since {since} ({fault.error}): "
                    f"{fault.waiting} change(s) wait in memory and are written once it can (see engine.log)")
        if self.transcripts.fault is not None:
            return (f"the transcripts in {self.transcripts.logs_dir} cannot be written ({self.transcripts.fault}): "
                    "their lines wait in memory and are written once they can (see engine.log)")
        return None


class KeepingFileHandler(logging.handlers.RotatingFileHandler):
    """engine.log on a disk that may fill up or turn read-only: a line it cannot write waits (the newest
    KEPT_LOG_LINES) and is written, in order, before the next line once the disk takes it. Nothing is
    printed about the failure itself (the standard handler prints a traceback for each line)."""

    def __init__(self, filename: str, max_bytes: int, backups: int) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backups, delay=True)
        self._waiting: deque[str] = deque(maxlen=KEPT_LOG_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format string: the logging module reports it
            self.handleError(record)
            return
        self._waiting.append(text + self.terminator)
        while self._waiting:
            if not self._write(self._waiting[0]):
                return
            self._waiting.popleft()

    def _write(self, text: str) -> bool:
        try:
            if self.stream is None:
                self.stream = self._open()
            if self.maxBytes > 0 and self.stream.tell() + len(text) >= self.maxBytes:
                self.doRollover()  # closes it (and opens no new one: delay)
                self.stream = self._open()
            self.stream.write(text)
            self.stream.flush()
        except OSError:
            if self.stream is not None:
                with contextlib.suppress(OSError):
                    self.stream.close()  # drops what it buffered: the line waits here instead
                self.stream = None
            return False
        return True
