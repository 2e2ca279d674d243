"""`supervisor attach` to an agent on a host (the real sshd host box1, tests/remotes.py): the user's terminal on
its pane there over `ssh -t`, drawn as the agent draws it (UTF-8, whatever locale an ssh command gets there),
told how to come back, and back after the usual keys; from a plain terminal and from inside the user's tmux."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import Sandbox, wait_until
from tests.remotes import HOST, Remote, remote_fixture  # noqa: F401  (the fixture)

IDLE = """\
turns:
  - [say: "ATTACHED-AGENT-ANSWERED"]
"""
# How the attached client says to come back: from a plain terminal, and nested in the user's older tmux (no
# client on screen for a popup), whose prefix the host's server is given.
BACK = {"direct": "supervisor: C-b d comes back",
        "nested": "supervisor: inside your tmux: C-b C-b d comes back (prefix twice, then d)"}


@pytest.fixture
def user_tmux(sandbox: Sandbox) -> Iterator[list[str]]:
    """The user's own terminal: a separate tmux server (UTF-8, as the test's locale is), standing in for their
    terminal emulator."""
    socket = sandbox.runtime / "user.sock"
    base = ["tmux", "-S", str(socket), "-f", "/dev/null"]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True, check=False)


@pytest.mark.parametrize("how", ["direct", "nested"])
def test_attach_to_an_agent_on_a_host_draws_it_right_and_detach_returns(remote: Remote, user_tmux: list[str],
                                                                        how: str) -> None:
    box = remote.sandbox
    remote.request("start", name="far", task="answer", command=remote.claude("far", IDLE), profile="claude",
                   host=HOST)
    wait_until(lambda: "ATTACHED-AGENT-ANSWERED" in remote.request("screen", name="far")["text"], timeout=30,
               message="its answer on its screen")
    box.wait_state("far", "idle", timeout=30)
    command = f"cd {shlex.quote(str(box.root))} && {shlex.quote(sys.executable)} -m supervisor attach far; " \
              "echo attach-returned-$?; sleep 60"
    command = f"sh -c {shlex.quote(command)}"
    if how == "direct":
        command = f"env -u TMUX {command}"
    subprocess.run([*user_tmux, "new-session", "-d", "-s", "user", "-x", "120", "-y", "40", command],
                   env=box.env, check=True)

    def user_screen() -> str:
        return subprocess.run([*user_tmux, "capture-pane", "-p", "-t", "user"], capture_output=True, text=True,
                              env=box.env).stdout

    wait_until(lambda: "ATTACHED-AGENT-ANSWERED" in user_screen(), timeout=30,
               message="the agent's screen through attach")
    wait_until(lambda: BACK[how] in user_screen(), message="how to come back")
    screen = user_screen()
    assert "❯" in screen and "─" * 20 in screen, screen  # its prompt and its input box's rules, as drawn there
    subprocess.run([*user_tmux, "send-keys", "-t", "user", "C-b", "d"], env=box.env, check=True)
    wait_until(lambda: "attach-returned-0" in user_screen(), timeout=30, message="back from attach after detach")
    attached = remote.on_host("tmux", "-S", remote.host().layout().tmux_socket, "list-clients", "-F",
                              "#{client_control_mode}")
    assert "0" not in attached.split(), attached  # only the engine's watch client (control mode) is left
    assert box.state("far") == "idle"  # the agent was not disturbed
