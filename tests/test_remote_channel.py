"""Remote agents' own sockets on a host, against a real sshd host (tests/sshd.py) and a real engine: hook events
from the host decide the agent's state at home; a PermissionRequest is held on the host until `approve`/`deny`
at home answers it; a request through agent A's socket acts only as A and never calls what only a human may;
while the host's link is cut, hook events spool on the host and come home in order, applied once.

Agents cannot be launched on hosts here yet: each agent's record is written through the store (as a remote
launch would leave it), and its CLI is stood for by the host client run there, as its hooks run it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from typing import Any

import pytest

from supervisor.client import request_at
from supervisor.core.contract import Contract, render_contract
from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.engine.approvals import permission_answer
from supervisor.hosts.remote.layout import HostLayout, repo_key
from tests.conftest import Sandbox, wait_until
from tests.sshd import SshHosts

HOST = "box1"
BACKOFF_BOUND = 90.0  # seconds: a host back is found by the next attempt (the delay doubles to 60 s at most)


class Far:
    """One test's repository as box1 holds it, and the client there."""

    def __init__(self, sandbox: Sandbox, ssh_hosts: SshHosts) -> None:
        self.sandbox = sandbox
        self.ssh_hosts = ssh_hosts
        folder = ssh_hosts.fresh_dir(HOST)
        sandbox.write_config("agent:\n  profile: generic\n  command: sleep 600\nalerts:\n  tmux: false\n"
                             f"hosts:\n  {HOST}:\n    ssh: {HOST}\n    ssh_config: {ssh_hosts.config}\n"
                             f"    dir: {folder}\n")
        host_dir = str(ssh_hosts.hosts[HOST].home / folder.removeprefix("~/"))
        self.layout = HostLayout.of(host_dir, repo_key(sandbox.paths.common_dir, sandbox.paths.name))

    def place(self, name: str, state: State = State.IDLE, contract: Contract | None = None) -> None:
        """An agent record on the host, as a remote launch leaves it (written before the engine starts)."""
        paths = self.sandbox.paths
        paths.ensure_dirs()
        store = Store(paths.db_path)
        try:
            now = time.time()
            store.add_agent(Agent(name=name, profile="claude", command="claude", worktree=self.layout.worktree(name),
                                  branch=f"agent/{name}/work", base=self.sandbox.git("rev-parse", "HEAD"),
                                  target="main", state=state, state_since=now, started_at=now, host=HOST,
                                  extra={} if contract is None else {"contract": render_contract(contract)}))
        finally:
            store.close()

    def start(self, *names: str) -> None:
        self.sandbox.sv("engine", "start")
        for name in names:
            wait_until(lambda name=name: self.on_host("test", "-S", self.layout.socket(name)).returncode == 0,
                       timeout=60, message=f"{name}'s socket on {HOST}")

    def on_host(self, *words: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = ["ssh", "-F", str(self.ssh_hosts.config), "-T", "-o", "BatchMode=yes", HOST, "--", shlex.join(words)]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)

    def client_words(self, name: str, *args: str, socket: str | None = None) -> list[str]:
        """`supervisor ARGS` in agent `name`'s pane there: its variables, and the shim on its PATH."""
        return ["env", f"SUPERVISOR_SOCKET={socket or self.layout.socket(name)}", f"SUPERVISOR_AGENT={name}",
                f"{self.layout.root}/bin/supervisor", *args]

    def hook(self, name: str, event: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.on_host(*self.client_words(name, "hook"), stdin=json.dumps(event))

    def events(self, name: str) -> list[dict[str, Any]]:
        socket = self.sandbox.runtime / self.sandbox.paths.runtime_dir.name / "engine.sock"
        return list(request_at(socket, "events", {"name": name, "limit": 1000}, 10))

    def hooks_recorded(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.events(name) if event["kind"] == "hook"]

    def spooled(self, name: str) -> list[str]:
        done = self.on_host("ls", "-A", f"{self.layout.spool(name)}/hooks")
        return done.stdout.split()


@pytest.fixture
def far(sandbox: Sandbox, ssh_hosts: SshHosts) -> Far:
    return Far(sandbox, ssh_hosts)


def tool_call(command: str) -> dict[str, Any]:
    return {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}}


