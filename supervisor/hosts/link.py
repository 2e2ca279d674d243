"""The home side of one host's link: one process (ssh, or any transport whose stdio carries the protocol)
speaking JSON lines with the host-side program (`supervisor.hostside`), many calls in flight at once.

`Link(name, argv)` then `connect()`: the transport starts, the bootstrap installs the program if the host
lacks this version (`hostapp`), and the host's `hello` comes back. `call(op, **args)` is thread-safe and
blocks only its caller; pushed events go to `on_event` (on the reader thread: hand them off, do not block).
A reader thread blocked on the pipe notices a dropped connection at once: every pending call fails with
`LinkDown` naming the host and ssh's last stderr line, and `on_down` is called exactly once (not after
`close()`, which is deliberate). A link is not reconnected: make a new one (the engine's backoff does).

What the host sends is bounded and checked as it comes (an agent on the host may speak for the host program): a
line longer than LINE_LIMIT, an answer with an id that is not a number, or a line the reader cannot take drops
the link at once, saying why; a call's bytes past CALL_BYTES_LIMIT fail that call; `hello` and `install` count
only before the greeting (a later one cannot move where the engine thinks the host's folder is).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import itertools
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from supervisor.errors import SupervisorError
from supervisor.hosts.hostapp import HostApp, host_app

log = logging.getLogger(__name__)

CHUNK = 48 * 1024  # raw bytes per chunk line sent to the host
EXIT_NOT_FOUND = 127  # the shell's "command not found": no python3 on the host
LINE_LIMIT = 16 << 20  # bytes in one line from the host (a `run`'s whole output is one line)
CALL_BYTES_LIMIT = 1 << 30  # bytes a call may bring back ahead of its answer (a bundle)


class LinkError(SupervisorError):
    """The link to a host failed: it could not be made, or a call on it failed."""


class LinkDown(LinkError):
    """The connection is gone (or was never made): nothing more goes through this link."""


class LinkTimeout(LinkError):
    """A call had no answer in time (the link may still be up)."""


class RemoteError(LinkError):
    """The host answered a call with an error."""


@dataclass
class _Pending:
    op: str
    done: threading.Event = field(default_factory=threading.Event)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0  # bytes in chunks
    result: Any = None
    error: LinkError | None = None


class Link:
    def __init__(self, name: str, argv: Sequence[str], *, on_event: Callable[[dict[str, Any]], None] | None = None,
                 on_down: Callable[[LinkDown], None] | None = None, env: Mapping[str, str] | None = None,
                 app: HostApp | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.app = app or host_app()
        self.hello: dict[str, Any] = {}
        self.installed = False  # whether this connection installed the host program
        self._on_event = on_event
        self._on_down = on_down
        self._env = None if env is None else dict(env)
        self._process: subprocess.Popen[bytes] | None = None
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._numbers = itertools.count(1)
        self._streams = itertools.count(1)
        self._greeted = threading.Event()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._stderr_done = threading.Event()
        self._down: LinkDown | None = None
        self._closing = False
        self._fatal: str | None = None  # what the host said before giving up (the bootstrap's checks)

    # -- connecting

    def connect(self, timeout: float = 60.0) -> dict[str, Any]:
        """Start the transport and wait for the host's hello (installing the program first if the host asks).
        LinkDown when the host cannot be reached or cannot run the program, saying why."""
        if self._process is not None:
            raise LinkError(f"{self.name}: a link connects once (make a new Link to reconnect)")
        try:
            self._process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, env=self._env, start_new_session=True)
        except OSError as exc:
            raise LinkDown(f"{self.name}: cannot start {self.argv[0]}: {exc.strerror or exc}") from None
        threading.Thread(target=self._read_stderr, daemon=True, name=f"link-{self.name}-stderr").start()
        threading.Thread(target=self._read, daemon=True, name=f"link-{self.name}").start()
        if not self._greeted.wait(timeout):
            self._fail(f"no answer within {timeout:g}s")
            self.close()
        if self._down is not None:
            raise self._down
        return self.hello

    @property
    def up(self) -> bool:
        return self._greeted.is_set() and self._down is None and not self._closing

    # -- calls

    def call(self, op: str, *, timeout: float = 60.0, payload: bytes | None = None, **args: Any) -> Any:
        """Run `op` on the host with `args` (JSON values) and return its result; `payload`: bytes sent ahead
        (the op finds them as its `stream`). RemoteError when the host says it failed, LinkTimeout, LinkDown."""
        return self.call_payload(op, timeout=timeout, payload=payload, **args)[0]

    def call_payload(self, op: str, *, timeout: float = 60.0, payload: bytes | None = None,
                     **args: Any) -> tuple[Any, bytes]:
        """`call`, with the bytes the host sent back ahead of its answer (a bundle)."""
        if self._down is not None:
            raise self._down
        if not self._greeted.is_set():
            raise LinkDown(f"{self.name}: not connected")
        number = next(self._numbers)
        pending = _Pending(op)
        lines: list[bytes] = []
        if payload is not None:
            stream = f"s{next(self._streams)}"
            args["stream"] = stream
            lines += [_line({"op": "chunk", "stream": stream, "data": base64.b64encode(payload[at:at + CHUNK])
                             .decode()}) for at in range(0, len(payload), CHUNK)] or \
                [_line({"op": "chunk", "stream": stream, "data": ""})]
        lines.append(_line({"id": number, "op": op, **args}))
        with self._lock:
            if self._down is not None:
                raise self._down
            self._pending[number] = pending
        self._write(lines)
        if not pending.done.wait(timeout):
            with self._lock:
                self._pending.pop(number, None)
            raise LinkTimeout(f"{self.name}: {op} had no answer within {timeout:g}s")
        if pending.error is not None:
            raise pending.error
        return pending.result, b"".join(pending.chunks)

    def close(self) -> None:
        """End the link: the transport's input closes (the host program ends; what it started in tmux stays),
        pending calls fail. on_down is not called."""
        self._closing = True
        process = self._process
        if process is None:
            return
        with contextlib.suppress(OSError), self._write_lock:
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._fail("closed")

    # -- the reader and writer

    def _write(self, lines: list[bytes]) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            with self._write_lock:
                for line in lines:
                    process.stdin.write(line)
                process.stdin.flush()
        except (OSError, ValueError):
            self._fail("the connection's input closed")
            assert self._down is not None
            raise self._down from None

    def _read(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        reason: str | None = None
        try:
            while True:
                line = process.stdout.readline(LINE_LIMIT + 1)
                if not line:
                    break
                if len(line) > LINE_LIMIT:
                    reason = f"the host sent a line longer than {LINE_LIMIT} bytes; the link is dropped"
                    break
                self._received(line)
        except _Unreadable as exc:
            reason = f"{exc}; the link is dropped"
        except (OSError, ValueError):
            pass  # the pipe closed under the reader
        except Exception as exc:  # never a silent end of this thread: the link fails, saying why
            log.exception("%s: the link's reader failed", self.name)
            reason = f"the link's reader failed on what the host sent ({type(exc).__name__}); the link is dropped"
        self._fail(reason)

    def _received(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except RecursionError:
            raise _Unreadable("the host sent a line nested too deep to read") from None
        except ValueError:
            message = None
        if not isinstance(message, dict):
            # A login script that prints on a non-interactive shell: said once it matters (a failed connect).
            self._stderr.append(line.decode("utf-8", "replace").rstrip())
            return
        if "id" in message:
            number = message["id"]
            if type(number) is not int:
                raise _Unreadable(f"the host sent an answer whose id is not a number ({str(number)[:40]!r})")
            self._answer(number, message)
            return
        event = message.get("event")
        if event in ("hello", "install", "fatal") and self._greeted.is_set():
            # Only the bootstrap and the program's first line say these: later, it is not the host program.
            log.warning("%s: the host sent %r after its greeting; ignored", self.name, str(event)[:40])
        elif event == "hello":
            self.hello = message
            self._greeted.set()
        elif event == "install":
            self.installed = True
            with contextlib.suppress(LinkDown):
                self._write([f"{len(self.app.data)}\n".encode(), self.app.data])
        elif event == "fatal":
            self._fatal = str(message.get("error"))
        elif self._on_event is not None:
            try:
                self._on_event(message)
            except Exception:
                log.exception("%s: the handler of a pushed %s event failed", self.name, event)

    def _answer(self, number: Any, message: dict[str, Any]) -> None:
        with self._lock:
            pending = self._pending.get(number)
            if pending is None:
                return  # its caller gave up (timeout)
            if "chunk" in message:
                chunk = message["chunk"]
                if not isinstance(chunk, str):
                    raise _Unreadable("the host sent a chunk that is not text")
                if pending.size + len(chunk) * 3 // 4 <= CALL_BYTES_LIMIT:
                    try:
                        data = base64.b64decode(chunk, validate=True)
                    except ValueError:
                        raise _Unreadable("the host sent a chunk that is not base64") from None
                    pending.chunks.append(data)
                    pending.size += len(data)
                    return
                del self._pending[number]  # the rest of its chunks and its answer are dropped as they come
                pending.chunks.clear()
                pending.error = LinkError(f"{self.name}: {pending.op}: the host sent more than "
                                          f"{CALL_BYTES_LIMIT} bytes for one call")
                pending.done.set()
                return
            del self._pending[number]
        if "error" in message:
            pending.error = RemoteError(f"{self.name}: {pending.op}: {message['error']}")
        else:
            pending.result = message.get("ok")
        pending.done.set()

    def _read_stderr(self) -> None:
        process = self._process
        assert process is not None and process.stderr is not None
        with contextlib.suppress(OSError, ValueError):
            for line in process.stderr:
                text = line.decode("utf-8", "replace").rstrip()
                if text:
                    self._stderr.append(text)
        self._stderr_done.set()

    def _fail(self, reason: str | None) -> None:
        """The link is down: say why once, fail every pending call, and tell on_down (unless closed)."""
        if self._down is not None:
            return
        error = LinkDown(self._why(reason))  # may wait a moment for ssh's exit and last words: not under the lock
        with self._lock:
            if self._down is not None:
                return
            self._down = error
            pending, self._pending = list(self._pending.values()), {}
        for call in pending:
            call.error = LinkDown(f"{error} (during {call.op})")
            call.done.set()
        self._greeted.set()  # a connect still waiting learns it now
        if self._process is not None and self._process.poll() is None and not self._closing:
            with contextlib.suppress(OSError):
                self._process.kill()
        if not self._closing and self._on_down is not None and self.hello:
            try:
                self._on_down(error)
            except Exception:
                log.exception("%s: the handler of the link going down failed", self.name)

    def _why(self, reason: str | None) -> str:
        """The host's name, what happened, and ssh's last word on it."""
        if self._closing:
            return f"{self.name}: the link was closed"
        process = self._process
        code = None
        if process is not None and reason is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = process.wait(timeout=5)
            self._stderr_done.wait(2)  # its last line may still be on its way
        said = self._stderr[-1] if self._stderr else None
        if self._fatal is not None:
            return f"{self.name}: {self._fatal}"
        if not self.hello and code == EXIT_NOT_FOUND:
            return (f"{self.name}: python3 was not found on the host (supervisor needs Python >= 3.11 there)"
                    + (f": {said}" if said else ""))
        what = reason or ("the connection dropped" if self.hello else "could not connect")
        if code is not None:
            what += f" (exit {code})"
        return f"{self.name}: {what}" + (f": {said}" if said else "")


class _Unreadable(Exception):
    """What the host sent is not the protocol: the link is dropped (said as the message)."""


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def local_argv(app: HostApp, host_dir: str, python: str | None = None) -> list[str]:
    """The protocol without ssh: the host program run on this machine (tests, `hosts check` of local)."""
    return app.boot_words(host_dir, python or sys.executable)

