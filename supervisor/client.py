"""The client side of the engine's API, used by the CLI and the dashboard.

Starting the engine on demand: the engine runs apart, in a session of its own, away from the terminal that
started it and from the tmux server it watches (supervisor/engine/detached.py). A file lock serialises
concurrent starters, and the engine's own lock guarantees a single engine per repository.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from supervisor.engine import unixpath
from supervisor.engine.protocol import ProtocolError, TooLarge, encode, recv_message
from supervisor.errors import SupervisorError, UsageError
from supervisor.paths import RepoPaths


class EngineTimeout(SupervisorError):
    """The engine took the request but did not answer within the client's timeout."""


READ_ONLY = frozenset({"ping", "status", "ls", "show", "attach_info"})
# What the engine's answers noted beside their result (the store cannot be written), for the CLI to show.
notes: list[str] = []


def contract_params(path: str | Path) -> dict[str, str]:
    """The `contract` and `contract_path` of a start request, read from a SESSION.md file and checked here,
    so a broken one is refused (UsageError with its file and line) before anything starts."""
    from supervisor.core.contract import parse_contract

    file = Path(path).expanduser().resolve()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the contract {path}: {getattr(exc, 'strerror', None) or exc}") from None
    parse_contract(text, file)
    return {"contract": text, "contract_path": str(file)}


class EngineNotRunning(SupervisorError):
    pass


class EngineGone(SupervisorError):
    """The engine closed the connection without answering (it was stopping or was killed)."""


def call(paths: RepoPaths, method: str, params: dict[str, Any] | None = None, *, autostart: bool = True,
         timeout: float | None = 600) -> Any:
    """Send one request to the repository's engine (starting it first if needed); the result. From inside an
    agent's pane it goes through that agent's own socket (`own_socket`), which is who it is to the engine."""
    own = own_socket(paths)
    if own is None and os.environ.get("SUPERVISOR_SOCKET"):
        # An agent's command aimed at another repository's engine would reach it through the human's socket,
        # where that engine, which does not know this agent, would take it for the human.
        raise SupervisorError(f"refused: agent {os.environ.get('SUPERVISOR_AGENT') or '?'} reaches only the "
                              f"engine of its own repository, not the one of {paths.root}",
                              hint="run it from your own terminal, outside every agent's pane")
    try:
        return request_at(own or paths.engine_socket, method, params or {}, timeout)
    except EngineNotRunning:
        if own is not None:
            # An engine started from here would live in the agent's process tree and cgroup (and die with
            # it), or in its sandbox, where the store is out of sight: the human's next command starts it.
            raise EngineNotRunning(
                "the engine is not running, and an agent does not start it",
                hint="it starts with the next supervisor command run outside the agents (hook events wait "
                     "in the agent's spool until then)") from None
        if not autostart:
            raise
    except EngineGone:
        if not autostart or method not in READ_ONLY:
            raise  # a change may or may not have happened: never repeat it blindly
    ensure_engine(paths)
    try:
        return request_at(own or paths.engine_socket, method, params or {}, timeout)
    except EngineNotRunning:
        if own is None:
            raise
        raise SupervisorError(f"the engine runs, but this agent's socket {own} is gone: the engine does not run "
                              f"agent {os.environ.get('SUPERVISOR_AGENT') or '?'} any more") from None


def own_socket(paths: RepoPaths) -> Path | None:
    """The calling agent's own socket to this repository's engine (SUPERVISOR_SOCKET, in its pane), if any."""
    given = os.environ.get("SUPERVISOR_SOCKET")
    if not given:
        return None
    path = Path(given)
    return path if path.parent.parent == paths.runtime_dir / "agents" else None


def _request(paths: RepoPaths, method: str, params: dict[str, Any], timeout: float | None) -> Any:
    return request_at(paths.engine_socket, method, params, timeout)


def request_at(socket_path: Path | str, method: str, params: dict[str, Any], timeout: float | None) -> Any:
    """One request to the engine listening on `socket_path` (no auto-start). One larger than the engine takes
    is refused here, before it connects."""
    try:
        line = encode({"method": method, "params": params})
    except TooLarge as exc:
        raise UsageError(str(exc)) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        _connect(sock, str(socket_path), timeout)
        sent_error: OSError | None = None
        try:
            try:
                sock.sendall(line)
            except (BrokenPipeError, ConnectionResetError) as exc:
                sent_error = exc  # it may have answered why it stopped reading: read that
            reply = recv_message(sock)
        except TimeoutError:
            raise
        except (ProtocolError, OSError) as exc:  # it closed the connection: stopping, or killed
            cause = sent_error or exc
            raise EngineGone(f"the engine did not answer: {cause}", hint="see `supervisor engine status`") from exc
    except TimeoutError as exc:
        raise EngineTimeout(f"the engine did not answer {method} in time") from exc
    finally:
        sock.close()
    if reply.get("ok"):
        if reply.get("note"):
            notes.append(str(reply["note"]))
        return reply.get("result")
    error_cls = UsageError if reply.get("exit_code") == 2 else SupervisorError
    raise error_cls(str(reply.get("error")), hint=reply.get("hint"))


