"""What a hostile agent on a host tries from inside its own pane there, and the host's sandbox stops, against a
real sshd host (tests/sshd.py) and a real engine: each probe runs as a `run:` step of a real agent in its pane on
box1. The same probes with `isolation: none` there (the control) get through, so each assertion tells the
sandbox's work from what the host allows anyway. A host whose bubblewrap is not usable runs agents with
`isolation: none`, says so in `hosts check`, and refuses an agent that asks for the sandbox.

The engine runs in this process (as in tests/test_remote_panes.py), its socket the one the CLI reaches."""

from __future__ import annotations

import re
import shlex
import threading
import uuid
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
from tests.conftest import Sandbox, wait_until
from tests.sshd import SshHosts

SOURCE = Path(supervisor.__file__).resolve().parent.parent  # readable by the host users: their python imports it
PROBE = r"""probe() { if sh -c "$2" >/dev/null 2>&1; then echo "PROBE $1=yes"; else echo "PROBE $1=no"; fi; }
"""
PROBES = r"""
probe other_worktree "cat '{victim}/SESSION.md'"
probe other_state "cat '{victim_state}/secret'"
probe other_socket "python3 -c '{connect}' '{victim_socket}'"
probe own_socket "python3 -c '{connect}' \"$SUPERVISOR_SOCKET\""
probe tmux "tmux -S '{tmux}' list-sessions"
probe victim_env "cat /proc/[0-9]*/environ | tr '\0' '\n' | grep -q SUPERVISOR_AGENT=victim"
probe host_program "echo x > '{installed}/planted'"
probe shared_config "echo '[filter \"x\"]' >> '{clone}/config'"
probe guard_hooks "echo 'touch /tmp/owned' >> '{root}/hooks/pre-commit'"
probe packs "touch '{clone}/objects/pack/planted'"
probe alternates "echo /tmp >> '{clone}/objects/info/alternates'"
probe commit "git -c user.name=r -c user.email=r@e commit -q --allow-empty --no-verify -m own-work"
probe move_victim "git update-ref refs/heads/agent/victim/work HEAD"
probe move_base "git update-ref refs/heads/planted HEAD"
probe escape "setsid sh -c 'exec sleep {sleep}' </dev/null >/dev/null 2>&1 &"
"""
CONNECT = "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])"


@dataclass
class Remote:
    sandbox: Sandbox
    engine: Engine
    ssh_hosts: SshHosts
    cli: str  # a folder of the test's own on the host, outside the host's `dir`: the scripts the agents run

    def request(self, method: str, **params: Any) -> Any:
        return request_at(self.engine.paths.engine_socket, method, params, 120)

    def link(self) -> Link:
        found = self.engine.hostlinks.link("box1")
        assert found is not None and found.up
        return found

    def host(self) -> RemoteHost:
        host = self.engine.host_named("box1")
        assert isinstance(host, RemoteHost)
        return host

    def command(self, name: str, start: str = "") -> str:
        """The demo agent on the host, whose start runs `start` (a shell command line) and which then idles."""
        script = f"{self.cli}/{name}.yaml"
        text = (f"start:\n  - {{run: {_yaml_string(start)}}}\n" if start else "") + "turns: []\n"
        self.ssh_hosts.ssh("box1", "sh", "-c", 'printf %s "$2" > "$1"', "sh", script, text)
        return f"env PYTHONPATH={shlex.quote(str(SOURCE))} python3 -m supervisor.demo.agent --script {script}"


def _yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _start_engine(sandbox: Sandbox, ssh_hosts: SshHosts, monkeypatch: pytest.MonkeyPatch, ssh: str,
                  isolation: str | None) -> Iterator[Remote]:
    folder = ssh_hosts.fresh_dir("box1")
    cli = ssh_hosts.fresh_dir("box1").replace("~", str(ssh_hosts.hosts["box1"].home), 1)
    ssh_hosts.ssh("box1", "mkdir", "-p", cli)
    sandbox.write_config(
        "agent:\n  profile: generic\n  command: sleep 600\n  stagger: 0s\nlimits:\n  idle_after: 1s\n"
        + (f"isolation: {isolation}\n" if isolation else "")
        + f"hosts:\n  box1:\n    ssh: {ssh}\n    ssh_config: {ssh_hosts.config}\n    dir: {folder}\n")
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    monkeypatch.setenv("HOME", str(sandbox.home))
    engine = Engine(sandbox.paths)
    serving = threading.Thread(target=engine.serve, kwargs={"hangup_stops": False}, daemon=True)
    serving.start()
    made = Remote(sandbox, engine, ssh_hosts, cli)
    try:
        wait_until(lambda: engine.hostlinks.link("box1") is not None, timeout=60, message="box1's link up")
        yield made
    finally:
        engine.request_stop()
        serving.join(30)
        host = engine.host_named("box1")
        if isinstance(host, RemoteHost):
            home = ssh_hosts.hosts["box1"].home
            ssh_hosts.ssh("box1", "tmux", "-S", f"{home}/{folder[2:]}/{host.key}/tmux.sock", "kill-server",
                          check=False)


@pytest.fixture
def remote(sandbox: Sandbox, ssh_hosts: SshHosts, monkeypatch: pytest.MonkeyPatch,
           request: pytest.FixtureRequest) -> Iterator[Remote]:
    yield from _start_engine(sandbox, ssh_hosts, monkeypatch, "box1", getattr(request, "param", None))


