"""`supervisor` in a pane on a host, as an agent runs it there (the fake claude's `!` shell mode, through the real
sshd host box1 of tests/remotes.py): the same commands as in a local agent's pane — helper, msg, report, status
and the task board —, sandboxed or not. In the sandbox the host's `dir` is hidden, all but the agent's own parts
and the folder of its `supervisor` command.

A sandboxed run needs the host's bubblewrap: without it the test is skipped, but under CI it fails
(tests/sandboxed.py), so that a run where every agent went unsandboxed never passes for one that was sandboxed.
"""

from __future__ import annotations

import itertools
import json
import shutil
import uuid
from typing import Any

import pytest

from supervisor.hosts import hostapp, watch
from tests import sandboxed
from tests.conftest import wait_until
from tests.remotes import HOST, Remote, remote_fixture  # noqa: F401  (the fixture)

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not sandboxed.in_ci(),
                                 reason="needs bubblewrap (apt-get install bubblewrap)")
_runs = itertools.count()
TURNS = """\
turns:
  - [say: "FIRST-TURN-DONE"]
  - [say: "SECOND-TURN-DONE"]
"""


def start(remote: Remote, name: str) -> dict[str, Any]:
    remote.request("start", name=name, task="first", command=remote.claude(name, TURNS), profile="claude",
                   host=HOST)
    agent = remote.sandbox.wait_state(name, "idle", timeout=60)
    assert agent["isolation"] == remote.isolation  # never less isolated than the test means
    return agent


def board(remote: Remote) -> dict[int, dict[str, Any]]:
    return {task["id"]: task for task in json.loads(remote.sandbox.sv("task", "ls", "--json").stdout)}


def ran(remote: Remote, name: str, command: str) -> str:
    """What `command` printed in agent `name`'s pane there (the log holds the whole transcript: what follows a
    marker that only the command's output, never the typed line, holds)."""
    marker = f"out-{next(_runs)}-"
    log = remote.in_pane(name, f"echo {marker}'begin'; {command}")
    return log.rpartition(f"{marker}begin")[2].partition("\nran-")[0]  # up to in_pane's own end marker


@needs_bwrap
@pytest.mark.parametrize("remote", ["sandbox"], indirect=True)
def test_a_sandboxed_agent_on_a_host_has_the_supervisor_command(remote: Remote) -> None:
    start(remote, "far")
    said = ran(remote, "far", "supervisor status")
    assert "engine: running" in said and "not found" not in said, said

    said = ran(remote, "far", "supervisor helper scout --role test-agent --task 'look around' --no-wait")
    assert "far.scout: " in said, said
    scout = remote.sandbox.wait_state("far.scout", "idle", timeout=60)
    assert scout["isolation"] == "sandbox"

    said = ran(remote, "far.scout", "supervisor msg parent 'from the sandbox'")
    assert "to far: saved in " in said, said
    said = ran(remote, "far.scout", "supervisor report --waiting-for far")
    assert "far.scout: waiting for far" in said, said
    assert [event["waiting_for"] for event in remote.request("events", name="far.scout", limit=1000)
            if event["kind"] == "report"] == [["far"]]

    # the command's folder shows the command alone, and the rest of the host's `dir` stays hidden
    layout = remote.host().layout()
    said = ran(remote, "far", f"ls -A {layout.root}/bin; test -e {layout.tmux_socket} && echo TMUX-SEEN; "
                              f"ls {layout.root}/state")
    assert said.split() == ["supervisor", "far"], said

    # a CLI under the host's `dir` is found there, but not in the sandbox: the start says so, and the fix
    inside = f"{remote.host_dir}/cli"
    remote.on_host("sh", "-c", 'mkdir -p "$1" && cp "$2/claude" "$1/claude"', "sh", inside, remote.cli)
    done = remote.sandbox.sv("start", "hidden", "--host", HOST, "--command", f"{inside}/claude --claude",
                             check=False)
    assert done.returncode == 1
    assert (f"hidden failed to start: command not found: {inside}/claude on host {HOST} (found at {inside}/claude, "
            f"but it lies under the host's dir ({remote.host_dir}), which an agent's sandbox there hides)"
            in done.stderr), done.stderr
    assert f"install it on host {HOST} outside its dir" in done.stderr


