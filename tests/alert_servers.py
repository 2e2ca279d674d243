"""Real local servers for the alert channels: a Slack Web API stand-in over HTTP and SMTP through aiosmtpd.

SlackServer speaks what supervisor uses: `chat.postMessage` (keeping each message's metadata), `auth.test`,
`conversations.history`, `conversations.replies` and `conversations.list` (JSON or form bodies, bearer token;
the channel `#agents` has the id C0AGENTS, which the reads require, as Slack's do) and an incoming-webhook path.
It can answer with scripted failures (429 with Retry-After, 500), sleep before answering, hold a post (before
or after accepting it) until the test lets it go, and be stopped and started again on the same port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

TOKEN = "xoxb-test-token-0123456789"
WEBHOOK_PATH = "/services/T0000/B0000/webhooksecret0123"
CHANNEL_ID = "C0AGENTS"
CHANNEL_NAME = "agents"


class PortHold:
    """A port for a stand-in server, held while the server is down: bound but not listening, so a connection
    to it is refused as by a server that is down, and no other test's server or connection can take it."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self.port = self._bind(0)

    def _bind(self, port: int) -> int:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind it after us
        sock.bind(("127.0.0.1", port))
        self._sock = sock
        return int(sock.getsockname()[1])

    def release(self) -> None:
        """Just before the server binds it."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def hold(self) -> None:
        """Again, once the server has let it go."""
        if self._sock is None:
            self._bind(self.port)


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class SlackServer:
    token: str = TOKEN
    _hold: PortHold = field(default_factory=PortHold)
    delay: float = 0.0  # seconds to sleep before answering each request
    requests: list[Request] = field(default_factory=list)  # every request, as it arrived
    messages: list[dict[str, Any]] = field(default_factory=list)  # every message accepted (answered ok)
    failures: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)  # scripted answers, in order
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: int = 0
    _holding: tuple[str, int] | None = None  # (when, posts to let through first): see hold_post
    held: threading.Event = field(default_factory=threading.Event)  # a held post has arrived (and is waiting)
    _release: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return self._hold.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def hold_post(self, when: str, after: int = 0) -> None:
        """Hold the post after the next `after` ones: `accepted` stores it first (it is in the channel, its
        answer not yet sent), `arrived` does not (it never reaches the channel). `held` is set once it waits;
        `let_go` ends the wait (an accepted post is then answered, an arrived one dropped with a 500)."""
        assert when in ("accepted", "arrived")
        with self._lock:
            self._holding = (when, after)

    def let_go(self) -> None:
        self._release.set()

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        for _ in range(times):
            self.failures.append((status, headers))

    def start(self) -> SlackServer:
        self._hold.release()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._hold.hold()

    def reply(self, thread_ts: str, text: str, user: str = "U0HUMAN") -> str:
        """A human's reply in a thread (what `conversations.replies` then returns)."""
        with self._lock:
            ts = self._next_ts()
            self.messages.append({"path": "human", "thread_ts": thread_ts, "text": text, "user": user, "ts": ts})
        return ts

    def thread_messages(self, thread_ts: str) -> list[dict[str, Any]]:
        with self._lock:
            found = [m for m in self.messages if m.get("ts") == thread_ts or m.get("thread_ts") == thread_ts]
        return sorted(found, key=lambda m: float(m["ts"]))

    def _next_ts(self) -> str:
        """A message's ts as Slack makes it: the time it was stored, in microseconds, unique in the channel."""
        self._ts = max(self._ts + 1, int(time.time() * 1_000_000))
        return f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"

    def posted(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m["path"].endswith("chat.postMessage")]

    def calls(self, method: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == f"/api/{method}"]

    def _held(self) -> str | None:
        """Whether this post is the one to hold, and when."""
        with self._lock:
            if self._holding is None:
                return None
            when, after = self._holding
            if after > 0:
                self._holding = (when, after - 1)
                return None
            self._holding = None
        return when

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        if not body.get("channel") or not body.get("text"):
            return 200, {}, {"ok": False, "error": "no_text"}
        metadata = body.get("metadata")
        if isinstance(metadata, str):  # a form body carries it as JSON text
            metadata = json.loads(metadata)
        hold = self._held()
        if hold == "arrived":
            self.held.set()
            self._release.wait(60)
            return 500, {}, {"ok": False, "error": "internal_error"}
        with self._lock:
            ts = self._next_ts()
            self.messages.append({"path": path, **body, "metadata": metadata, "channel_id": CHANNEL_ID, "ts": ts,
                                  "at": time.time(), "bot_id": "B0SUPER"})
        if hold == "accepted":
            self.held.set()
            self._release.wait(60)
        return 200, {}, {"ok": True, "channel": CHANNEL_ID, "ts": ts, "message": {"text": body["text"], "ts": ts}}

    def _read(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        """conversations.history (top-level messages, newest first), .replies (a thread, oldest first) and
        .list, paged by `limit` and `cursor`; metadata only with include_all_metadata, as Slack does."""
        if method == "conversations.list":
            return 200, {}, {"ok": True, "channels": [{"id": CHANNEL_ID, "name": CHANNEL_NAME, "is_channel": True}],
                             "response_metadata": {"next_cursor": ""}}
        if body.get("channel") != CHANNEL_ID:
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        oldest = float(body.get("oldest") or 0)
        with self._lock:
            stored = [m for m in self.messages if m["path"] != WEBHOOK_PATH]
        if method == "conversations.replies":
            thread = str(body.get("ts"))
            if not any(m["ts"] == thread for m in stored):
                return 200, {}, {"ok": False, "error": "thread_not_found"}
            found = sorted((m for m in stored if m["ts"] == thread or m.get("thread_ts") == thread),
                           key=lambda m: float(m["ts"]))
            found = [m for m in found if m["ts"] == thread or float(m["ts"]) > oldest]
        else:
            top = [m for m in stored if not m.get("thread_ts") or m.get("reply_broadcast") in (True, "true", "1")]
            found = sorted((m for m in top if float(m["ts"]) > oldest), key=lambda m: -float(m["ts"]))
        start = int(body.get("cursor") or 0)
        limit = int(body.get("limit") or 100)
        page = found[start:start + limit]
        more = start + limit < len(found)
        keys = {"ts", "text", "user", "thread_ts", "bot_id"}
        if str(body.get("include_all_metadata")).lower() in ("1", "true"):
            keys.add("metadata")
        messages = [{k: v for k, v in m.items() if k in keys and v is not None} for m in page]
        return 200, {}, {"ok": True, "messages": messages, "has_more": more,
                         "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _answer(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(Request(path, body, headers, time.time()))
            scripted = self.failures.popleft() if self.failures else None
        if self.delay:
            time.sleep(self.delay)
        if scripted is not None:
            status, extra = scripted
            error = "ratelimited" if status == 429 else "internal_error"
            return status, extra, {"ok": False, "error": error}
        if path == WEBHOOK_PATH:
            with self._lock:
                self.messages.append({"path": path, **body, "at": time.time()})
            return 200, {}, "ok"
        if headers.get("authorization") != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if path == "/api/auth.test":
            return 200, {}, {"ok": True, "team": "Test Team", "user": "supervisor", "url": "https://test.slack.com/"}
        if path == "/api/chat.postMessage":
            return self._post(path, body)
        method = path.removeprefix("/api/")
        if method in ("conversations.history", "conversations.replies", "conversations.list"):
            return self._read(method, body)
        return 404, {}, {"ok": False, "error": "unknown_method"}


def _handler(slack: SlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            kind = self.headers.get("Content-Type") or ""
            body: dict[str, Any] = json.loads(raw) if raw and "json" in kind else dict(parse_qsl(raw))
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, extra, payload = slack._answer(self.path, body, headers)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            with contextlib.suppress(OSError):  # the client gave up (a test ended during a slow answer)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        def do_GET(self) -> None:  # slack-sdk reads (conversations.replies) with GET and a query string
            path, _, query = self.path.partition("?")
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, _extra, payload = slack._answer(path, dict(parse_qsl(query)), headers)
            data = json.dumps(payload).encode()
            with contextlib.suppress(OSError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# SMTP ---------------------------------------------------------------------------------------------------


@dataclass
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost (trusted in tests through `ca_file`)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
        check=True, capture_output=True)
    return Certificate(cert, key)


class _Recorder:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = message_from_bytes(content, policy=policy.default)  # headers decoded
        with self.server.lock:
            self.server.messages.append(message)
            self.server.envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1: plain, STARTTLS (required) or implicit TLS; optional login."""

    security: str = "plain"  # plain | starttls | ssl
    certificate: Certificate | None = None
    login: tuple[str, str] | None = None
    _hold: PortHold = field(default_factory=PortHold)
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    @property
    def port(self) -> int:
        return self._hold.port

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.security != "plain":
            assert self.certificate is not None
            context = self.certificate.server_context()
            if self.security == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if self.login is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=self.security != "plain")
        self._hold.release()
        controller = Controller(_Recorder(self), hostname="127.0.0.1", port=self.port, **kwargs)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self._hold.hold()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.login is not None and (
            auth_data.login.decode(), auth_data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def received(self) -> list[Message]:
        with self.lock:
            return list(self.messages)


# An in-process engine ------------------------------------------------------------------------------------


class Rig:
    """A real Engine object for a scratch repository (its store, config and alert service, no watcher and no
    tmux server), with its alert service running: trigger events go in through `fire`, as the watcher does."""

    def __init__(self, root: Path) -> None:
        from supervisor.alerts.service import AlertService
        from supervisor.engine.engine import Engine
        from supervisor.paths import RepoPaths

        self.root = root
        self.engine = Engine(RepoPaths(root=root, common_dir=root / ".git"))
        self.alerts = next(s for s in self.engine.services if isinstance(s, AlertService))
        self.alerts.start()
        self.closed = False

    def fire(self, name: str, trigger: str, summary: str, *, active: bool = True, task: str | None = "the task",
             screen: list[str] | None = None, **evidence: Any) -> int:
        from supervisor.core.model import Agent
        from supervisor.core.triggers import Trigger, fire

        agent = Agent(name=name, profile="generic", command="true", worktree=str(self.root),
                      branch=f"agent/{name}/work",
                      base="HEAD", target="main", task=task)
        return fire(self.engine.store, agent, Trigger(trigger), summary, active=active, screen=screen, **evidence)

    def event(self, name: str, kind: str, **data: Any) -> int:
        return self.engine.store.append_event(name, kind, **data)

    def history(self, name: str | None = None) -> list[dict[str, Any]]:
        """The alerts written so far, oldest first."""
        return list(reversed(self.alerts.op_alerts(name, limit=1000)))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.alerts.stop()
            self.engine.store.close()


def make_repo(root: Path, config: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    (root / "supervisor.yaml").write_text(config)
    return root


class Rigs:
    """Makes the Rig of a test's scratch repository (again, to restart it) and closes them all at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "repo"
        self.made: list[Rig] = []

    def __call__(self, alerts: str) -> Rig:
        """A running Rig; the first call writes supervisor.yaml with `alerts:` lines (tmux off) added."""
        if not self.root.exists():
            make_repo(self.root, "alerts:\n  tmux: false\n" + alerts)
        self.made.append(Rig(self.root))
        return self.made[-1]

    def reconfigure(self, alerts: str) -> None:
        (self.root / "supervisor.yaml").write_text("alerts:\n  tmux: false\n" + alerts)

    def close(self) -> None:
        for rig in self.made:
            rig.close()