def _connect(sock: socket.socket, path: str, timeout: float | None) -> None:
    """Connect, waiting out a full backlog: on a Unix socket with a timeout, connect fails at once with
    EAGAIN while the engine has more connections waiting than it has accepted (a burst of CLIs)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            unixpath.connect(sock, path)
            return
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise EngineNotRunning("the engine is not running", hint="`supervisor engine start` starts it") from exc
        except BlockingIOError as exc:
            if deadline is not None and time.monotonic() + pause > deadline:
                raise TimeoutError("the engine's socket stayed full") from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def engine_running(paths: RepoPaths) -> bool:
    try:
        _request(paths, "ping", {}, 5)
    except (EngineNotRunning, EngineGone):
        return False
    return True


def ensure_engine(paths: RepoPaths, wait: float = 20.0) -> None:
    """Start the engine (apart from this process and its terminal) unless it answers already. An engine that
    holds its lock and says what it is doing (`engine-starting`) is waited for as long as it says something new
    within `wait` seconds: adopting hundreds of agents may take longer than any fixed wait."""
    from supervisor.config import load_config  # validated here so a bad file is refused before any start
    from supervisor.engine.detached import launch
    from supervisor.engine.startup import start_failure, start_note
    from supervisor.engine.whose import refuse_inside_an_agent

    if engine_running(paths):
        return
    refuse_inside_an_agent(paths)
    load_config(paths.root)
    paths.ensure_dirs()
    with open(paths.runtime_dir / "start.lock", "a") as start_lock:
        fcntl.flock(start_lock, fcntl.LOCK_EX)
        if engine_running(paths):
            return
        deadline = time.monotonic() + wait
        launched = False
        while time.monotonic() < deadline:
            if engine_running(paths):
                return
            # An engine that holds its lock is starting, or stopping: start a new one only once no engine holds it.
            held = _engine_lock_held(paths.engine_lock)
            repairing = repair_holding(paths.engine_lock) if held else None
            if repairing is not None:
                raise SupervisorError(f"the engine cannot start: `supervisor {repairing}` is repairing the store",
                                      hint="try again once it is done")
            if launched and not held:  # the engine it launched has ended: it says why, if it could
                failure = start_failure(paths.engine_failed)
                if failure is not None:
                    raise failure
            if not launched and not held:
                paths.engine_failed.unlink(missing_ok=True)  # an earlier start's reason is not this one's
                paths.engine_starting.unlink(missing_ok=True)  # nor what an engine killed while starting said
                launch(paths)
                launched = True
            note = start_note(paths.engine_starting) if held else None
            if note is not None:  # it says it is starting: waited for while it says something new
                deadline = max(deadline, time.monotonic() - note[1] + wait)
            time.sleep(0.05)
    hint = f"see {paths.engine_log} and {paths.engine_output}, or run `supervisor engine --foreground` to see why"
    note = start_note(paths.engine_starting) if _engine_lock_held(paths.engine_lock) else None
    if note is not None:
        raise SupervisorError(f"the engine did not start: it has been {note[0]} for {note[1]:.0f} s and does not "
                              "answer", hint=hint)
    raise SupervisorError("the engine did not start", hint=hint)


REPAIRING = "doctor --repair"  # what the engine lock's file says while a repair holds it


def repair_holding(lock_path: Path) -> str | None:
    """`doctor --repair (pid N)` when a repair of the store holds the engine lock, else None. The file's text
    means something only while its lock is held (an engine clears it when it takes the lock)."""
    try:
        text = lock_path.read_text(errors="replace").strip()
    except OSError:
        return None
    if not text.startswith(REPAIRING):
        return None
    return f"{REPAIRING} (pid {text[len(REPAIRING):].strip()})"


def engine_lock_held(paths: RepoPaths) -> bool:
    """Whether an engine of this repository still holds its lock (starting, running or on its way out)."""
    return _engine_lock_held(paths.engine_lock)


def _engine_lock_held(lock_path: Path) -> bool:
    """Whether a live engine holds its lock (it may be starting and not answer yet)."""
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def take_engine_lock(handle: IO[str], patience: float = 1.0) -> bool:
    """Take the engine lock, or False if another engine holds it. A command asking whether an engine holds it
    (`engine_lock_held`) takes it for a moment to learn that: a lock still held after `patience` seconds
    is an engine's, not such a question."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