def test_hook_events_from_a_host_decide_the_agents_state_at_home(far: Far) -> None:
    far.place("far")
    far.start("far")
    done = far.hook("far", tool_call("make test"))
    assert done.returncode == 0 and done.stdout == "", done.stderr
    far.sandbox.wait_state("far", "working", timeout=10)
    far.hook("far", {"hook_event_name": "Notification", "notification_type": "elicitation_dialog",
                     "message": "which database?"})
    waiting = far.sandbox.wait_state("far", "waiting", timeout=10)
    assert waiting["waiting_reason"] == "which database?"
    assert [event["tool"] for event in far.hooks_recorded("far") if "tool" in event] == ["Bash(make test)"]
    assert far.spooled("far") == []  # answered: nothing kept on the host


def test_a_permission_request_on_a_host_is_held_until_answered_at_home(far: Far) -> None:
    far.place("far")
    far.start("far")
    request = {"hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": {"command": "rm -rf build"}}
    for round_, (verb, reason, allowed) in enumerate((("approve", None, True), ("deny", "not that one", False))):
        argv = ["ssh", "-F", str(far.ssh_hosts.config), "-T", "-o", "BatchMode=yes", HOST, "--",
                shlex.join(far.client_words("far", "hook"))]
        held = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        assert held.stdin is not None
        held.stdin.write(json.dumps(request))
        held.stdin.close()
        # this round's request held at home (the agent may still be `waiting` from the round before)
        engine = far.sandbox.runtime / far.sandbox.paths.runtime_dir.name / "engine.sock"
        wait_until(lambda engine=engine, round_=round_: [row["status"] for row in request_at(
                   engine, "approvals", {"name": "far"}, 10)] == ["pending", *["approved"] * round_],
                   timeout=15, message="this round's request held at home")
        waiting = far.sandbox.wait_state("far", "waiting", timeout=15)
        assert waiting["waiting_reason"] == "approval: Bash(rm -rf build)"
        assert held.poll() is None  # the CLI waits on the host for the human
        far.sandbox.sv(verb, "far", *(["--reason", reason] if reason else []))
        assert held.wait(timeout=30) == 0
        assert held.stdout is not None
        assert json.loads(held.stdout.read()) == permission_answer(allowed, reason)  # as the local hook prints it