@needs_bwrap
@pytest.mark.parametrize("remote", ["sandbox"], indirect=True)
def test_a_sandboxed_agent_on_a_host_keeps_its_supervisor_command_and_guard_across_an_engine_upgrade(
        remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine with another host program connects (as after an upgrade): it installs its own version beside the
    old one and points the shared `supervisor` shim and the guard's hooks at it; an agent whose sandbox was made
    before still runs both."""
    start(remote, "far")
    older = remote.link().app.version
    assert "engine: running" in ran(remote, "far", "supervisor status")
    newer = hostapp.build({"hostside/newer.py": f"# {uuid.uuid4().hex}\n".encode()})
    monkeypatch.setattr(watch, "host_app", lambda: newer)
    config = remote.sandbox.paths.config_file  # the host's settings changed: its link is made anew
    config.write_text(config.read_text().replace(f"    ssh: {HOST}\n", f"    ssh: {HOST}\n    max_agents: 9\n", 1))
    wait_until(lambda: (link := remote.engine.hostlinks.link(HOST)) is not None and link.app is newer, timeout=60,
               message="the newer host program's link up")
    shim = remote.host().channel.shim_path()
    wait_until(lambda: f"host-{newer.version}.pyz" in remote.on_host("cat", shim), timeout=30,
               message="the shim pointing at the newer host program")
    assert newer.version != older

    said = ran(remote, "far", "supervisor status")
    assert "engine: running" in said, said
    start(remote, "near")  # its commit guard written for the newer program, in the hooks every agent there uses
    said = ran(remote, "far", "echo x > after.txt && git add after.txt && git commit -q -m after && echo COMMITTED")
    assert "COMMITTED" in said, said


@needs_bwrap
@pytest.mark.parametrize("remote", ["sandbox"], indirect=True)
def test_with_the_hosts_dir_holding_its_home_a_cli_under_the_home_starts_sandboxed(remote: Remote) -> None:
    """`dir: ~`: the sandbox keeps the home readable and hides this repository's folder in it, so a CLI under the
    home (here the fake claude's folder) starts, and one in the repository's folder is refused, saying so."""
    home = str(remote.ssh_hosts.hosts[HOST].home)
    config = remote.sandbox.paths.config_file
    text = config.read_text()
    folder = text.partition("    dir: ")[2].partition("\n")[0]
    config.write_text(text.replace(f"    dir: {folder}\n", "    dir: '~'\n"))
    wait_until(lambda: (link := remote.engine.hostlinks.link(HOST)) is not None and link.hello.get("dir") == home,
               timeout=60, message="the link with the new dir up")
    root = remote.host().layout().root
    assert root.startswith(home + "/")
    try:
        start(remote, "far")
        assert "engine: running" in ran(remote, "far", "supervisor status")
        inside = f"{root}/cli"
        remote.on_host("sh", "-c", 'mkdir -p "$1" && cp "$2/claude" "$1/claude"', "sh", inside, remote.cli)
        done = remote.sandbox.sv("start", "hidden", "--host", HOST, "--command", f"{inside}/claude --claude",
                                 check=False)
        assert done.returncode == 1
        assert (f"but it lies in the repository's folder under the host's dir ({root}), which an agent's sandbox "
                "there hides" in done.stderr), done.stderr
        assert f"install it on host {HOST} outside this repository's folder there ({root})" in done.stderr
    finally:
        remote.sandbox.sv("stop", "far", check=False)
        remote.on_host("sh", "-c", 'tmux -S "$1/tmux.sock" kill-server; rm -rf "$1"', "sh", root)


@pytest.mark.parametrize("remote", [pytest.param("sandbox", marks=needs_bwrap), "none"], indirect=True)
def test_the_task_board_from_panes_on_a_host(remote: Remote) -> None:
    remote.sandbox.sv("task", "add", "--lines", "-", input="Port the parser\nWrite the docs\n")
    start(remote, "far")

    said = ran(remote, "far", "supervisor task claim")
    assert said.split()[:4] == ["1", "Port", "the", "parser"], said
    assert (board(remote)[1]["state"], board(remote)[1]["by"]) == ("claimed", "far")  # as that agent

    said = ran(remote, "far", "supervisor task add 'Found on the way'")
    assert said.split()[:3] == ["added", "task", "3"], said
    said = ran(remote, "far", "supervisor task ls --state open")
    assert "Write the docs" in said and "Found on the way" in said and "Port the parser" not in said, said

    said = ran(remote, "far", "supervisor task done 1")
    assert "task 1: done" in said, said
    said = ran(remote, "far", "supervisor task claim --json")
    assert '"id": 2' in said, said
    said = ran(remote, "far", "supervisor task release 2")
    assert "task 2: back on the board" in said, said
    # what the board refuses is said there as here, with its exit status
    said = ran(remote, "far", "supervisor task done 99; echo exit=$?")
    assert "no task 99" in said and "exit=2" in said, said

    tasks = board(remote)
    assert [(task["state"], task["by"]) for task in tasks.values()] == [("done", "far"), ("open", None),
                                                                       ("open", None)]
    assert tasks[3]["text"] == "Found on the way"


def test_a_start_on_a_host_without_the_cli_names_the_host_and_the_fix(remote: Remote) -> None:
    done = remote.sandbox.sv("start", "ghost", "--host", HOST, "--task", "anything", "--command",
                             "no-such-agent-cli --flag", check=False)
    assert done.returncode == 1
    assert f"ghost failed to start: command not found: no-such-agent-cli on host {HOST} (not on the PATH an agent " \
           "gets there: " in done.stderr, done.stderr
    assert f"install it on host {HOST} outside its dir (~/t-" in done.stderr
    assert remote.sandbox.ls()["ghost"]["state"] == "failed"
