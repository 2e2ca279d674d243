"""The host side of the link: JSON lines on stdin → calls run each in a thread of its own → replies and
pushed events on stdout.

Requests `{"id": N, "op": OP, ...args}` are answered `{"id": N, "ok": RESULT}` or `{"id": N, "error": TEXT}`;
a call that sends bytes back (`git_send`) first sends `{"id": N, "chunk": BASE64}` lines. Lines without an id
are pushed events (`{"event": ...}`). Bytes to the host (`git_receive`'s bundle) come first as
`{"op": "chunk", "stream": S, "data": BASE64}` lines, which the reader appends in order before it reads the
request that names stream S, so the request finds its stream whole. Input ends (the connection dropped or the
home side closed it) → the program ends, ending its tmux relays and the commands of calls still running (their
answers could not be given); what runs in tmux on the host is untouched.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from . import agents, clifiles, ending, facts, files, gitops, procs, relay, sandbox_op, treefiles, worktree_facts
from .calls import Call, OpError
from .presence import Presence

Op = Callable[[Call], Any]


class Server:
    def __init__(self, out: BinaryIO, version: str, host_dir: str) -> None:
        self.version = version
        self.host_dir = host_dir
        self._out = out
        self._out_lock = threading.Lock()
        self._streams: dict[str, tuple[BinaryIO, str]] = {}
        self._streams_lock = threading.Lock()
        self.watches = files.Watches(self.event)
        self.relays = relay.Relays(self.event)
        self.agents = agents.AgentSockets(self.event)
        self.presence = Presence()  # the engine is here: the keepers of the panes' transcripts stand by
        self.ops: dict[str, Op] = {
            "ping": lambda call: {"version": self.version, "load1": os.getloadavg()[0]},  # the engine's keep-watch
            "facts": lambda call: facts.hello(self.version, self.host_dir),
            "run": procs.run,
            "cancel": procs.cancel,
            "ps": procs.ps,
            "signal": procs.send_signal,
            "end_tree": ending.end_tree,
            "read": files.read,
            "write": files.write,
            "list": files.listing,
            "remove": files.remove,
            "cli_entries": clifiles.entries,
            "cli_head": clifiles.head,
            "watch": lambda call: self.watches.add(call),
            "unwatch": lambda call: self.watches.remove(call),
            "git_heads": gitops.heads,
            "git_receive": gitops.receive,
            "git_send": gitops.send,
            "worktree_facts": worktree_facts.facts,
            "tmux_start": lambda call: self.relays.start(call),
            "tmux_send": lambda call: self.relays.send(call),
            "tmux_stop": lambda call: self.relays.stop(call),
            "agent_listen": lambda call: self.agents.listen(call),
            "agent_close": lambda call: self.agents.close(call),
            "agent_tie": lambda call: self.agents.tie(call),
            "tree_write": treefiles.tree_write,
            "agent_answer": lambda call: self.agents.answer(call),
            "agent_spooled": agents.spooled,
            "sandbox": sandbox_op.build,
            "transcripts_keep": self.presence.keep,
            "transcript_take": self.presence.take,
            "transcript_drop": self.presence.drop,
            "transcripts_sweep": self.presence.sweep,
        }

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._out_lock:
            try:
                self._out.write(line)
                self._out.flush()
            except (BrokenPipeError, ValueError, OSError):
                os._exit(0)  # the home side is gone: nobody to answer

    def event(self, kind: str, /, **fields: Any) -> None:
        self.send({"event": kind, **fields})

    def serve(self, lines: BinaryIO) -> None:
        for line in lines:
            self.handle(line)
        ending.release_all()  # a stop cut short leaves nothing frozen
        self.agents.close_all()  # nothing answers there now: the agents' hooks spool their events
        self.relays.stop_all()
        procs.end_running()
        with self._streams_lock:
            for handle, path in self._streams.values():
                handle.close()
                _unlink(path)

    def handle(self, line: bytes) -> None:
        self.presence.heard()
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            self.event("protocol_error", error=f"unreadable line ({exc}): {line[:200]!r}")
            return
        op = message.pop("op", None)
        number = message.pop("id", None)
        if op == "chunk" and number is None:
            self._append(message)
            return
        if not isinstance(number, int):
            self.event("protocol_error", error=f"a request without an id: {op!r}")
            return
        handler = self.ops.get(op) if isinstance(op, str) else None
        if handler is None:
            self.send({"id": number, "error": f"unknown op {op!r} (this host program: {self.version})"})
            return
        threading.Thread(target=self._answer, args=(handler, Call(self, number, message)), daemon=True,
                         name=f"op-{op}-{number}").start()

    def _answer(self, handler: Op, call: Call) -> None:
        try:
            result = handler(call)
        except OpError as exc:
            self.send({"id": call.number, "error": str(exc)})
        except OSError as exc:
            self.send({"id": call.number, "error": _os_error(exc)})
        except Exception as exc:  # a fault of this program: said to the caller, the link stays up
            self.send({"id": call.number, "error": f"{type(exc).__name__}: {exc}"})
        else:
            self.send({"id": call.number, "ok": result})

    def _append(self, message: dict[str, Any]) -> None:
        name = str(message.get("stream"))
        with self._streams_lock:
            entry = self._streams.get(name)
            if entry is None:
                descriptor, path = tempfile.mkstemp(prefix="supervisor-upload-")
                entry = (os.fdopen(descriptor, "wb"), path)
                self._streams[name] = entry
        try:
            entry[0].write(base64.b64decode(message.get("data", "")))
        except (OSError, ValueError) as exc:
            self.event("protocol_error", error=f"upload {name}: {exc}")

    def take_stream(self, name: str) -> str:
        with self._streams_lock:
            entry = self._streams.pop(name, None)
        if entry is None:
            raise OpError(f"no upload named {name!r} arrived")
        entry[0].close()
        return entry[1]


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


# What sshd gives the program that nothing it starts (tmux, panes, commands) may have: a forwarded agent or
# display (the user's keys, their screen), and where the user connects from.
SCRUBBED = ("SSH_AUTH_SOCK", "DISPLAY", "XAUTHORITY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")


def main() -> None:
    """`host.pyz VERSION DIR`: say hello, then answer until input ends. `host.pyz client ...`: an agent's
    `supervisor` there (`client`). `host.pyz reap -- ARGV`: an agent's pane command there (`reaper`). `host.pyz
    keep ROOT SOCKET`: the keeper of a repository folder's panes' transcripts while the engine is away (`keeper`)."""
    args = sys.argv[1:]
    if args[:1] == ["client"]:
        from .client import main as client_main

        sys.exit(client_main(args[1:]))
    for key in SCRUBBED:
        os.environ.pop(key, None)
    if args[:1] == ["keep"]:
        from .keeper import main as keeper_main

        sys.exit(keeper_main(args[1:]))
    if args[:1] == ["reap"]:
        from .reaper import main as reaper_main

        sys.exit(reaper_main(args[1:]))
    version = args[0] if args else "unknown"
    host_dir = args[1] if len(args) > 1 else "~"
    server = Server(sys.stdout.buffer, version, host_dir)
    server.send({"event": "hello", **facts.hello(version, host_dir)})
    server.serve(sys.stdin.buffer)
