"""Agents in panes on a host over SSH, against a real sshd host (tests/sshd.py) and a real engine: the fake claude
started on box1 is judged working, then idle, from its host's pane; `send` types into it there; `log` shows what
it printed; `stop` leaves no process of its tree on the host; and a host cut off holds up no local agent.

Nothing is stood in for: the agent's worktree is made on the host from the base pushed over the link, with its
SESSION.md and guard. The engine runs in this process (as in tests/test_pane_identity.py) so that a test can see
its watch ticking while a host is cut off."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import supervisor
from supervisor.client import request_at
from supervisor.engine.engine import Engine
from supervisor.hosts.link import Link
from supervisor.hosts.remote.host import RemoteHost
from tests.conftest import DEMO_AGENT, Sandbox, wait_until
from tests.sshd import SshHosts

SOURCE = Path(supervisor.__file__).resolve().parent.parent  # readable by the host users: their python imports it
SCRIPT = """\
turns:
  - [say: "Planning the remote change", spawn: "sleep 600", work: 2s, say: "REMOTE-FIRST-DONE"]
  - [say: "Following up", work: 1s, say: "REMOTE-SECOND-DONE"]
"""


@dataclass
class Remote:
    sandbox: Sandbox
    engine: Engine
    host_dir: str  # the host's `dir`, absolute
    command: str  # the fake claude on the host, running SCRIPT

    def request(self, method: str, **params: Any) -> Any:
        return request_at(self.engine.paths.engine_socket, method, params, 120)

    def link(self) -> Link:
        found = self.engine.hostlinks.link("box1")
        assert found is not None and found.up
        return found


@pytest.fixture
def remote(sandbox: Sandbox, ssh_hosts: SshHosts, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    folder = ssh_hosts.fresh_dir("box1")
    host_dir = str(ssh_hosts.hosts["box1"].home / folder.removeprefix("~/"))
    claude = f"{host_dir}/bin/claude"
    wrapper = (f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(SOURCE))} "
               "exec python3 -m supervisor.demo.agent --look claude \"$@\"\n")
    ssh_hosts.ssh("box1", "sh", "-c", 'mkdir -p "$1/bin" && printf %s "$2" > "$1/bin/claude" && chmod +x '
                  '"$1/bin/claude" && printf %s "$3" > "$1/bin/script.yaml"', "sh", host_dir, wrapper, SCRIPT)
    command = f"{claude} --claude --script {host_dir}/bin/script.yaml --record {host_dir}/prompts.jsonl"
    sandbox.write_config(
        f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\nlimits:\n  idle_after: 1s\n"
        f"isolation: none\nhosts:\n  box1:\n    ssh: box1\n    ssh_config: {ssh_hosts.config}\n    dir: {folder}\n")
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    monkeypatch.setenv("HOME", str(sandbox.home))
    engine = Engine(sandbox.paths)
    serving = threading.Thread(target=engine.serve, kwargs={"hangup_stops": False}, daemon=True)
    serving.start()
    made = Remote(sandbox, engine, host_dir, command)
    try:
        wait_until(lambda: engine.hostlinks.link("box1") is not None, timeout=60, message="box1's link up")
        yield made
    finally:
        engine.request_stop()
        serving.join(30)
        host = engine.host_named("box1")
        assert isinstance(host, RemoteHost)
        ssh_hosts.ssh("box1", "tmux", "-S", f"{host_dir}/{host.key}/tmux.sock", "kill-server", check=False)


def tree_on_host(link: Link, pid: int) -> list[int]:
    return [int(info["pid"]) for info in link.call("ps", pids=[pid]) if info["state"] != "Z"]


def test_an_agent_on_a_host_works_idles_takes_a_send_shows_its_log_and_stops_whole(remote: Remote) -> None:
    box = remote.sandbox
    started = remote.request("start", name="far", task="plan it", command=remote.command, profile="claude",
                             host="box1")
    assert started["name"] == "far"
    shown = box.agent("far")
    host = remote.engine.host_named("box1")
    assert isinstance(host, RemoteHost)
    layout = host.layout()
    assert shown["host"] == "box1" and shown["worktree"] == layout.worktree("far")
    # its worktree there: made from the base commit of the user's repository, on its own branch, with SESSION.md
    there = remote.link().call("run", argv=["git", "-C", layout.worktree("far"), "log", "-1", "--format=%H %D"])
    assert there["stdout"].split()[:2] == [box.git("rev-parse", "HEAD"), "HEAD"]
    assert "agent/far/work" in there["stdout"]
    assert "your contract" in remote.link().call("read", path=f"{layout.worktree('far')}/SESSION.md")["text"]

    # working on its task, then idle once it finished (its working spell is short: read from its history)
    box.wait_state("far", "idle", timeout=60)
    states = [event["state"] for event in box.agent("far")["events"] if event.get("state")]
    assert states[-2:] == ["working", "idle"], states
    screen = remote.request("screen", name="far")["text"]
    assert "REMOTE-FIRST-DONE" in screen
    clients = remote.link().call("run", argv=["tmux", "-S", layout.tmux_socket, "list-clients", "-F",
                                              "#{client_control_mode} #{session_name}"])["stdout"]
    assert "1 _engine" in clients.splitlines()  # the watcher's control-mode client, relayed over the link

    # its environment there names the host's folders, not this machine's
    pid = int(box.agent("far")["pid"])
    environ = remote.link().call("run", argv=["sh", "-c", f"tr '\\0' '\\n' < /proc/{pid}/environ"])["stdout"]
    assert f"SUPERVISOR_SOCKET={layout.socket('far')}" in environ.splitlines()
    assert f"CLAUDE_CONFIG_DIR={layout.state('far')}" in environ.splitlines()
    settings = remote.link().call("read", path=f"{layout.state('far')}/settings.json")["text"]
    assert f'"{host.channel.hook_command()}"' in settings  # the host client's hook, not this machine's
    assert str(box.paths.state_dir) not in settings

    # `send` types into the pane on the host, and the agent takes it as a prompt
    box.sv("send", "far", "follow up please")
    wait_until(lambda: "follow up please" in remote.link().call(
        "run", argv=["cat", f"{remote.host_dir}/prompts.jsonl"])["stdout"], timeout=30, message="the prompt taken")
    wait_until(lambda: "REMOTE-SECOND-DONE" in remote.request("screen", name="far")["text"], timeout=30,
               message="its second turn")
    box.wait_state("far", "idle", timeout=30)

    # `log` shows what it printed there
    log = box.sv("log", "far").stdout
    assert "REMOTE-FIRST-DONE" in log and "REMOTE-SECOND-DONE" in log

    # `stop` ends its whole tree on the host (its background `sleep 600` too)
    tree = tree_on_host(remote.link(), pid)
    assert len(tree) >= 3  # the shell of its pane... the CLI, and the child it spawned
    box.sv("stop", "far")
    assert box.state("far") in ("exited", "stopped")
    left = [int(info["pid"]) for info in remote.link().call("ps", pids=tree) if info["state"] != "Z"]
    assert left == []


def test_a_host_cut_off_holds_up_no_local_agent(remote: Remote, ssh_hosts: SshHosts) -> None:
    box = remote.sandbox
    remote.request("start", name="far", command=remote.command, profile="claude", host="box1")
    box.wait_state("far", "idle", "starting", timeout=30)
    box.sv("start", "near", "--task", "hello")
    box.wait_state("near", "idle", timeout=30)
    ssh_hosts.cut("box1")
    try:
        box.wait_state("far", "unreachable", timeout=30)
        ticks = remote.engine.watcher.ticks
        box.sv("send", "near", "again")  # the local agent works and idles again while box1 is gone
        box.wait_state("near", "working", timeout=15)
        box.wait_state("near", "idle", timeout=15)
        assert remote.engine.watcher.ticks > ticks
        assert box.state("far") == "unreachable"
    finally:
        ssh_hosts.resume("box1")
