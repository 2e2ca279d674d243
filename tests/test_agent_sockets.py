"""Each agent's own socket to the engine: made when it starts or is adopted, gone when it ends; a request through
it is that agent's; its spool folder says whose a spooled event is; long paths; the lineage walk."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.client import request_at
from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.engine.callers import lineage, tied_agent
from supervisor.engine.hooks import spool
from supervisor.engine.once import HookLedger, ingest_spool
from supervisor.engine.server import ControlServer, Peer
from supervisor.errors import SupervisorError
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
