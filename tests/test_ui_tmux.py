"""The real `supervisor ui` in a real terminal, attaching to an agent and coming back: from a plain terminal,
and from inside the user's own tmux, keys typed into that tmux's client (see supervisor.tmux.attach).

A tmux server of the test stands in for the terminal emulator: its pane is the screen, `send-keys` to it is
the user typing, `capture-pane` of it is what the user sees."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.tmux.attach import Outer, parse_version, plan_attach
from tests.conftest import Sandbox, wait_until


class Tmux:
    def __init__(self, socket: Path, env: dict[str, str], config: Path | None = None) -> None:
        self.socket = socket
        self.env = env
        self.base = ["tmux", "-S", str(socket), "-f", str(config or "/dev/null")]

    def __call__(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, env=self.env).stdout

    def keys(self, *names: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "term", *names], env=self.env, check=True)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "term")


@pytest.fixture
def terminal(sandbox: Sandbox) -> Iterator[Callable[[str], Tmux]]:
    """`terminal(command)`: a terminal (120x40) running `command`; the servers are killed afterwards."""
    servers: list[Tmux] = []

    def start(command: str) -> Tmux:
        term = Tmux(sandbox.runtime / "term.sock", sandbox.env)
        servers.append(term)
        subprocess.run([*term.base, "new-session", "-d", "-s", "term", "-x", "120", "-y", "40", command],
                       env=sandbox.env, check=True)
        return term

    yield start
    for server in servers:
        server("kill-server")
    Tmux(sandbox.runtime / "user.sock", sandbox.env)("kill-server")


def user_tmux(sandbox: Sandbox, command: str, prefix: str = "C-a") -> Tmux:
    """The user's own tmux server with prefix `prefix` and a session running `command` (not yet on screen)."""
    config = sandbox.runtime / "user.conf"
    config.write_text(f"set -g prefix {prefix}\nbind {prefix} send-prefix\nset -g status-right 'USER-TMUX'\n")
    user = Tmux(sandbox.runtime / "user.sock", sandbox.env, config)
    subprocess.run([*user.base, "new-session", "-d", "-s", "user", "-x", "120", "-y", "40", command],
                   env=sandbox.env, check=True)
    return user


def dashboard(sandbox: Sandbox) -> str:
    return (f"cd {shlex.quote(str(sandbox.root))} && {shlex.quote(sys.executable)} -m supervisor ui; "
            "echo ui-exited-$?; sleep 60")


def clients_on(sandbox: Sandbox) -> list[str]:
    """The sessions that terminals are attached to (the engine may keep a control-mode client of its own)."""
    listed = sandbox.tmux("list-clients", "-F", "#{session_name} #{client_control_mode}").stdout.split("\n")
    return [line.split()[0] for line in listed if line.strip() and not line.endswith(" 1")]


def test_attach_from_the_dashboard_and_detach_back(sandbox: Sandbox, terminal: Callable[[str], Tmux]) -> None:
    sandbox.sv("start", "auth", "--task", "hello from the test")
    sandbox.wait_state("auth", "working", "idle")
    term = terminal(f"env -u TMUX sh -c {shlex.quote(dashboard(sandbox))}")  # a plain terminal: no tmux around
    wait_until(lambda: "Agents (1)" in term.screen() and "auth" in term.screen(), timeout=30, message="the dashboard")
    wait_until(lambda: "hello from the test" in term.screen(), message="auth's pane in the preview")
    term.keys("Enter")  # attach to the highlighted agent
    wait_until(lambda: "Agents (1)" not in term.screen() and "hello from the test" in term.screen()
               and "supervisor: C-b d comes back" in term.screen(), message="the agent's pane and how to come back")
    assert "auth" in clients_on(sandbox)
    term.keys("C-b", "d")
    wait_until(lambda: "Agents (1)" in term.screen(), message="the dashboard back after detaching")
    assert "auth" not in clients_on(sandbox)
    term.keys("q")
    wait_until(lambda: "ui-exited-0" in term.screen(), message="the dashboard quits cleanly")
    assert sandbox.state("auth") in ("working", "idle")  # the agent was not disturbed


