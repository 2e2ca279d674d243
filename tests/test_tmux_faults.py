"""What happens to the tmux server under the engine: it dies during a launch, it is left with no session, its
socket file is removed while it runs (real tmux, real engine)."""

from __future__ import annotations

import os
import signal

import pytest

from supervisor.engine.engine import Engine
from supervisor.engine.panes import place
from supervisor.tmux.server import TmuxError
from tests.conftest import Sandbox, process_gone, wait_until
from tests.test_pane_identity import engine, kill_tmux_server, record  # noqa: F401 - `engine` is a fixture
from tests.test_watching import config, ticks_pass


def tmux_running(box: Sandbox) -> bool:
    return box.tmux("list-sessions").returncode == 0


def test_a_launch_never_starts_a_server_by_accident_and_records_the_one_that_made_its_pane(
        engine: Engine, sandbox: Sandbox) -> None:  # noqa: F811
    listed = engine.tmux.list_panes()  # the launch's listing, made before the server dies
    first = engine.tmux.listed_server
    kill_tmux_server(sandbox)
    with pytest.raises(TmuxError, match="no server running"):
        engine.tmux.new_session("late", sandbox.root, "sleep 600", {})
    assert not tmux_running(sandbox)  # nothing but a deliberate start starts a server

    engine.tmux.ensure_server()
    agent = record("late", sandbox.root)
    ref, pid = engine.panes.open(agent, "sleep 600", {}, listed)
    assert ref.server == engine.tmux.server_id() != first  # the server that made the pane, not the listed one
    place(agent, ref)
    own = engine.panes.own(agent)
    assert own is not None and own.pid == pid


def test_a_server_left_with_no_session_ends_its_agents_and_gets_its_engine_session_back(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "x")
    x = sandbox.wait_state("x", "idle")
    server = int(sandbox.tmux("display-message", "-p", "#{pid}").stdout.strip())
    sandbox.tmux("kill-session", "-t", "=x")
    sandbox.tmux("kill-session", "-t", "=_engine")  # none left; the server runs on (exit-empty off)

    ended = sandbox.wait_state("x", "exited", timeout=10)
    assert ended["reason"] == "its pane is gone (its window was closed)" and ended["restorable"] is False
    assert process_gone(x["pid"])
    wait_until(lambda: sandbox.tmux("has-session", "-t", "=_engine").returncode == 0, timeout=10,
               message="the _engine session made again")
    assert not process_gone(server)
    sandbox.sv("start", "y")  # on the same server
    sandbox.wait_state("y", "idle")
    assert int(sandbox.tmux("display-message", "-p", "#{pid}").stdout.strip()) == server


def test_a_removed_socket_ends_nothing_and_the_server_gets_it_back(sandbox: Sandbox) -> None:
    """A cleaner of /tmp removes the socket file while the server and its agents run: while no engine runs
    (the next one must not take them for ended), and under a running engine."""
    config(sandbox)
    sandbox.sv("start", "x")
    x = sandbox.wait_state("x", "idle")
    server = int(sandbox.tmux("display-message", "-p", "#{pid}").stdout.strip())
    first = sandbox.engine_pid()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: process_gone(first), message="the engine gone")

    for _ in range(2):
        sandbox.tmux_socket.unlink()
        sandbox.sv("ls")  # the first time, this starts an engine
        wait_until(lambda: sandbox.tmux_socket.exists() and tmux_running(sandbox), timeout=10,
                   message="the socket made again")
        ticks_pass(sandbox, 2)
        agent = sandbox.ls()["x"]
        assert (agent["state"], agent["pid"], agent["reason"]) == ("idle", x["pid"], None)
        assert not process_gone(x["pid"])
        assert int(sandbox.tmux("display-message", "-p", "#{pid}").stdout.strip()) == server
    log = (sandbox.root / ".git" / "supervisor" / "engine.log").read_text()
    assert "its socket" in log and "is gone: it is told to make it again" in log
    sandbox.sv("send", "x", "still there?")
    wait_until(lambda: "still there?" in sandbox.screen("x"), message="x typed into through the socket again")
