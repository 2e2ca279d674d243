"""tmux control mode relayed over the link: `tmux -C -S SOCKET ARGS` runs on the host, its raw output is pushed
home as it comes (`{"event": "tmux", "relay": NAME, "data": BASE64}`, what one read brought: the bytes as tmux
wrote them, not cut into lines, so neither side decodes or encodes thousands of screen rows as JSON strings each
tick), and commands are written to it (`tmux_send`). The home side parses the bytes as it parses a local
`tmux -C`'s. When it ends: `{"event": "tmux_exit", "relay": NAME, "rc": N, "stderr": TEXT}`."""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from .calls import Call, OpError

READ_BYTES = 64 * 1024


class Relays:
    def __init__(self, push: Callable[..., None]) -> None:
        self._push = push
        self._lock = threading.Lock()
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, call: Call) -> dict[str, Any]:
        """`tmux -C -S socket ARGS` (e.g. `attach-session -t =_engine`) under the name `relay` → its pid."""
        socket = os.path.expanduser(call.arg("socket", str))
        args = call.strings("args", [])
        name = call.arg("relay", str, socket)
        env = {key: value for key, value in os.environ.items() if key not in ("TMUX", "TMUX_PANE")}
        env.update({str(key): str(value) for key, value in call.arg("env", dict, {}).items()})
        with self._lock:
            if name in self._running and self._running[name].poll() is None:
                raise OpError(f"a tmux relay named {name!r} is running already")
            try:
                process = subprocess.Popen(["tmux", "-C", "-S", socket, *args], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            except OSError as exc:
                raise OpError(f"tmux cannot run on this host: {exc.strerror or exc}") from None
            self._running[name] = process
        threading.Thread(target=self._relay, args=(name, process), daemon=True, name=f"tmux-{name}").start()
        return {"relay": name, "pid": process.pid}

    def send(self, call: Call) -> dict[str, Any]:
        """Write `lines` (commands, one a line) to relay `relay`."""
        name = call.arg("relay", str)
        lines = call.strings("lines")
        if any("\n" in line for line in lines):
            raise OpError("a tmux command line cannot hold a newline")
        with self._lock:
            process = self._running.get(name)
            if process is None or process.stdin is None or process.poll() is not None:
                raise OpError(f"no tmux relay named {name!r} is running")
            try:
                process.stdin.write("".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape"))
                process.stdin.flush()
            except OSError as exc:
                raise OpError(f"tmux relay {name!r} ended: {exc.strerror or exc}") from None
        return {"sent": len(lines)}

    def stop(self, call: Call) -> dict[str, Any]:
        """End relay `relay`: its input closed (a control client then detaches), killed if it lingers."""
        name = call.arg("relay", str)
        with self._lock:
            process = self._running.pop(name, None)
        if process is None:
            return {"stopped": False}
        _end(process)
        return {"stopped": True, "rc": process.returncode}

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
        for process in running:
            _end(process)

    def _relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None and process.stderr is not None
        descriptor = process.stdout.fileno()
        while True:
            data = os.read(descriptor, READ_BYTES)
            if not data:
                break
            self._push("tmux", relay=name, data=base64.b64encode(data).decode("ascii"))
        said = process.stderr.read().decode("utf-8", "replace").strip()
        rc = process.wait()
        with self._lock:
            if self._running.get(name) is process:
                del self._running[name]
        self._push("tmux_exit", relay=name, rc=rc, stderr=said)


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
