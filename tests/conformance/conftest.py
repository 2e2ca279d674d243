"""The conformance suite: the real agent CLIs, at the versions pinned in pins.json, run offline against local
stand-ins of their APIs (tests/fixtures/<cli>/), under the real engine in real 160x48 panes.

Collected only by `make conformance` (`make test` ignores this folder). Each test gets tests/conftest.py's
`sandbox` (its own tmux server, temp HOME, repository and engine) through `real_cli`, which installs the pinned
CLI into the cache (install.py), starts the stand-in on 127.0.0.1 and writes a supervisor.yaml that runs the CLI
with short thresholds. Seeding the CLI's own config in the temp HOME is each CLI's test file's business: what it
needs to run offline differs per CLI (see tests/fixtures/<cli>/README.md).

`SUPERVISOR_CONFORMANCE_RECORD=1` (set by `make conformance-bump`) saves every screen a test names with
`Run.record` as a fixture in tests/fixtures/<cli>/screens/, captured the way the watcher captures it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from supervisor.tmux.server import Tmux
from tests import sandboxed
from tests.conformance.install import install, pins
from tests.conftest import Sandbox, wait_until

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LIMITS = "limits:\n  idle_after: 1s\n  stall_after: 20s\n"  # Claude Code shows no text for ~10 s of a stream


@dataclass
class StandIn:
    """A stand-in of a model API, running on 127.0.0.1 for one test."""

    process: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def stand_in(script: Path, log: Path) -> Iterator[StandIn]:
    process = subprocess.Popen([sys.executable, str(script), "0", "--log", str(log)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{script.name} did not start")
        yield StandIn(process, int(line.rsplit(":", 1)[1]), log)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


@dataclass
class Run:
    """One real CLI under the real engine: the sandbox, the CLI's binary and version, its API stand-in."""

    cli: str
    box: Sandbox
    binary: Path
    version: str
    api: StandIn
    recorded: list[str] = field(default_factory=list)
    user_config: dict[str, Any] = field(default_factory=dict)  # what the test seeded as the user's own config

    def tmux(self) -> Tmux:
        return Tmux(self.box.tmux_socket, self.box.runtime / "unused-tmux.conf")

    def capture(self, name: str) -> str:
        """The agent's screen as the watcher reads it (one `look` at its pane, `capture-pane -p -J`)."""
        pane = self.box.ls()[name]["pane"]
        server = self.tmux()
        try:
            return server.capture_many([pane]).get(pane, "")
        finally:
            server.close()

    def wait_screen(self, name: str, predicate: Callable[[str], Any], timeout: float = 30.0,
                    message: str = "screen") -> str:
        last = [""]

        def check() -> str | None:
            last[0] = self.capture(name)
            return last[0] if predicate(last[0]) else None

        try:
            return str(wait_until(check, timeout, interval=0.2, message=message))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{last[0]}") from None

    def record(self, agent: str, screen_name: str, screen: str | None = None) -> str:
        """Keep this screen as tests/fixtures/<cli>/screens/<screen_name>.txt when recording (bump)."""
        text = screen if screen is not None else self.capture(agent)
        if os.environ.get("SUPERVISOR_CONFORMANCE_RECORD"):
            folder = FIXTURES / self.cli / "screens"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{screen_name}.txt").write_text(self.sanitize(text))
            self.recorded.append(screen_name)
        return text

    def keep(self, relative: str, text: str) -> None:
        """Keep `text` (a file the CLI wrote, sanitized) as tests/fixtures/<cli>/<relative> when recording."""
        if os.environ.get("SUPERVISOR_CONFORMANCE_RECORD"):
            path = FIXTURES / self.cli / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.sanitize(text))
            self.recorded.append(relative)

    def sanitize(self, text: str) -> str:
        """Temp paths of this run as the fixtures spell them (/home/user, /home/user/project)."""
        for path, placeholder in ((self.box.root, "/home/user/project"), (self.box.home, "/home/user")):
            text = text.replace(str(path), placeholder)
            text = text.replace(re.sub(r"[^A-Za-z0-9]", "-", str(path)), re.sub(r"[^A-Za-z0-9]", "-", placeholder))
        return text.replace(str(self.api.port), "PORT")

    def events(self, name: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The agent's events in the store, oldest first (`kind`: only those)."""
        db = sqlite3.connect(self.box.root / ".git" / "supervisor" / "state.db")
        try:
            rows = db.execute("SELECT ts, kind, data FROM events WHERE agent = ? ORDER BY id", (name,)).fetchall()
        finally:
            db.close()
        return [{"at": ts, "kind": row_kind, **json.loads(data)} for ts, row_kind, data in rows
                if kind is None or row_kind == kind]

    def states(self, name: str) -> list[str]:
        """Every state the engine recorded for the agent, in order."""
        return [e["state"] for e in self.events(name) if "state" in e and "previous" in e]

    def hooks(self, name: str) -> list[str]:
        return [str(e.get("hook_event_name")) for e in self.events(name, "hook")]


ZONE = "Europe/Paris"  # the limit tests' time zone (the CLIs', and the engine's: the user's)


def limited_by_the_stand_in(run: Run, name: str, answer: str, seconds: int, timeout: float = 90.0) -> dict[str, Any]:
    """Wait until agent `name` is `limited` by its stand-in's limit answer (`answer`, as its log names it), whose
    reset is `seconds` after it: its reason says the reset in the user's zone, it is no `errors`, and the screen
    is recorded."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    agent = run.box.wait_state(name, "limited", timeout=timeout)
    run.record(name, "conformance_usage_limit")
    asked = [r for r in run.api.requests() if r.get("answer") == answer]
    assert asked, run.api.requests()
    reset = asked[0]["t"] + seconds  # the stand-in's clock, within a second of the CLI's
    asked_on = datetime.fromtimestamp(asked[0]["t"], ZoneInfo(ZONE)).date()
    shown = set()
    for drift in (-2, 0, 1):  # a reset on another day than now is said with its day (an hour before midnight)
        at = datetime.fromtimestamp(reset + drift, ZoneInfo(ZONE))
        shown |= {at.strftime("%H:%M")} | ({at.strftime("%a %d %b %H:%M")} if at.date() != asked_on else set())
    assert agent["waiting_reason"] in {f"usage limit: resets at {when}" for when in shown}, agent
    assert agent["limit"]["kind"] == "usage limit", agent
    assert [e for e in run.events(name, "trigger") if e.get("trigger") == "errors"] == []
    assert [e["active"] for e in run.events(name, "trigger") if e.get("trigger") == "limited"] == [True]
    return agent


class StateTrail:
    """Every state an agent showed, polled from `supervisor ls` in a thread: a test asserts what a human
    watching the list would have seen (a false idle of a second is caught)."""

    def __init__(self, box: Sandbox, name: str, interval: float = 0.25) -> None:
        import threading

        self.box, self.name, self.interval = box, name, interval
        self.seen: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._look()
            self._stop.wait(self.interval)

    def _look(self) -> None:
        with contextlib.suppress(Exception):
            state = self.box.ls().get(self.name, {}).get("state")
            if state and (not self.seen or self.seen[-1][1] != state):
                self.seen.append((time.time(), str(state)))

    def states(self) -> list[str]:
        return [state for _, state in self.seen]

    def stop(self) -> list[str]:
        """The states seen, ending with the one shown now: a test stops the trail once it saw the state it
        waited for, which the thread's last poll may have come just before."""
        self._stop.set()
        self._thread.join(10)
        self._look()
        return self.states()


@pytest.fixture
def real_cli(sandbox: Sandbox, tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """`real_cli(cli, stand_in_script, profile=..., env=..., extra_config=...)` -> Run: the pinned CLI installed,
    its stand-in started, the sandbox's supervisor.yaml running it (with `env` added to the engine's and so the
    panes' environment, before the engine starts)."""
    started: list[contextlib.ExitStack] = []

    def make(cli: str, script: Path, *, profile: str | None = None, args: str = "", env: dict[str, str] | None = None,
             extra_config: str = "") -> Run:
        binary = install(cli)
        stack = contextlib.ExitStack()
        started.append(stack)
        api = stack.enter_context(stand_in(script, tmp_path / f"{cli}-api.log"))
        sandbox.env.update(env or {})
        sandbox.env["PATH"] = f"{binary.parent}:{sandbox.env['PATH']}"
        command = f"{binary} {args}".strip()
        sandbox.write_config(f"agent:\n  profile: {profile or cli}\n  command: {command}\n{LIMITS}{extra_config}")
        return Run(cli=cli, box=sandbox, binary=binary, version=pins()[cli]["version"], api=api)

    try:
        yield make
        if started:  # the CLIs ran in the sandbox, as they do by default (the suite says so when they could not)
            assert not (missed := sandboxed.unsandboxed(sandbox.paths.db_path)), (
                f"the real CLIs must run sandboxed here; launched without a sandbox: {', '.join(missed)} "
                f"({sandboxed.missing_in_ci() or 'is bubblewrap installed? `supervisor doctor` says'})")
    finally:
        for stack in started:
            stack.close()