def test_inside_the_users_own_tmux_its_prefix_and_d_come_back(sandbox: Sandbox,
                                                                 terminal: Callable[[str], Tmux]) -> None:
    """The dashboard in a pane of the user's tmux (prefix C-a), the user typing into that tmux's client: the
    agent opens in a popup of the user's tmux, and C-a d closes it, not the user's own client."""
    sandbox.sv("start", "auth", "--task", "hello from the test")
    sandbox.wait_state("auth", "working", "idle")
    user = user_tmux(sandbox, dashboard(sandbox))
    term = terminal(f"env -u TMUX {shlex.join(user.base)} attach -t user")
    wait_until(lambda: "Agents (1)" in term.screen() and "USER-TMUX" in term.screen(), timeout=30,
               message="the dashboard in the user's tmux, on screen")
    wait_until(lambda: "hello from the test" in term.screen(), message="auth's pane in the preview")
    term.keys("Enter")
    wait_until(lambda: "hello from the test" in term.screen() and "Agents (1)" not in term.screen()
               and "supervisor: C-a d comes back (a popup of your tmux)" in term.screen(),
               message="the agent's pane in a popup, and how to come back")
    assert "auth" in clients_on(sandbox)
    assert sandbox.tmux("show-options", "-gv", "prefix").stdout.strip() == "C-a"  # the user's prefix, here too
    term.keys("C-a", "d")
    wait_until(lambda: "Agents (1)" in term.screen(), message="the dashboard back")
    assert "auth" not in clients_on(sandbox)
    assert len(user("list-clients").splitlines()) == 1  # the user's own client is still there
    term.keys("q")
    wait_until(lambda: "ui-exited-0" in term.screen(), message="the dashboard quits cleanly")


def test_nested_in_an_older_tmux_the_prefix_twice_then_d_comes_back(sandbox: Sandbox,
                                                                      terminal: Callable[[str], Tmux]) -> None:
    """Without popups (tmux 3.1), the clients nest: C-a C-a d (the outer tmux's send-prefix, then d)."""
    sandbox.sv("start", "auth", "--task", "hello from the test")
    sandbox.wait_state("auth", "working", "idle")
    pane = sandbox.ls()["auth"]["pane"]
    outer = Outer(prefix="C-a", version=(3, 1), client=True)
    plan = plan_attach(sandbox.tmux_socket, pane, "auth", {**sandbox.env, "TMUX": "/elsewhere,1,0"}, outer)
    assert plan.how == "nested" and plan.back == "C-a C-a d" and "TMUX" not in plan.env
    user = user_tmux(sandbox, f"{shlex.join(plan.argv)}; echo attach-returned-$?; sleep 60")
    term = terminal(f"env -u TMUX {shlex.join(user.base)} attach -t user")
    wait_until(lambda: "hello from the test" in term.screen() and "C-a C-a d comes back" in term.screen(),
               timeout=30, message="the agent's pane, nested, and how to come back")
    term.keys("C-a", "C-a", "d")
    wait_until(lambda: "attach-returned-0" in term.screen(), message="back in the user's tmux")
    assert "auth" not in clients_on(sandbox)
    assert len(user("list-clients").splitlines()) == 1


def test_inside_supervisors_own_server_the_client_switches(sandbox: Sandbox) -> None:
    sandbox.sv("start", "auth")
    pane = sandbox.ls()["auth"]["pane"]
    plan = plan_attach(sandbox.tmux_socket, pane, "auth", {**sandbox.env, "TMUX": f"{sandbox.tmux_socket},1,0"})
    assert plan.how == "switch" and plan.argv[3:6] == ["switch-client", "-t", pane]
    assert plan.back == "C-b L"
    assert [parse_version(v) for v in ("3.3a", "3.2", "next-3.5", "master", "2.9a")] == [
        (3, 3), (3, 2), (3, 5), (0, 0), (2, 9)]
