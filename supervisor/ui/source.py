"""Where the dashboard gets its data: the engine through the client API, or a test double.

The app talks to a `DataSource` only, so tests, snapshots and the benchmark inject a fake one (see
`supervisor.ui.fake`). Every failure is turned into one of four exceptions the app knows how to show:
the engine is down (a banner, then recovery), the engine took the request but has not answered in time (it
is busy or slow, not gone: the request may still complete), a request the engine does not offer yet (a
notification saying so), or a request that failed (its message and hint). No Textual here: sources run in
threads.
"""

from __future__ import annotations

from typing import Any, Protocol

from supervisor.paths import RepoPaths

LONG_POLL_SECONDS = 10.0


class EngineDown(Exception):
    """The engine is not running or closed the connection (stopping, restarting, killed)."""


class EngineSlow(Exception):
    """The engine took the request and has not answered within the timeout: it is running, but busy (or
    stuck). The request may still be carried out; nothing says it failed."""

    def __init__(self, method: str, timeout: float | None) -> None:
        super().__init__(f"the engine has not answered {method} within {timeout:.0f}s" if timeout else
                         f"the engine has not answered {method}")
        self.method = method
        self.timeout = timeout


class NotAvailable(Exception):
    """The engine has no such request yet (an older engine, or a feature that has not landed)."""

    def __init__(self, method: str) -> None:
        super().__init__(f"{method} is not available yet in this engine")
        self.method = method


class RequestFailed(Exception):
    """The engine refused or failed the request; `hint` says what to do, when it knows."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class DataSource(Protocol):
    """What the dashboard needs from the engine. Every method may block: call them from threads."""

    @property
    def title(self) -> str:
        """What the dashboard is watching (the repository's name)."""
        ...

    @property
    def tmux_socket(self) -> str | None:
        """The supervisor's tmux socket, to tell whether the dashboard itself runs inside it."""
        ...

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = 30.0) -> Any:
        """One request; raises EngineDown, EngineSlow, NotAvailable or RequestFailed."""
        ...

    def repository_of(self, name: str | None) -> str | None:
        """Where a new session of the one who looks at agent `name` starts, when the source shows several
        repositories (`ui --all`); None: the source shows one repository."""
        ...

    def ensure_engine(self) -> None:
        """Start the engine when it is not running (raises EngineDown when it cannot)."""
        ...


class EngineSource:
    """The real engine of one repository, through `supervisor.client`."""

    def __init__(self, paths: RepoPaths) -> None:
        self.paths = paths

    @property
    def title(self) -> str:
        return self.paths.name

    @property
    def tmux_socket(self) -> str | None:
        return str(self.paths.tmux_socket)

    def repository_of(self, name: str | None) -> str | None:
        return None

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = 30.0) -> Any:
        from supervisor import client
        from supervisor.errors import SupervisorError, UsageError

        try:
            # No autostart: a dashboard that restarts the engine behind the user's back on every click
            # would hide why it died; recovery goes through `ensure_engine`, with a banner meanwhile.
            return client.call(self.paths, method, params or {}, autostart=False, timeout=timeout)
        except (client.EngineNotRunning, client.EngineGone) as exc:
            raise EngineDown(str(exc)) from exc
        except client.EngineTimeout as exc:  # connected and asked: it is there, only slow to answer
            raise EngineSlow(method, timeout) from exc
        except UsageError as exc:
            if exc.message.startswith("unknown request"):
                raise NotAvailable(method) from exc
            raise RequestFailed(exc.message, exc.hint) from exc
        except SupervisorError as exc:
            raise RequestFailed(exc.message, exc.hint) from exc

    def ensure_engine(self) -> None:
        from supervisor import client
        from supervisor.errors import SupervisorError

        try:
            client.ensure_engine(self.paths)
        except SupervisorError as exc:
            raise EngineDown(exc.message + (f" ({exc.hint})" if exc.hint else "")) from exc
