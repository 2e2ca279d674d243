"""A plan placed across real hosts (the sshd hosts box1 and box2 of tests/sshd.py, each its own user): each
session runs on the host with the most free places, within each host's `max_agents`, and a plan that finds no
room is refused with the reason before anything of it starts."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import Sandbox
from tests.remotes import SOURCE
from tests.sshd import SshHosts

HOSTS = ("box1", "box2")
# The demo agent as each host's user runs it there: the source is readable by both users, and their own python3
# imports it (nothing is installed on the hosts but what the engine puts there).
AGENT = f"env PYTHONPATH={shlex.quote(str(SOURCE))} python3 -m supervisor.demo.agent"


@pytest.fixture
def two_hosts(sandbox: Sandbox, ssh_hosts: SshHosts) -> Iterator[dict[str, Path]]:
    """supervisor.yaml with box1 and box2, one place each; each host's `dir`, absolute. Their tmux servers go
    at the end."""
    folders = {name: ssh_hosts.fresh_dir(name) for name in HOSTS}
    hosts = "".join(f"  {name}:\n    ssh: {name}\n    ssh_config: {ssh_hosts.config}\n    dir: {folder}\n"
                    "    max_agents: 1\n" for name, folder in folders.items())
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {AGENT}\n  stagger: 0s\nlimits:\n"
                         f"  idle_after: 1s\nisolation: none\nalerts:\n  tmux: false\nhosts:\n{hosts}")
    dirs = {name: ssh_hosts.hosts[name].home / folder.removeprefix("~/") for name, folder in folders.items()}
    try:
        yield dirs
    finally:
        sandbox.sv("engine", "stop", check=False)
        for name, folder in dirs.items():
            for socket in folder.glob("*/tmux.sock"):
                ssh_hosts.ssh(name, "tmux", "-S", str(socket), "kill-server", check=False)


def test_a_plan_is_placed_across_real_hosts_within_their_places(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                 two_hosts: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("hosts: [box1, box2]\n"
                    "sessions:\n"
                    "  - name: s1\n"
                    "    task: one\n"
                    "  - name: s2\n"
                    "    task: two\n")
    sandbox.sv("run", str(plan))
    # s1 ties (one free place each) and goes to the first listed; s2 to the host with a place left.
    for name, host in (("s1", "box1"), ("s2", "box2")):
        agent = sandbox.wait_state(name, "idle", "working", timeout=60)
        assert agent["host"] == host, agent
        assert agent["worktree"].startswith(f"{two_hosts[host]}/"), agent["worktree"]
        # its process runs there, as that host's user (box1 and box2 are this machine under their users)
        assert psutil.Process(int(sandbox.agent(name)["pid"])).username() == ssh_hosts.hosts[host].user

    # Full: a session named for a host, and one left to be placed, are refused with the reason, nothing started.
    (tmp_path / "named.yaml").write_text("sessions:\n  - name: s3\n    task: three\n    host: box1\n")
    named = sandbox.sv("run", str(tmp_path / "named.yaml"), check=False)
    assert named.returncode == 2, named.stderr
    assert named.stderr.splitlines()[0] == (
        f"supervisor: error: {tmp_path / 'named.yaml'}:4: session s3: host box1 has no room for it (box1 has 1 "
        "places, 1 taken, counting this plan's sessions placed before it); nothing was started")
    placed = tmp_path / "placed.yaml"
    placed.write_text("hosts: [box1, box2]\nsessions:\n  - name: s4\n    task: four\n")
    refused = sandbox.sv("run", str(placed), check=False)
    assert refused.returncode == 2, refused.stderr
    assert "session s4: none of the hosts box1, box2 has room for it (box1 has 1 places, 1 taken; box2 has 1 " \
        "places, 1 taken" in refused.stderr.splitlines()[0], refused.stderr
    assert set(sandbox.ls()) == {"s1", "s2"}
