"""Connecting to the engine's control socket when many CLIs connect at once (a swarm claiming tasks)."""

from __future__ import annotations

import contextlib
import fcntl
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.client import EngineTimeout, ensure_engine, request_at
from supervisor.engine.protocol import recv_message, send_message
from supervisor.engine.server import ControlServer
from supervisor.errors import SupervisorError
from supervisor.paths import find_repo
from tests.conftest import Sandbox, wait_until


def _client(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)  # a socket with a timeout fails at once on a full backlog, as the CLI's does
    sock.connect(str(path))
    return sock


@contextlib.contextmanager
def full_listener(path: Path) -> Iterator[tuple[socket.socket, list[socket.socket]]]:
    """A listening socket that accepts nothing yet, its backlog filled by waiting connections."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(0)
    waiting: list[socket.socket] = []
    try:
        while True:
            try:
                waiting.append(_client(path))
            except BlockingIOError:
                break
            assert len(waiting) < 100, "the backlog never filled"
        yield listener, waiting
    finally:
        for sock in [*waiting, listener]:
            sock.close()


def test_a_full_backlog_is_waited_out_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "engine.sock"
    with full_listener(path) as (listener, waiting):
        answer: list[Any] = []
        client = threading.Thread(target=lambda: answer.append(request_at(path, "ping", {}, 10)))
        client.start()
        client.join(0.3)
        assert client.is_alive(), "the client gave up on a full backlog instead of waiting"
        for sock in waiting:
            sock.close()
        listener.settimeout(10)
        while not answer:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                try:
                    request = recv_message(conn)
                except Exception:
                    continue  # one of the connections that filled the backlog, closed by now
                assert request["method"] == "ping"
                send_message(conn, {"ok": True, "result": "pong"})
                client.join(10)
        assert answer == ["pong"]


def test_a_backlog_that_stays_full_times_out_clearly(tmp_path: Path) -> None:
    path = tmp_path / "engine.sock"
    with full_listener(path), pytest.raises(EngineTimeout, match="did not answer ping in time"):
        request_at(path, "ping", {}, 0.3)


def test_the_engine_queues_a_burst_of_connections_before_it_accepts(tmp_path: Path) -> None:
    path = tmp_path / "engine.sock"
    server = ControlServer(lambda method, params, peer: method)
    server.listen(path)
    burst: list[socket.socket] = []
    try:
        burst += [_client(path) for _ in range(50)]  # the engine is not accepting yet: all wait in line
        server.serve_in_thread()
        for sock in burst:
            send_message(sock, {"method": "ping", "params": {}})
        assert [recv_message(sock)["result"] for sock in burst] == ["ping"] * 50
        server.shutdown()
    finally:
        server.server_close()
        for sock in burst:
            sock.close()


# An engine's start, standing in for one adopting hundreds of agents: it holds the engine lock, says its step in
# `engine-starting` (STEPS counted steps, a tenth of a second each), then answers on the engine socket, or, told
# to stall, says one step and nothing more.
SLOW_START = """
import fcntl, sys, time
from pathlib import Path
from supervisor.engine.server import ControlServer
from supervisor.engine.startup import StartNote
from supervisor.paths import find_repo
paths = find_repo(Path(sys.argv[1]))
paths.ensure_dirs()
lock = open(paths.engine_lock, "a")
fcntl.flock(lock, fcntl.LOCK_EX)
note = StartNote(paths.engine_starting)
steps = int(sys.argv[2])
for done in range(steps):
    note.say("adopting the agents", done, steps)
    time.sleep(0.1)
if sys.argv[3] == "answers":
    server = ControlServer(lambda method, params, peer: "pong")
    server.listen(paths.engine_socket)
    server.serve_in_thread()
    note.done()
time.sleep(120)
"""


@pytest.mark.parametrize("answers", [True, False])
def test_a_start_longer_than_the_wait_is_waited_for_while_the_engine_says_it_moves_on(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, answers: bool) -> None:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    paths = find_repo(sandbox.root)
    steps = 40 if answers else 1  # four seconds of steps, four times the wait given below
    starting = subprocess.Popen([sys.executable, "-c", SLOW_START, str(sandbox.root), str(steps),
                                 "answers" if answers else "stalls"], env=sandbox.env)
    try:
        wait_until(paths.engine_starting.exists, message="the engine's start to be under way")
        if answers:
            ensure_engine(paths, wait=1.0)
            assert request_at(paths.engine_socket, "ping", {}, 10) == "pong"
        else:
            with pytest.raises(SupervisorError, match=r"the engine did not start: it has been adopting the agents "
                                                      r"\(0 of 1\) for \d+ s and does not answer"):
                ensure_engine(paths, wait=1.0)
    finally:
        starting.kill()
        starting.wait()



def test_the_engine_lock_is_taken_past_a_commands_question_but_not_from_an_engine(tmp_path: Path) -> None:
    """`start` and `engine stop` learn whether an engine holds its lock by taking it for a moment. An engine
    (or a repair) that starts in that moment waits it out, instead of saying that an engine is already running
    (seen in CI: `start` failed so while its own wait loop asked); a lock held on is an engine's."""
    from supervisor.client import take_engine_lock

    lock = tmp_path / "engine.lock"
    asking = open(lock, "a")  # noqa: SIM115 - a command's question, held longer than one
    fcntl.flock(asking, fcntl.LOCK_EX | fcntl.LOCK_NB)
    released = threading.Timer(0.2, asking.close)
    released.start()
    with open(lock, "a") as engine:
        assert take_engine_lock(engine)
    released.join()
    with open(lock, "a") as running, open(lock, "a") as second:
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not take_engine_lock(second, patience=0.3)
