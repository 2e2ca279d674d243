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
from pathlib import Path

from supervisor.core.unwritten import is_write_fault
from supervisor.engine.callers import tied_agent
from supervisor.errors import SupervisorError
from supervisor.paths import RepoPaths

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