@pytest.fixture
def bare(sandbox: Sandbox, ssh_hosts: SshHosts, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    """box1 reached as a login whose PATH has no bubblewrap."""
    yield from _start_engine(sandbox, ssh_hosts, monkeypatch, "box1-nobwrap", None)


def _probes(remote: Remote) -> tuple[dict[str, str], str]:
    """Start a victim on box1, then a rogue whose start runs every probe; what each probe did (`yes`: it
    worked), and the rogue's marker sleep (the `escape` probe's)."""
    box = remote.sandbox
    remote.request("start", name="victim", command=remote.command("victim"), profile="generic", host="box1")
    box.wait_state("victim", "idle", "working", timeout=60)
    layout = remote.host().layout()
    home = remote.link().hello["home"]
    sleep = f"6000.{uuid.uuid4().int % 10**9}"
    # what the victim's CLI keeps in its folder, and a file in the host program's folder beside the program (which
    # the sandbox shows read-only: every version there must stay reachable after an upgrade)
    installed = f"{home}/.local/share/supervisor"
    remote.ssh_hosts.ssh("box1", "sh", "-c", 'mkdir -p "$1" && echo secret > "$1/secret" && echo x > "$2/planted"',
                         "sh", layout.state("victim"), installed)
    probes = PROBE + PROBES.format(
        victim=layout.worktree("victim"), victim_state=layout.state("victim"),
        victim_socket=layout.socket("victim"), tmux=layout.tmux_socket, installed=installed, connect=CONNECT,
        clone=layout.clone, root=layout.root, sleep=sleep) + "echo PROBES DONE\n"
    remote.ssh_hosts.ssh("box1", "sh", "-c", 'printf %s "$2" > "$1"', "sh", f"{remote.cli}/probes.sh", probes)
    remote.request("start", name="rogue", command=remote.command("rogue", f"sh {remote.cli}/probes.sh"),
                   profile="generic", host="box1")

    def finished() -> str | None:
        text = box.sv("log", "rogue").stdout
        return text if "PROBES DONE" in text else None

    log = wait_until(finished, timeout=60, message="the probes to finish")
    return dict(re.findall(r"^PROBE (\w+)=(yes|no)", log, re.MULTILINE)), sleep


def _sleeping(remote: Remote, marker: str) -> list[str]:
    # its whole command line (the shell ssh runs pgrep in carries the words too)
    done = remote.ssh_hosts.ssh("box1", "pgrep", "-x", "-f", f"sleep {marker}", check=False)
    return done.stdout.split()


@pytest.mark.parametrize("remote", [None], indirect=True)
def test_an_agent_on_a_host_sees_and_moves_only_its_own_work_there(remote: Remote) -> None:
    found, sleep = _probes(remote)
    box = remote.sandbox
    assert box.agent("rogue")["isolation"] == "sandbox"  # the host can: its default there, as here
    assert found == {
        "other_worktree": "no", "other_state": "no", "other_socket": "no", "own_socket": "yes", "tmux": "no",
        "victim_env": "no", "host_program": "no", "shared_config": "no", "guard_hooks": "no", "packs": "no",
        "alternates": "no", "commit": "yes", "move_victim": "no", "move_base": "no", "escape": "yes"}
    refs = remote.link().call("git_heads", repo=remote.host().layout().clone)["refs"]
    assert "refs/heads/planted" not in refs
    assert refs["refs/heads/agent/victim/work"] != refs["refs/heads/agent/rogue/work"]  # its own moved only

    # its own code the engine runs for it there (a worktrees.setup, a merge.check) gets the same sandbox, without
    # its socket
    layout = remote.host().layout()
    rogue = remote.engine.store.get_agent("rogue")
    assert rogue is not None
    ran = remote.host().run_isolated(
        rogue, f"cat '{layout.worktree('victim')}/SESSION.md' && echo SEEN-VICTIM; "
               f"test -e '{layout.socket('rogue')}' && echo SEEN-SOCKET; echo mine > setup.txt && echo WROTE",
        rogue.worktree, {})
    assert ran.exit_code == 0 and "WROTE" in ran.lines, ran
    assert "SEEN-VICTIM" not in ran.lines and "SEEN-SOCKET" not in ran.lines

    # `stop` ends every process it started there, the one that left its session too
    assert _sleeping(remote, sleep)
    box.sv("stop", "rogue")
    wait_until(lambda: not _sleeping(remote, sleep), timeout=15, message="the rogue's escaped sleep gone")


@pytest.mark.parametrize("remote", ["none"], indirect=True)
def test_without_the_sandbox_on_a_host_the_probes_get_through(remote: Remote) -> None:
    found, _ = _probes(remote)
    try:
        assert remote.sandbox.agent("rogue")["isolation"] == "none"
        assert {key for key, value in found.items() if value == "yes"} >= {
            "other_worktree", "other_state", "other_socket", "own_socket", "tmux", "victim_env", "host_program",
            "shared_config", "guard_hooks", "packs", "alternates", "commit", "move_victim", "move_base"}
    finally:
        remote.sandbox.sv("stop", "rogue", check=False)


def test_a_host_without_bubblewrap_runs_agents_unsandboxed_says_so_and_refuses_the_sandbox(bare: Remote) -> None:
    box = bare.sandbox
    assert bare.link().hello["bwrap"] is False
    checked = box.sv("hosts", "check", "box1")
    line = next(line for line in checked.stdout.splitlines() if "isolation" in line)
    assert "isolation: none" in line and "refused" in line

    bare.request("start", name="plain", command=bare.command("plain"), profile="generic", host="box1")
    assert box.wait_state("plain", "idle", "working", timeout=60)["isolation"] == "none"

    with pytest.raises(Exception, match="cannot make one") as refused:
        bare.request("start", name="boxed", command=bare.command("boxed"), profile="generic", host="box1",
                     isolation="sandbox")
    assert "bubblewrap" in str(refused.value)
    assert box.ls()["boxed"]["state"] == "failed"