def raw_request(far: Far, socket: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One request line through `socket` on the host, as any process there could send it."""
    code = ("import json,socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n"
            "s.sendall(sys.argv[2].encode()+b'\\n')\nprint(s.makefile().readline())")
    done = far.on_host("python3", "-c", code, socket, json.dumps({"method": method, "params": params}))
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_request_through_an_agents_socket_on_a_host_acts_only_as_that_agent(far: Far) -> None:
    far.place("alpha", State.WORKING)
    far.place("beta", State.WORKING)
    far.start("alpha", "beta")
    # Whatever it calls itself, a request through alpha's socket is alpha's.
    done = far.on_host(*far.client_words("beta", "report", "--waiting-for", "beta",
                                         socket=far.layout.socket("alpha")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "alpha: waiting for beta"
    assert [event["waiting_for"] for event in far.events("alpha") if event["kind"] == "report"] == [["beta"]]
    assert [event for event in far.events("beta") if event["kind"] == "report"] == []
    # What only a human may do, and what it could pass off as another's, is refused.
    alpha = far.layout.socket("alpha")
    for method, params in (("stop", {"name": "beta"}), ("approve", {"name": "beta"}), ("rm", {"name": "alpha"})):
        reply = raw_request(far, alpha, method, params)
        assert reply["ok"] is False and f"agent alpha may not call {method}" in reply["error"], reply
    reply = raw_request(far, alpha, "report", {"waiting_for": [], "_caller": "beta"})
    assert reply["ok"] is False and "_caller" in reply["error"]
    reply = raw_request(far, alpha, "show", {"name": "beta"})
    assert reply["ok"] is False and "may not read about agent beta" in reply["error"]
    assert far.sandbox.state("beta") == "working"


def test_hook_events_spooled_on_a_cut_off_host_come_home_in_order_once(far: Far) -> None:
    far.place("far")
    far.start("far")
    far.hook("far", tool_call("echo before"))
    far.sandbox.wait_state("far", "working", timeout=10)
    before = far.hooks_recorded("far")
    assert len(before) == 1
    # A copy of that event, spooled as a hook that gave up waiting leaves it: it is not applied again.
    copy = {"event": tool_call("echo before"), "at": time.time(), "key": before[0]["key"]}
    spool = f"{far.layout.spool('far')}/hooks"
    far.on_host("sh", "-c", f"mkdir -p {shlex.quote(spool)} && cat > {shlex.quote(spool)}/{before[0]['key']}.json",
                stdin=json.dumps(copy))
    wait_until(lambda: far.spooled("far") == [], timeout=15, message="the spooled copy taken")
    assert len(far.hooks_recorded("far")) == 1

    host = far.ssh_hosts.hosts[HOST]
    far.ssh_hosts.cut(HOST)
    try:
        far.sandbox.wait_state("far", "unreachable", timeout=20)
        sent = [tool_call("echo one"), tool_call("echo two"),
                {"hook_event_name": "Notification", "notification_type": "elicitation_dialog", "message": "three"}]
        for event in sent:  # the agent's hooks run on the host meanwhile (no ssh to run them through now)
            done = subprocess.run(far.client_words("far", "hook"),
                                  input=json.dumps(event), capture_output=True, text=True, timeout=30,
                                  user=host.user, cwd="/", check=False)
            assert (done.returncode, done.stdout) == (0, ""), done.stderr  # never fails the agent
        assert len(far.hooks_recorded("far")) == 1
    finally:
        far.ssh_hosts.resume(HOST)
    wait_until(lambda: len(far.hooks_recorded("far")) == 4, timeout=BACKOFF_BOUND, interval=0.5,
               message="the spooled events home")
    recorded = far.hooks_recorded("far")
    assert [event.get("tool") or event.get("message") for event in recorded] == [
        "Bash(echo before)", "Bash(echo one)", "Bash(echo two)", "three"]
    assert len({event["key"] for event in recorded}) == 4
    far.sandbox.wait_state("far", "waiting", timeout=10)  # the last of them decides
    assert far.spooled("far") == []


def test_a_commit_on_a_host_is_checked_at_home_against_the_contract(far: Far) -> None:
    far.place("far", State.WORKING, Contract(modify=("src/**",)))
    far.start("far")
    work = f"{far.layout.root}/w"
    made = far.on_host("sh", "-c", f"""set -e; cd {shlex.quote(far.layout.root)}; git init -q r; cd r
        git -c user.email=a@b -c user.name=a commit -q --allow-empty -m first; git worktree add -q ../w; cd ../w
        mkdir src docs; echo a > src/a.py; echo b > docs/b.md; git add src docs""")
    assert made.returncode == 0, made.stderr
    guard = ["sh", "-c", f"cd {shlex.quote(work)} && exec \"$@\"", "guard", *far.client_words("far", "guard")]
    refused = far.on_host(*guard)
    assert refused.returncode == 1
    assert refused.stderr.startswith("supervisor: commit refused: far may not change these paths")
    assert "docs/b.md" in refused.stderr and "src/a.py" not in refused.stderr
    far.on_host("git", "-C", work, "reset", "-q", "docs")
    allowed = far.on_host(*guard)
    assert (allowed.returncode, allowed.stderr) == (0, "")
