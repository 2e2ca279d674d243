"""Pane identity: a pane id means something only on the tmux server that gave it out. After that server died,
pane ids start again at %1 on the next one, and an agent's old pane id may name another agent's pane."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.client import request_at
from supervisor.core.model import Agent, State
from supervisor.engine.engine import Engine
from supervisor.engine.panes import pane_ref, place
from supervisor.engine.watcher import SLOW_CHECK_EVERY
from supervisor.errors import SupervisorError
from supervisor.tmux.panes import LOCAL, PaneRef
from tests.conftest import Sandbox, process_gone, wait_until
from tests.test_watching import events, ticks_pass


def kill_tmux_server(box: Sandbox) -> None:
    """SIGKILL the supervisor's tmux server, as a crash would (the engine runs apart from it and goes on)."""
    pid = int(box.tmux("display-message", "-p", "#{pid}").stdout.strip())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: process_gone(pid), message="the tmux server gone")


def engine_request(box: Sandbox, method: str, **params: Any) -> Any:
    return request_at(box.runtime / box.paths.runtime_dir.name / "engine.sock", method, params, 10)


def runs_in_pane(box: Sandbox, agent: dict[str, Any]) -> bool:
    """The agent's pane, on the server running now, runs the agent's own process."""
    shown = box.tmux("display-message", "-p", "-t", agent["pane"], "#{pane_pid}").stdout.strip()
    if shown != str(agent["pid"]):
        return False
    try:
        return psutil.Process(agent["pid"]).environ().get("SUPERVISOR_AGENT") == agent["name"]
    except psutil.Error:
        return False


def test_restart_after_the_tmux_server_died_gives_each_agent_its_own_pane(sandbox: Sandbox) -> None:
    sandbox.sv("start", "w1")
    sandbox.sv("start", "i1")
    sandbox.wait_state("w1", "idle")
    sandbox.wait_state("i1", "idle")
    old = sandbox.ls()
    kill_tmux_server(sandbox)
    sandbox.wait_state("w1", "exited")  # seen by a new engine, on a new tmux server
    sandbox.wait_state("i1", "exited")

    sandbox.sv("restart", "i1")
    # The setup this test is about: i1's new pane has the id w1's pane had on the dead server.
    assert sandbox.ls()["i1"]["pane"] == old["w1"]["pane"]
    sandbox.sv("restart", "w1")
    sandbox.wait_state("i1", "idle")
    sandbox.wait_state("w1", "idle")
    agents = sandbox.ls()
    i1, w1 = agents["i1"], agents["w1"]
    assert i1["pane"] != w1["pane"]
    assert i1["pid"] != w1["pid"]
    assert runs_in_pane(sandbox, i1)
    assert runs_in_pane(sandbox, w1)

    ticks_pass(sandbox, 2 * SLOW_CHECK_EVERY)  # the escape check has looked at both trees
    sandbox.sv("stop", "i1")
    assert sandbox.state("i1") == "stopped"
    assert process_gone(i1["pid"])
    assert sandbox.state("w1") == "idle"
    assert not process_gone(w1["pid"])
    assert runs_in_pane(sandbox, w1)
    assert not [e for e in events(sandbox, kind="trigger") if e["trigger"] == "escape"]


def test_screen_and_attach_of_a_pane_id_now_on_another_server_say_it_is_gone(sandbox: Sandbox) -> None:
    sandbox.sv("start", "w1")
    sandbox.wait_state("w1", "idle")
    old = sandbox.ls()["w1"]
    kill_tmux_server(sandbox)
    sandbox.wait_state("w1", "exited")
    sandbox.sv("start", "x1")  # on the new server: it gets the pane id w1 had
    sandbox.wait_state("x1", "idle")
    assert sandbox.ls()["x1"]["pane"] == old["pane"]

    assert engine_request(sandbox, "screen", name="w1") == {"name": "w1", "text": "", "available": False}
    assert json.loads(sandbox.sv("show", "w1", "--json").stdout)["screen"] == []
    done = sandbox.sv("attach", "w1", check=False)
    assert done.returncode == 1
    assert "w1 has no pane to attach to" in done.stderr
    assert engine_request(sandbox, "screen", name="x1")["available"] is True


