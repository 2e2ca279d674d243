"""`supervisor attach` puts a real terminal on the agent's pane, and the user's detach keys bring it back."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Sandbox, wait_until


@pytest.fixture
def user_tmux(sandbox: Sandbox) -> Iterator[list[str]]:
    """The user's own terminal: a separate tmux server, standing in for their terminal emulator."""
    socket = sandbox.runtime / "user.sock"
    base = ["tmux", "-S", str(socket), "-f", "/dev/null"]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True, check=False)


def test_attach_shows_the_agent_and_detach_returns(sandbox: Sandbox, user_tmux: list[str]) -> None:
    sandbox.sv("start", "auth", "--task", "hello from the test")
    sandbox.wait_state("auth", "working", "idle")
    env = {k: v for k, v in sandbox.env.items()}
    command = f"cd {shlex.quote(str(sandbox.root))} && {shlex.quote(sys.executable)} -m supervisor attach auth; " \
              "echo attach-returned-$?; sleep 60"
    command = f"env -u TMUX sh -c {shlex.quote(command)}"  # a plain terminal (inside tmux: see test_ui_tmux.py)
    subprocess.run([*user_tmux, "new-session", "-d", "-s", "user", "-x", "120", "-y", "40", command],
                   env=env, check=True)

    def user_screen() -> str:
        return subprocess.run([*user_tmux, "capture-pane", "-p", "-t", "user"], capture_output=True, text=True,
                              env=env).stdout

    wait_until(lambda: "hello from the test" in user_screen(), message="the agent's screen through attach")
    wait_until(lambda: "supervisor: C-b d comes back" in user_screen(), message="how to come back")
    clients = sandbox.tmux("list-clients", "-F", "#{client_control_mode} #{session_name}").stdout.splitlines()
    assert [c for c in clients if c.startswith("0 ")] == ["0 auth"]  # (the engine's watch client is control mode)
    subprocess.run([*user_tmux, "send-keys", "-t", "user", "C-b", "d"], env=env, check=True)
    wait_until(lambda: "attach-returned-0" in user_screen(), message="back from attach after detach")
    assert "0 " not in sandbox.tmux("list-clients", "-F", "#{client_control_mode} ").stdout
    assert sandbox.state("auth") in ("working", "idle")  # the agent was not disturbed


def test_attach_to_an_agent_without_a_pane_is_a_clear_error(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.sv("start", "ghost", "--command", "no-such-cli", check=False)
    done = sandbox.sv("attach", "ghost", check=False)
    assert done.returncode == 1
    assert "ghost has no pane" in done.stderr
