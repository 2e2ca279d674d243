"""Running the engine in the foreground, and telling the one who started it why a start failed.

An engine is started apart from any terminal (supervisor/engine/detached.py), so what it prints is seen by
nobody: the reason a start failed goes to engine.log and to `engine-failed` in the state directory, where the
client that is waiting for it reads it and shows it as its own error.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from pathlib import Path

from supervisor.core.unwritten import is_write_fault
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

    if detached:
        from supervisor.engine.detached import detach

        detach()
    paths.ensure_dirs()
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