@pytest.fixture
def engine(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A real Engine object in this process (no watcher) on the sandbox's own tmux server."""
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    monkeypatch.setenv("HOME", str(sandbox.home))
    made = Engine(sandbox.paths)
    made.tmux.ensure_server()
    try:
        yield made
    finally:
        made.tmux.close()
        made.store.close()


def record(name: str, root: Path, **fields: Any) -> Agent:
    return Agent(name=name, profile="generic", command="sleep 600", worktree=str(root), branch=f"agent/{name}/work",
                 base="HEAD", target="main", **fields)


def test_a_live_agent_whose_pane_id_is_on_another_server_touches_nothing_there(engine: Engine,
                                                                               sandbox: Sandbox) -> None:
    """The record of a live agent names pane %N of a server that died; %N is another process's pane now."""
    created = engine.tmux.new_session("other", sandbox.root, "sleep 600", {})
    pane, pid = created.pane, created.pid
    ghost = record("ghost", sandbox.root, state=State.WAITING, pane=pane, pid=pid, started_at=time.time() - 60,
                   extra={"tmux_server": "1:1700000000"})
    engine.store.add_agent(ghost)

    assert engine.op_screen("ghost") == {"name": "ghost", "text": "", "available": False}
    with pytest.raises(SupervisorError, match="ghost has no pane to attach to"):
        engine.op_attach_info("ghost")
    with pytest.raises(SupervisorError, match="pane is gone"):
        engine.op_send("ghost", "typed-into-the-wrong-pane")
    with pytest.raises(SupervisorError, match="pane is gone"):
        engine.op_approve("ghost")
    engine.interrupt(engine.get("ghost"))
    assert "typed-into-the-wrong-pane" not in engine.tmux.capture(pane)
    assert not [e for e in engine.store.events("ghost") if e.kind == "interrupted"]

    assert engine.op_stop("ghost")["state"] == "stopped"
    assert not process_gone(pid)  # the process that has the pane id now was not signalled
    assert engine.tmux.list_panes()[pane].pid == pid


def test_pane_references_of_old_records_and_other_servers(engine: Engine, sandbox: Sandbox) -> None:
    pane = engine.tmux.new_session("mine", sandbox.root, "sleep 600", {}).pane
    server = engine.tmux.server_id()
    old = record("old", sandbox.root, pane=pane, extra={"tmux_server": server})  # written before hosts existed
    assert pane_ref(old) == PaneRef(LOCAL, server, pane)
    assert engine.panes.own(old) is not None
    assert engine.panes.own(record("older", sandbox.root, pane=pane)) is None  # no server: cannot be told apart
    elsewhere = record("far", sandbox.root, pane=pane, extra={"tmux_server": server})
    elsewhere.host = "build-box"
    assert engine.panes.own(elsewhere) is None
    engine.store.add_agent(old)
    loaded = engine.store.get_agent("old")
    assert loaded is not None and pane_ref(loaded) == PaneRef(LOCAL, server, pane)
    place(loaded, PaneRef(LOCAL, "2:1700000001", pane))
    engine.store.save_agent(loaded)
    again = engine.store.get_agent("old")
    assert again is not None and pane_ref(again) == PaneRef(LOCAL, "2:1700000001", pane)
    assert engine.panes.own(again) is None


def test_an_agent_on_a_host_the_engine_does_not_know_is_refused_saying_so(engine: Engine, sandbox: Sandbox) -> None:
    """Everything done beside an agent goes through the host its record names (`host_of`): one this engine does not
    know touches nothing here, and says which host is missing."""
    pane = engine.tmux.new_session("mine", sandbox.root, "sleep 600", {}).pane
    far = record("far", sandbox.root, state=State.WAITING, pane=pane, host="build-box",
                 extra={"tmux_server": engine.tmux.server_id()})
    engine.store.add_agent(far)
    for call in (lambda: engine.op_screen("far"), lambda: engine.op_send("far", "typed-here"),
                 lambda: engine.op_attach_info("far")):
        with pytest.raises(SupervisorError, match="far runs on host 'build-box', which this engine does not know"):
            call()
    assert "typed-here" not in engine.tmux.capture(pane)
    assert engine.op_ls()[0]["host"] == "build-box"
