"""Running the engine in the foreground, and telling the one who started it why a start failed.

An engine is started apart from any terminal (supervisor/engine/detached.py), so what it prints is seen by
nobody: the reason a start failed goes to engine.log and to `engine-failed` in the state directory, where the
client that is waiting for it reads it and shows it as its own error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import __version__
from supervisor.core.unwritten import is_write_fault
from supervisor.engine.callers import tied_agent
from supervisor.errors import SupervisorError
from supervisor.paths import RepoPaths

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger("supervisor.engine")

ENGINE_LOG_BYTES = 10 * 1024 * 1024  # then engine.log moves to engine.log.1 (two older files are kept)


def run_foreground(paths: RepoPaths, *, detached: bool = False) -> int:
    """Log to engine.log (and to stderr, in a terminal), then run the engine until it stops; a failed start is
    logged, recorded for the waiting client, and raised. `detached`: started apart by a command (see
    `detached.launch`): it forks away from its starter first, and no hangup stops it."""
    from supervisor.engine.diskfaults import KeepingFileHandler
    from supervisor.engine.engine import Engine
    from supervisor.engine.whose import refuse_inside_an_agent

    refuse_inside_an_agent(paths)  # before anything is made or logged: from an agent's pane, nothing starts
    if detached:
        from supervisor.engine.detached import detach

        detach()
    paths.ensure_dirs()
    raise_descriptor_limit()
    # Detached, stderr is engine.out: the log lines would only be there twice.
    handlers: list[logging.Handler] = [] if detached else [logging.StreamHandler(sys.stderr)]
    # An engine runs for weeks; an error that repeats every pass must not fill the disk, and a line the disk
    # refuses now is kept and written once it can be.
    handlers.append(KeepingFileHandler(str(paths.engine_log), ENGINE_LOG_BYTES, 2))
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        try:
            engine = Engine(paths)
        except (OSError, sqlite3.OperationalError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and not is_write_fault(exc):
                raise
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise SupervisorError(f"the engine cannot start: {paths.state_dir} cannot be written ({reason})",
                                  hint="free space there or make it writable, then run the command again") from None
        tied = tied_agent(os.getpid(), engine.store.agents())  # adopted by an agent's first process after detaching
        if tied is not None:
            engine.store.close()
            raise SupervisorError(f"the engine is not running, and an agent does not start it: it was started "
                                  f"inside agent {tied.name}'s process tree",
                                  hint="run the command from your own terminal, outside every agent's pane")
        engine.serve(hangup_stops=not detached)
    except SupervisorError as exc:
        _failed(paths, exc.message, exc.hint)
        raise
    except Exception as exc:
        log.exception("the engine stopped on an error")
        error = f"internal error: {type(exc).__name__}: {exc}"
        _failed(paths, error, f"the traceback is in {paths.engine_log}")
        raise SupervisorError(error) from exc
    return 0


def raise_descriptor_limit() -> None:
    """Every connection takes a descriptor: the soft limit (often 1024) raised to the hard one, so that many
    open connections are refused one by one (supervisor/engine/server.py) long before the engine runs out."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = max(soft, 1 << 20) if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _failed(paths: RepoPaths, error: str, hint: str | None) -> None:
    log.error("engine: %s%s", error, f" (hint: {hint})" if hint else "")
    try:
        paths.engine_failed.write_text(json.dumps({"error": error, "hint": hint}) + "\n")
    except OSError as exc:  # a full disk or read-only folder: engine.log and engine.out still say it
        log.error("could not write %s: %s", paths.engine_failed, exc)


def start_failure(path: Path) -> SupervisorError | None:
    """The error recorded by the last engine start that failed, if it left one."""
    try:
        data = json.loads(path.read_text())
        return SupervisorError(f"the engine did not start: {data['error']}", hint=data.get("hint"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class StartNote:
    """What a starting engine is doing, said in `paths.engine_starting` until it answers requests: the command
    that waits for it waits as long as this keeps moving (adopting hundreds of agents on a loaded machine takes
    longer than any fixed wait), and, if it stops moving, says where the start stands."""

    EVERY = 0.5  # seconds between two writes of the same step's progress

    def __init__(self, path: Path) -> None:
        self.path = path
        self._said = ("", -1e9)

    def say(self, step: str, done: int | None = None, of: int | None = None) -> None:
        """The step under way (`done` of `of` when it counts something); a count is written every EVERY s."""
        now = time.monotonic()
        if step == self._said[0] and done is not None and done != of and now - self._said[1] < self.EVERY:
            return
        self._said = (step, now)
        text = f"{step} ({done} of {of})" if done is not None and of is not None else step
        try:
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            temporary.write_text(f"{text}\n")
            os.replace(temporary, self.path)
        except OSError as exc:  # a full disk: the client waits its fixed time, and engine.log says why
            log.warning("could not write %s: %s", self.path, exc)

    def done(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def start_note(path: Path) -> tuple[str, float] | None:
    """What the starting engine last said it was doing, and how many seconds ago; None when it said nothing."""
    try:
        text = path.read_text(errors="replace").strip()
        age = time.time() - path.stat().st_mtime
    except OSError:
        return None
    return (text or "starting", max(0.0, age))


def take_over(engine: Engine, note: StartNote) -> None:
    """What an engine does once it holds the lock and before it answers: the store brought up to date, the
    agents a previous engine left adopted, the services started, each live agent's socket listened on again.
    Each step said in `note` as it goes."""
    from supervisor.engine import branch_names, rebuild
    from supervisor.engine.once import HookLedger

    note.say("opening the store")
    engine.hooks_once = HookLedger(engine.store)  # no other engine applies events from now on
    engine.tmux.use_control()
    engine.store.set_meta("engine_pid", str(os.getpid()))
    engine.store.append_event(None, "engine_started", pid=os.getpid(), version=__version__)
    note.say("bringing the records up to date")
    branch_names.migrate(engine)  # branches `agent/NAME` of earlier versions become `agent/NAME/work`
    rebuild.at_start(engine)  # agents whose records the store lacks, from their panes and worktrees
    note.say("checking the stored contracts")
    engine.contracts.load()  # every stored contract checked against its digest; the guard's files written
    engine.watcher.adopt(lambda done, of: note.say("adopting the agents", done, of))
    note.say("reading the hook spools")
    try:
        engine.hookdesk.ingest_spool()
    except Exception as exc:  # what an agent left in its spool never keeps the engine from starting
        log.exception("reading the hook spools failed")
        engine.store.append_event(None, "spool_unreadable", error=repr(exc))
    note.say("starting its services")
    for service in engine.services:
        service.start()
    agents = engine.store.agents()
    for index, agent in enumerate(agents):
        note.say("opening the agents' sockets", index, len(agents))
        engine.ready_socket(agent)
