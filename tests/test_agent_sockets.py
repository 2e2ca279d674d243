"""Each agent's own socket to the engine: made when it starts or is adopted, gone when it ends; a request through
it is that agent's; its spool folder says whose a spooled event is; long paths; the lineage walk."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.client import request_at
from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.engine.callers import tied_agent
from supervisor.engine.hooks import spool
from supervisor.engine.once import HookLedger, ingest_spool
from supervisor.engine.server import ControlServer, Peer
from supervisor.errors import SupervisorError
from supervisor.hostside.lineage import lineage
from tests.conftest import Sandbox, process_gone, wait_until
from tests.test_watching import config


def test_an_agent_has_a_socket_of_its_own_while_it_runs_and_after_an_engine_restart(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "x")
    x = sandbox.wait_state("x", "idle")
    own = sandbox.agent_runtime("x") / "engine.sock"
    assert stat.S_IMODE(own.stat().st_mode) == 0o600 and own.is_socket()
    assert stat.S_IMODE(own.parent.stat().st_mode) == 0o700
    env = psutil.Process(x["pid"]).environ()
    assert env["SUPERVISOR_SOCKET"] == str(own)
    assert "SUPERVISOR_TOKEN" not in env and "SUPERVISOR_STATE_DIR" not in env
    with pytest.raises(SupervisorError, match="agent x may not call stop"):
        request_at(own, "stop", {"name": "x"}, 30)

    engine = sandbox.engine_pid()
    os.kill(engine, signal.SIGKILL)
    wait_until(lambda: process_gone(engine), message="the engine killed")
    sandbox.sv("ls")  # a new engine adopts x, and listens on its socket again
    assert request_at(own, "ping", {}, 30) == "pong"
    sandbox.sv("stop", "x")
    assert not own.exists()  # it ended: nothing speaks for it any more
    assert sandbox.state("x") == "stopped"


def test_a_spooled_event_is_the_agent_of_its_folder_whatever_the_file_says(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    for name in ("auth", "other"):
        store.add_agent(Agent(name=name, profile="claude", command="claude", worktree=str(tmp_path),
                              branch=f"agent/{name}", base="0" * 40, target="main"))
    applied: list[tuple[str, Any]] = []
    folder = tmp_path / "agents" / "auth" / "spool"
    written = spool(folder, {"hook_event_name": "Stop"}, at=time.time(), key="k1")
    data = json.loads(written.read_text())
    written.write_text(json.dumps({**data, "agent": "other"}))  # a name in the file counts for nothing
    ingest_spool(folder, "auth", store, HookLedger(store), lambda agent, event, ran, key: applied.append(
        (agent.name, event["hook_event_name"])))
    assert applied == [("auth", "Stop")] and not written.exists()
    store.close()


def test_a_socket_path_longer_than_the_kernel_takes_still_works(tmp_path: Path) -> None:
    folder = tmp_path / ("d" * 60) / ("e" * 60)
    folder.mkdir(parents=True)
    path = folder / "engine.sock"
    assert len(str(path)) > 108
    server = ControlServer(lambda method, params, peer: [method, peer.agent])
    server.listen(path, "auth.tests.data")
    server.serve_in_thread()
    try:
        assert request_at(path, "ping", {}, 10) == ["ping", "auth.tests.data"]
    finally:
        server.shutdown()
        server.server_close()
    assert not path.exists()


def test_a_request_names_its_sockets_agent_and_the_process_that_sent_it(tmp_path: Path) -> None:
    seen: list[Peer] = []
    server = ControlServer(lambda method, params, peer: seen.append(peer))
    human, agent = tmp_path / "engine.sock", tmp_path / "a.sock"
    server.listen(human)
    server.listen(agent, "auth")
    server.serve_in_thread()
    try:
        request_at(human, "ping", {"agent": "auth"}, 10)  # what a request says about itself counts for nothing
        request_at(agent, "ping", {}, 10)
        server.forget(agent)
        assert not agent.exists()
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [Peer(os.getpid(), None), Peer(os.getpid(), "auth")]


def test_an_engine_that_listens_on_a_thousand_agents_sockets_before_it_serves_answers_them_all(tmp_path: Path) -> None:
    # An engine adopting many agents listens on each one's socket before its serving thread runs: every listen
    # wakes that thread, and the wake-ups nobody reads yet must never block the engine's start.
    server = ControlServer(lambda method, params, peer: ["pong", peer.agent])
    paths = [tmp_path / f"a{index}.sock" for index in range(1000)]
    listening = threading.Thread(target=lambda: [server.listen(path, path.stem) for path in paths], daemon=True)
    listening.start()
    try:
        wait_until(lambda: not listening.is_alive(), timeout=60, message="listening on every socket")
        server.serve_in_thread()
        assert request_at(paths[-1], "ping", {}, 10) == ["pong", "a999"]
    finally:
        server.shutdown()
        server.server_close()


def test_lineage_ties_a_descendant_to_the_agent_whose_pane_process_it_runs_under(tmp_path: Path) -> None:
    # A shell standing for the pane's process, with a grandchild of its own (the command an agent runs).
    pane = subprocess.Popen(["sh", "-c", "sh -c 'sleep 60' & wait"])
    try:
        grandchild = wait_until(lambda: [p.pid for p in psutil.Process(pane.pid).children(recursive=True)
                                         if p.name() == "sleep"], message="the grandchild")[0]
        assert pane.pid in list(lineage(grandchild))
        agent = Agent(name="auth", profile="generic", command="sh", worktree=str(tmp_path), branch="agent/auth",
                      base="0" * 40, target="main", pid=pane.pid, state=State.WORKING)
        other = Agent(name="other", profile="generic", command="sh", worktree=str(tmp_path), branch="agent/other",
                      base="0" * 40, target="main", pid=os.getpid(), state=State.STOPPED)  # ended: ties nothing
        tied = tied_agent(grandchild, [agent, other])
        assert tied is not None and tied.name == "auth"
        assert tied_agent(os.getpid(), [agent, other]) is None  # this process is no descendant of the pane
    finally:
        pane.kill()
        for child in psutil.Process().children(recursive=True):
            child.kill()
        pane.wait()


def serving(*sockets: tuple[Path, str | None]) -> ControlServer:
    server = ControlServer(lambda method, params, peer: "pong")
    for path, agent in sockets:
        server.listen(path, agent)
    server.serve_in_thread()
    return server


def stop(server: ControlServer) -> None:
    server.shutdown()
    server.server_close()


def test_listening_clears_what_was_planted_at_the_socket_path_and_follows_no_link(tmp_path: Path) -> None:
    precious = tmp_path / "precious.json"
    precious.write_text("{}")
    folder = tmp_path / "agents" / "a"
    folder.mkdir(parents=True)
    planted_dir, planted_link = folder / "engine.sock", tmp_path / "b.sock"
    (planted_dir / "x").mkdir(parents=True)  # a folder (with something in it) where the socket goes
    planted_link.symlink_to(precious)  # a link to a file of the user's
    old = os.umask(0)  # the process-wide umask plays no part in the socket's mode
    try:
        server = serving((planted_dir, "a"), (planted_link, "b"))
    finally:
        os.umask(old)
    try:
        for path in (planted_dir, planted_link):
            assert path.is_socket() and stat.S_IMODE(path.lstat().st_mode) == 0o600
            assert request_at(path, "ping", {}, 10) == "pong"
        assert precious.read_text() == "{}"
        assert sorted(p.name for p in folder.iterdir()) == ["engine.sock"]  # no folder left from binding
        planted_dir.unlink()  # gone from under a live listener: listening again makes it anew
        server.listen(planted_dir, "a")
        assert request_at(planted_dir, "ping", {}, 10) == "pong"
    finally:
        stop(server)


def test_one_agent_cannot_hold_the_control_plane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from supervisor.engine import server as server_module
    from supervisor.engine.server import AGENT_CONNECTIONS, AGENT_LINE

    monkeypatch.setattr(server_module, "READ_DEADLINE", 1.0)
    human, agent = tmp_path / "engine.sock", tmp_path / "a.sock"
    server = serving((human, None), (agent, "a"))
    held: list[socket.socket] = []
    try:
        for _ in range(AGENT_CONNECTIONS):  # each sends nothing and stays
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(str(agent))
            held.append(conn)
        wait_until(lambda: _open(server, agent) == AGENT_CONNECTIONS, message="the connections taken")
        with pytest.raises(SupervisorError, match=f"has {AGENT_CONNECTIONS} requests open already"):
            request_at(agent, "ping", {}, 10)
        assert request_at(human, "ping", {}, 10) == "pong"  # the human is answered meanwhile
        # One byte now and then holds nothing: the whole request has a deadline.
        held[0].sendall(b"{")
        assert b"did not arrive within" in held[0].recv(4096)
        with pytest.raises(SupervisorError, match="larger than the engine takes"):
            request_at(agent, "msg", {"to": "b", "text": "x" * AGENT_LINE}, 10)
        assert request_at(human, "msg", {"to": "b", "text": "x" * AGENT_LINE}, 10) == "pong"
    finally:
        for conn in held:
            conn.close()
        stop(server)


def _open(server: ControlServer, path: Path) -> int:
    return server._listeners[path].active


def test_out_of_descriptors_a_connection_is_refused_and_the_engine_goes_on(tmp_path: Path) -> None:
    """With every descriptor taken, a connection waiting to be accepted would wake the selector again and again:
    it is taken with the spare descriptor, refused with a word, and the next one is answered once there are
    descriptors again."""
    path = tmp_path / "engine.sock"
    script = (
        "import os, resource, sys\n"
        "from pathlib import Path\n"
        "from supervisor.engine.server import ControlServer\n"
        "server = ControlServer(lambda m, p, peer: 'pong')\n"
        "server.listen(Path(sys.argv[1]))\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "taken = []\n"
        "try:\n"
        "    while True:\n"
        "        taken.append(os.open(os.devnull, os.O_RDONLY))\n"
        "except OSError:\n"
        "    pass\n"
        "server.serve_in_thread()\n"
        "print('full', flush=True)\n"
        "sys.stdin.readline()\n"
        "for fd in taken:\n"
        "    os.close(fd)\n"
        "print('freed', flush=True)\n"
        "sys.stdin.readline()\n")
    engine = subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert engine.stdin is not None and engine.stdout is not None
    try:
        assert engine.stdout.readline() == "full\n"
        with pytest.raises(SupervisorError, match="out of file descriptors"):
            request_at(path, "ping", {}, 10)
        engine.stdin.write("\n")
        engine.stdin.flush()
        assert engine.stdout.readline() == "freed\n"
        assert request_at(path, "ping", {}, 10) == "pong"
    finally:
        engine.kill()
        engine.wait()


def test_an_agent_that_ended_may_still_send_hook_events_but_nothing_else(tmp_path: Path) -> None:
    from supervisor.engine.callers import check

    ended = Agent(name="a", profile="generic", command="sh", worktree=str(tmp_path), branch="agent/a/work",
                  base="0" * 40, target="main", pid=None, state=State.STOPPED)
    peer = Peer(os.getpid(), "a")
    check(ended, peer, "hook", {})  # how it ended is still told
    for method in ("msg", "report", "helper", "task_claim"):
        with pytest.raises(SupervisorError, match="only a running agent may"):
            check(ended, peer, method, {})


def test_a_spool_is_read_without_following_links_blocking_or_trusting_what_is_in_it(tmp_path: Path) -> None:
    from supervisor.engine.spooled import SPOOL_FILE, read_spool

    store = Store(tmp_path / "state.db")
    store.add_agent(Agent(name="auth", profile="claude", command="claude", worktree=str(tmp_path),
                          branch="agent/auth/work", base="0" * 40, target="main"))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "package.json").write_text('{"name": "precious"}')
    linked = tmp_path / "agents" / "eve" / "spool"
    linked.parent.mkdir(parents=True)
    linked.symlink_to(precious)  # a spool folder that is a link to a folder of the user's
    assert read_spool(linked) == []
    ingest_spool(linked, "eve", store, HookLedger(store), lambda *args: None)
    assert (precious / "package.json").read_text() == '{"name": "precious"}'

    folder = tmp_path / "agents" / "auth" / "spool"
    good = spool(folder, {"hook_event_name": "Stop"}, at=time.time(), key="k1")
    (folder / "list.json").write_text("[]")
    (folder / "huge-at.json").write_text('{"event": {"hook_event_name": "Stop"}, "at": 1' + "0" * 400 + "}")
    os.mkfifo(folder / "fifo.json")  # opened for reading, it would block until a writer came
    (folder / "link.json").symlink_to(precious / "package.json")
    (folder / "big.json").write_text('{"event": {}, "pad": "' + "x" * SPOOL_FILE + '"}')
    (folder / "sub.json").mkdir()
    applied: list[tuple[str, float]] = []
    ingest_spool(folder, "auth", store, HookLedger(store), lambda agent, event, ran, key: applied.append(
        (event["hook_event_name"], ran)))
    assert sorted(name for name, _ in applied) == ["Stop", "Stop"]  # the good one, and the one with a huge `at`
    assert not good.exists() and sorted(p.name for p in folder.iterdir()) == ["sub.json"]  # a folder stays
    assert (precious / "package.json").read_text() == '{"name": "precious"}'
    store.close()
