"""What the engine's control sockets cost while idle: one socket per agent (and the human's), nobody calling.

    .venv/bin/python bench/sockets.py [--agents 100] [--seconds 10]

Measures the CPU time a process spends over SECONDS with AGENTS + 1 listening sockets and no connection, for:
  polling    a socketserver per socket, each `serve_forever(poll_interval=0.2)` in a thread of its own (the engine's
             one control socket was served so; a thread per agent socket would be this)
  selector   the engine's ControlServer: one thread waits on every socket, woken only by a connection
Then one request per socket through the selector, to show each answers.
"""

from __future__ import annotations

import argparse
import socketserver
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervisor.client import request_at
from supervisor.engine.server import ControlServer, Peer


class _Quiet(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        pass


class _Polling(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _cpu_over(seconds: float) -> float:
    start = time.process_time()
    time.sleep(seconds)
    return time.process_time() - start


def polling(folder: Path, count: int, seconds: float) -> float:
    servers = [_Polling(str(folder / f"p{i}.sock"), _Quiet) for i in range(count)]
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    time.sleep(0.5)  # every thread in its loop
    try:
        return _cpu_over(seconds)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def selector(folder: Path, count: int, seconds: float) -> tuple[float, int]:
    def handler(method: str, params: dict[str, Any], peer: Peer) -> Any:
        return peer.agent

    server = ControlServer(handler)
    paths = [folder / f"s{i}.sock" for i in range(count)]
    server.listen(paths[0])
    for i, path in enumerate(paths[1:]):
        server.listen(path, f"agent-{i}")
    server.serve_in_thread()
    time.sleep(0.5)
    try:
        cpu = _cpu_over(seconds)
        answered = sum(1 for i, path in enumerate(paths) if request_at(path, "ping", {}, 10) == (
            None if i == 0 else f"agent-{i - 1}"))
        return cpu, answered
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    count = args.agents + 1
    with tempfile.TemporaryDirectory(prefix="svb-", dir="/tmp") as scratch:
        folder = Path(scratch)
        polled = polling(folder, count, args.seconds)
        selected, answered = selector(folder, count, args.seconds)
    print(f"{count} sockets idle for {args.seconds:g} s (CPU time of the process, % of one core):")
    print(f"  polling   {polled * 1000:8.1f} ms  {100 * polled / args.seconds:6.2f} %")
    print(f"  selector  {selected * 1000:8.1f} ms  {100 * selected / args.seconds:6.2f} %")
    print(f"  then one request per socket: {answered}/{count} answered, each as its socket's agent")
    return 0 if answered == count else 1


if __name__ == "__main__":
    raise SystemExit(main())
