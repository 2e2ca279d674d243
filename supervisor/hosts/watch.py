"""One host's link as the engine keeps it: connected in a thread of its own, judged by the host's hello, pinged
while up, and connected again with backoff after a drop.

- The hello decides whether the host can run agents (`check.lacks`: python >= 3.11, git, tmux >= 3.2); a host
  that lacks one is `down` with what it lacks, and its link is closed.
- While up, a ping every `PING_EVERY` seconds is the only traffic of its own: its round trip is the latency,
  its answer the load. A drop is noticed at once (the link's reader) or within ssh's keep-alive bound (~15 s);
  a ping unanswered within `PING_TIMEOUT` ends the link too.
- After a drop or a refusal: again after 1 s, doubling to 60 s, jittered (a host that keeps failing is never
  tried in a hot loop). The delay starts again from 1 s only after a link that stayed up `MAX_DELAY`.

`state` is `connecting` until the first attempt ends, then `up` or `down`; while it retries a host stays
`down` (with why). Each change between up and down is told to `on_change(name, reach)` once, on this host's
thread: nothing here ever runs on the engine's request path, and a slow host holds up no other.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from supervisor.hosts.check import lacks
from supervisor.hosts.hostapp import HostApp, host_app
from supervisor.hosts.link import Link, LinkDown, LinkError, LinkTimeout
from supervisor.hosts.ssh import ssh_argv
from supervisor.hosts.survey import CONNECTING, DOWN, UP

if TYPE_CHECKING:
    from supervisor.config import HostConfig

log = logging.getLogger(__name__)

PING_EVERY: Final = 10.0  # seconds between pings while up
PING_TIMEOUT: Final = 20.0  # a ping unanswered this long ends the link (ssh's keep-alive says so within ~15 s)
CONNECT_TIMEOUT: Final = 60.0  # ssh's own connect timeout (10 s), the bootstrap, an install of the host program
FIRST_DELAY: Final = 1.0
MAX_DELAY: Final = 60.0
JITTER: Final = 0.25  # each delay is drawn within ±25% of its value


@dataclass(frozen=True)
class Reach:
    """What the engine knows of a host's link now."""

    state: str  # connecting | up | down
    since: float  # when it entered this state (epoch seconds)
    latency_ms: float | None = None  # the last ping's round trip
    load1: float | None = None
    cores: int | None = None
    last_seen: float | None = None  # when the host last answered (epoch seconds)
    error: str | None = None  # why it is down, in one line (ssh's own words, or what it lacks)


class HostWatch:
    def __init__(self, host: HostConfig, on_change: Callable[[str, Reach], None], *,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None, app: HostApp | None = None,
                 ping_every: float = PING_EVERY) -> None:
        self.host = host
        self.app = app or host_app()
        self.ping_every = ping_every
        self._on_change = on_change
        self._on_event = on_event
        self._reach = Reach(CONNECTING, time.time())
        self._guard = threading.Lock()
        self._known = threading.Event()  # its first attempt ended (up or down), or it was stopped
        self._wake = threading.Event()  # the link dropped, or stop
        self._stopping = threading.Event()
        self._link: Link | None = None
        self._dropped: LinkDown | None = None
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def reach(self) -> Reach:
        with self._guard:
            return self._reach

    def known(self, timeout: float) -> Reach:
        """Its reach once its first attempt ended (up or down), waiting up to `timeout` while it is `connecting`."""
        self._known.wait(timeout)
        return self.reach

    @property
    def link(self) -> Link | None:
        """The link while the host is up (for what runs over it), else None."""
        link = self._link
        return link if link is not None and link.up and self.reach.state == UP else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"host-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the link (what runs on the host is untouched) and end the thread; no change is told after."""
        self._stopping.set()
        self._wake.set()
        self._known.set()
        link = self._link
        if link is not None:
            link.close()
        if self._thread is not None:
            self._thread.join(timeout)

    # the thread ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = FIRST_DELAY
        while not self._stopping.is_set():
            try:
                error, up_for = self._session()
            except Exception as exc:  # a bug of ours must not end the watch: said, and tried again later
                log.exception("%s: the host's link failed", self.name)
                error, up_for = f"internal error: {exc!r}", 0.0
            if self._stopping.is_set():
                return
            self._set(DOWN, error=error)
            if up_for >= MAX_DELAY:
                delay = FIRST_DELAY
            self._stopping.wait(delay * random.uniform(1 - JITTER, 1 + JITTER))
            delay = min(delay * 2, MAX_DELAY)

    def _session(self) -> tuple[str, float]:
        """One connection: connect, judge the hello, ping until it ends. Why it ended (one line), and how long
        it was up (0: never)."""
        self._wake.clear()
        self._dropped = None
        link = Link(self.name, ssh_argv(self.host, *self.app.boot_words(self.host.dir)), app=self.app,
                    on_down=self._down, on_event=self._event)
        self._link = link
        up_at: float | None = None
        try:
            if self._stopping.is_set():
                return "stopped", 0.0
            hello = link.connect(CONNECT_TIMEOUT)
            missing = lacks(hello)
            if missing is not None:
                return missing, 0.0
            latency, load1 = self._ping(link)
            up_at = time.monotonic()
            cores = hello.get("cores")
            self._set(UP, latency_ms=latency, load1=load1, cores=cores if isinstance(cores, int) else None,
                      last_seen=time.time(), error=None)
            while not self._wake.wait(self.ping_every):
                latency, load1 = self._ping(link)
                with self._guard:
                    self._reach = replace(self._reach, latency_ms=latency, load1=load1, last_seen=time.time())
            return _line(self._dropped or LinkDown(f"{self.name}: the link was closed"), self.name), \
                time.monotonic() - up_at
        except LinkTimeout:
            return f"no answer to a ping within {PING_TIMEOUT:g} s", 0.0 if up_at is None else time.monotonic() - up_at
        except LinkError as exc:
            return _line(exc, self.name), 0.0 if up_at is None else time.monotonic() - up_at
        finally:
            self._link = None
            link.close()

    def _ping(self, link: Link) -> tuple[float, float | None]:
        """A round trip on the link: its time in ms, and the host's load it brings."""
        sent = time.monotonic()
        answer = link.call("ping", timeout=PING_TIMEOUT)
        latency = (time.monotonic() - sent) * 1000
        load1 = answer.get("load1") if isinstance(answer, dict) else None
        return latency, float(load1) if isinstance(load1, int | float) else None

    def _down(self, error: LinkDown) -> None:
        self._dropped = error
        self._wake.set()

    def _event(self, message: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(self.name, message)

    def _set(self, state: str, **fields: Any) -> None:
        """Enter `state` with `fields`; a change between up and down (or from connecting) is told once."""
        with self._guard:
            before = self._reach
            changed = before.state != state
            keep = {} if state == UP else {"latency_ms": None, "load1": before.load1, "cores": before.cores,
                                           "last_seen": before.last_seen}
            self._reach = Reach(state, time.time() if changed else before.since, **{**keep, **fields})
            reach = self._reach
        self._known.set()
        if changed and not self._stopping.is_set():
            try:
                self._on_change(self.name, reach)
            except Exception:
                log.exception("%s: what follows the host going %s failed", self.name, state)


def _line(error: LinkError, name: str) -> str:
    """The error's first line without the host's name it starts with (the row names the host)."""
    text = (str(error).splitlines() or ["the link failed"])[0]
    return text.removeprefix(f"{name}: ")
