"""An agent's socket on a host (the host program's, here run on this machine over its own protocol) stays usable
whatever its connections send: a request nested past what the JSON parser takes is refused, never counted as
open for ever; and a hook event the socket refuses (too many requests open) is spooled by the host client, not
dropped."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import supervisor
from supervisor.hosts.link import Link
from supervisor.hosts.remote.layout import HostLayout
from supervisor.hostside.agents import AGENT_CONNECTIONS
from tests.links import Heard
from tests.test_host_link import open_link

SOURCE = Path(supervisor.__file__).resolve().parent.parent


@pytest.fixture
def served() -> Iterator[tuple[Link, Heard, Path]]:
    heard = Heard()
    home = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))  # a socket's path is short
    link = open_link(home, heard)
    sock = Path(HostLayout(str(home / "root")).socket("far"))  # where an agent's socket is on a host
    try:
        link.call("agent_listen", agent="far", path=str(sock))
        yield link, heard, sock
    finally:
        link.close()
        shutil.rmtree(home, ignore_errors=True)


def send(sock: Path, data: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(sock))
        conn.sendall(data)
        reply = json.loads(conn.makefile("rb").readline())
    assert isinstance(reply, dict)
    return reply


def test_requests_nested_past_the_parser_never_use_up_the_socket(served: tuple[Link, Heard, Path]) -> None:
    link, heard, sock = served
    deep = b"[" * 200_000 + b"]" * 200_000 + b"\n"
    for _ in range(AGENT_CONNECTIONS + 4):
        refused = send(sock, deep)
        assert refused["ok"] is False and "RecursionError" in str(refused["error"])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(sock))
        conn.sendall(json.dumps({"method": "status", "params": {}}).encode() + b"\n")
        pushed = heard.wait_for(lambda event: event.get("event") == "agent_request", "the request pushed home")
        assert pushed["request"] == {"method": "status", "params": {}}
        link.call("agent_answer", conn=pushed["conn"], answer={"ok": True, "result": {}})


def test_a_hook_event_the_socket_refuses_is_spooled(served: tuple[Link, Heard, Path]) -> None:
    _, heard, sock = served
    held = []
    try:
        for _ in range(AGENT_CONNECTIONS):  # requests pushed home and never answered: the socket is full
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(str(sock))
            conn.sendall(json.dumps({"method": "status", "params": {}}).encode() + b"\n")
            held.append(conn)
        heard.wait_for(lambda event: sum(e.get("event") == "agent_request" for e in heard.events)
                       >= AGENT_CONNECTIONS, "every request pushed home")
        env = {**os.environ, "PYTHONPATH": str(SOURCE), "SUPERVISOR_SOCKET": str(sock), "SUPERVISOR_AGENT": "far"}
        done = subprocess.run([sys.executable, "-c", "import sys; from supervisor.hostside.client import main; "
                               "sys.exit(main(['hook']))"],
                              input=json.dumps({"hook_event_name": "Stop"}).encode(), env=env, capture_output=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        spool = sock.parents[2] / "spool" / "far" / "hooks"  # ROOT/run/far/agent.sock → ROOT/spool/far/hooks
        spooled = [json.loads(path.read_text()) for path in spool.glob("*.json")]
        assert [item["event"]["hook_event_name"] for item in spooled] == ["Stop"]
    finally:
        for conn in held:
            conn.close()


def test_each_listen_binds_a_socket_anew(served: tuple[Link, Heard, Path]) -> None:
    """A new launch, or a new agent of the same name, never inherits the socket an earlier one was served on
    (a connection it kept open, or the listening socket itself)."""
    link, _, sock = served
    before = sock.stat().st_ino
    os.link(sock, sock.parent / "kept")  # the old socket's inode stays taken: a new one cannot get its number
    link.call("agent_listen", agent="far", path=str(sock))
    assert sock.stat().st_ino != before
    assert send(sock, b"[" * 200_000 + b"\n")["ok"] is False  # served: the new one listens
