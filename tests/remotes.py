"""A real engine with agents on the real sshd host box1 (tests/sshd.py), shared by the tests of remote agents.

Nothing is stood in for: an agent's worktree is made on the host from the base pushed over the link. The engine
runs in the test's process (as in tests/test_pane_identity.py), so that a test can see its watch and links.
`remote` is the fixture; a test module imports it (`from tests.remotes import remote_fixture`). Its agents run
with `isolation: none`, or sandboxed when a test asks (`@pytest.mark.parametrize("remote", ["sandbox"],
indirect=True)`): the fake claude then lives outside the host's `dir`, which the sandbox hides, as a real CLI
must, and records no prompts (nothing outside the agent's own folders is writable there)."""

from __future__ import annotations

import itertools
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

_runs = itertools.count()  # markers of commands run in panes

HOST = "box1"
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
    ssh_hosts: SshHosts
    host_dir: str  # the host's `dir`, absolute
    command: str  # the fake claude on the host, running SCRIPT
    cli: str = ""  # the folder of the fake claude and its scripts on the host (host_dir/bin unless sandboxed)
    isolation: str = "none"

    def request(self, method: str, **params: Any) -> Any:
        return request_at(self.engine.paths.engine_socket, method, params, 120)

    def link(self) -> Link:
        found = self.engine.hostlinks.link(HOST)
        assert found is not None and found.up
        return found

    def host(self) -> RemoteHost:
        found = self.engine.host_named(HOST)
        assert isinstance(found, RemoteHost)
        return found

    def claude(self, name: str, script: str) -> str:
        """The command line of the fake claude on the host running `script` (kept there as NAME.yaml)."""
        path = f"{self.cli}/{name}.yaml"
        self.ssh_hosts.ssh(HOST, "sh", "-c", 'printf %s "$2" > "$1"', "sh", path, script)
        return f"{self.cli}/claude --claude --script {path}" + _record(self.host_dir, self.isolation)

    def limits(self, text: str) -> None:
        """supervisor.yaml with more `limits:` (`key: value` lines), in force from the next request on."""
        config = self.sandbox.paths.config_file
        config.write_text(config.read_text().replace("limits:\n", f"limits:\n  {text}\n", 1))

    def in_pane(self, name: str, command: str) -> str:
        """Have agent `name` run `command` in its pane on the host (the fake claude's `!` shell mode, as the agent
        runs it: its guard and `supervisor` reach the engine through its own socket); what its log shows once it
        has finished."""
        marker = f"ran-{next(_runs)}-"
        self.request("send", name=name, text=f"!{command}; echo {marker}'end'")  # the typed text never reads it

        def finished() -> str | None:
            done = self.sandbox.sv("log", name, check=False)
            return done.stdout if done.returncode == 0 and f"{marker}end" in done.stdout else None
        return str(wait_until(finished, timeout=60, message=f"{name} ran {command!r}"))

    def on_host(self, *words: str) -> str:
        """What `words` print on the host, run through the engine's own link."""
        ran = self.link().call("run", argv=list(words), timeout=30)
        assert ran["rc"] == 0, ran
        return str(ran["stdout"])


def _record(host_dir: str, isolation: str) -> str:
    return f" --record {host_dir}/prompts.jsonl" if isolation == "none" else ""


@pytest.fixture(name="remote")
def remote_fixture(sandbox: Sandbox, ssh_hosts: SshHosts, monkeypatch: pytest.MonkeyPatch,
                   request: pytest.FixtureRequest) -> Iterator[Remote]:
    isolation = getattr(request, "param", None) or "none"
    folder = ssh_hosts.fresh_dir(HOST)
    home = ssh_hosts.hosts[HOST].home
    host_dir = str(home / folder.removeprefix("~/"))
    cli = f"{host_dir}/bin" if isolation == "none" else str(home / ssh_hosts.fresh_dir(HOST).removeprefix("~/"))
    wrapper = (f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(SOURCE))} "
               "exec python3 -m supervisor.demo.agent --look claude \"$@\"\n")
    ssh_hosts.ssh(HOST, "sh", "-c", 'mkdir -p "$1" && printf %s "$2" > "$1/claude" && chmod +x '
                  '"$1/claude" && printf %s "$3" > "$1/script.yaml"', "sh", cli, wrapper, SCRIPT)
    command = f"{cli}/claude --claude --script {cli}/script.yaml" + _record(host_dir, isolation)
    sandbox.write_config(
        f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\nlimits:\n  idle_after: 1s\n"
        f"isolation: {isolation}\nhosts:\n  {HOST}:\n    ssh: {HOST}\n    ssh_config: {ssh_hosts.config}\n"
        f"    dir: {folder}\n")
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    monkeypatch.setenv("HOME", str(sandbox.home))
    engine = Engine(sandbox.paths)
    serving = threading.Thread(target=engine.serve, kwargs={"hangup_stops": False}, daemon=True)
    serving.start()
    made = Remote(sandbox, engine, ssh_hosts, host_dir, command, cli, isolation)
    try:
        wait_until(lambda: engine.hostlinks.link(HOST) is not None, timeout=60, message=f"{HOST}'s link up")
        yield made
    finally:
        engine.request_stop()
        serving.join(30)
        host = engine.host_named(HOST)
        assert isinstance(host, RemoteHost)
        ssh_hosts.ssh(HOST, "tmux", "-S", f"{host_dir}/{host.key}/tmux.sock", "kill-server", check=False)
