"""The real `supervisor ui` in a real terminal (a tmux pane of the test's own server, read with capture-pane):
the attach key hands the terminal to the agent's pane, and detaching brings the dashboard back."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import Sandbox, wait_until


@pytest.fixture
def terminal(sandbox: Sandbox) -> Iterator[list[str]]:
    """The user's own terminal: a separate tmux server, standing in for their terminal emulator."""
    socket = sandbox.runtime / "term.sock"
    base = ["tmux", "-S", str(socket), "-f", "/dev/null"]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True, check=False)


def clients_on(sandbox: Sandbox) -> list[str]:
    """The sessions that terminals are attached to (the engine may keep a control-mode client of its own)."""
    listed = sandbox.tmux("list-clients", "-F", "#{session_name} #{client_control_mode}").stdout.split("\n")
    return [line.split()[0] for line in listed if line.strip() and not line.endswith(" 1")]


def test_attach_from_the_dashboard_and_detach_back(sandbox: Sandbox, terminal: list[str]) -> None:
    sandbox.sv("start", "auth", "--task", "hello from the test")
    sandbox.wait_state("auth", "working", "idle")
    command = (f"cd {shlex.quote(str(sandbox.root))} && {shlex.quote(sys.executable)} -m supervisor ui; "
               "echo ui-exited-$?; sleep 60")
    subprocess.run([*terminal, "new-session", "-d", "-s", "user", "-x", "140", "-y", "40", command],
                   env=sandbox.env, check=True)

    def screen() -> str:
        return subprocess.run([*terminal, "capture-pane", "-p", "-t", "user"], capture_output=True, text=True,
                              env=sandbox.env).stdout

    def keys(*names: str) -> None:
        subprocess.run([*terminal, "send-keys", "-t", "user", *names], env=sandbox.env, check=True)

    wait_until(lambda: "Agents (1)" in screen() and "auth" in screen(), timeout=30, message="the dashboard")
    wait_until(lambda: "hello from the test" in screen(), message="auth's pane in the preview")
    keys("Enter")  # attach to the highlighted agent
    wait_until(lambda: "Agents (1)" not in screen() and "hello from the test" in screen()
               and "[auth]" in screen(), message="the agent's own pane, through tmux")
    assert "auth" in clients_on(sandbox)
    keys("C-b", "d")  # the agent server's prefix (the user's own key bindings apply there)
    wait_until(lambda: "Agents (1)" in screen(), message="the dashboard back after detaching")
    assert "auth" not in clients_on(sandbox)
    keys("q")
    wait_until(lambda: "ui-exited-0" in screen(), message="the dashboard quits cleanly")
    assert sandbox.state("auth") in ("working", "idle")  # the agent was not disturbed
