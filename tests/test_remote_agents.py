"""Remote agents as a user has them (SPEC §12), end to end with nothing stood in for: the real engine in its own
process, started and driven through the `supervisor` CLI, a real sshd host (tests/sshd.py box1) and the fake
claude running there in the host's tmux, with its hooks and its commit guard talking to the engine through its
own socket on the host.

- `start --host box1`: working → waiting on a permission dialog held on the host → `approve` at home lets the
  tool run there; `deny` refuses it there; the states and the "Needs you" item as for a local agent.
- From inside the agent's pane there: a commit within its contract passes the guard; one outside is refused by
  it; a `--no-verify` one outside comes home, is caught by the audit and its merge refused; a clean one merges
  into the user's repository.
- A host without tmux: the start is refused, naming tmux.

One engine and repository serve the module: each test has agents of its own names.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import supervisor
from supervisor.core.contract import Contract, render_contract
from supervisor.hosts.remote.layout import HostLayout, repo_key
from supervisor.ui.model import Board
from tests.conftest import Sandbox, made_sandbox, wait_until
from tests.sshd import SshHosts
from tests.test_pane_identity import engine_request

SOURCE = Path(supervisor.__file__).resolve().parent.parent  # readable by the host users: their python imports it
HOST = "box1"
BARE = "bare"  # box1 again, through the ssh alias whose PATH has no tmux

ASKS = """\
turns:
  - [say: "cleaning up", ask: "touch ran.txt", run: "touch ran.txt", say: "AFTER-THE-QUESTION"]
"""

# Each turn is one prompt typed into its pane (`supervisor send`): the commits are made there, by the agent.
COMMITS = """\
turns:
  - [write: {path: src/feature.py, content: "print('feature')\\n"}, commit: "inside its contract"]
  - [write: {path: README.md, content: "# rewritten\\n"}, commit: "outside its contract"]
  - [run: "git commit -q --no-verify -m sneak"]
"""


@dataclass
class Far:
    sandbox: Sandbox
    ssh_hosts: SshHosts
    layout: HostLayout  # where this repository's things live on box1
    bin: str  # the fake claude's folder on box1

    def claude(self, script: str) -> str:
        """The command line of the fake claude on box1 running `script` (a file there)."""
        return f"{self.bin}/claude --claude --script {self.bin}/{script}"

    def on_host(self, *words: str) -> str:
        done = self.ssh_hosts.ssh(HOST, *words, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def exists(self, path: str) -> bool:
        return self.ssh_hosts.ssh(HOST, "test", "-e", path, check=False).returncode == 0

    def screen(self, name: str) -> str:
        return str(self.sandbox.agent(name)["screen"] and "\n".join(self.sandbox.agent(name)["screen"]))


@pytest.fixture(scope="module")
def far(tmp_path_factory: pytest.TempPathFactory, ssh_hosts: SshHosts) -> Iterator[Far]:
    with made_sandbox(tmp_path_factory.mktemp("remote")) as box:
        folder = ssh_hosts.fresh_dir(HOST)
        host_dir = str(ssh_hosts.hosts[HOST].home / folder.removeprefix("~/"))
        bin_dir = f"{host_dir}/bin"
        wrapper = (f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(SOURCE))} "
                   "exec python3 -m supervisor.demo.agent --look claude \"$@\"\n")
        ssh_hosts.ssh(HOST, "sh", "-c", 'mkdir -p "$1" && printf %s "$2" > "$1/claude" && chmod +x "$1/claude" && '
                      'printf %s "$3" > "$1/asks.yaml" && printf %s "$4" > "$1/commits.yaml"',
                      "sh", bin_dir, wrapper, ASKS, COMMITS)
        hosts = f"hosts:\n  {HOST}:\n    ssh: {HOST}\n    ssh_config: {ssh_hosts.config}\n    dir: {folder}\n"
        box.write_config("agent:\n  profile: claude\n  stagger: 0s\nlimits:\n  idle_after: 1s\nisolation: none\n"
                         "alerts:\n  tmux: false\n" + hosts)  # `hosts:` last: a test adds one
        layout = HostLayout.of(host_dir, repo_key(box.paths.common_dir, box.paths.name))
        box.sv("engine", "start")
        try:
            yield Far(box, ssh_hosts, layout, bin_dir)
        finally:
            box.sv("engine", "stop", check=False)
            ssh_hosts.ssh(HOST, "tmux", "-S", layout.tmux_socket, "kill-server", check=False)


def test_approve_and_deny_at_home_answer_a_dialog_held_on_the_host(far: Far) -> None:
    box = far.sandbox
    for name in ("yes", "no"):
        box.sv("start", name, "--host", HOST, "--task", "clean up", "--command", far.claude("asks.yaml"))
    for name in ("yes", "no"):
        waiting = box.wait_state(name, "waiting", timeout=60)
        assert (waiting["host"], waiting["waiting_reason"]) == (HOST, "approval: Bash(touch ran.txt)")
        states = [event["state"] for event in box.agent(name)["events"] if event.get("state")]
        assert states[:3] == ["starting", "working", "waiting"], states  # as a local agent's
    # What the user sees: `ls`, and the dashboard's "Needs you" (its own model of the same listing and events).
    listed = box.sv("ls").stdout
    assert "needs you: approval: Bash(touch ran.txt)" in listed
    board = Board()
    board.set_agents(json.loads(box.sv("ls", "--json").stdout))
    board.apply_events(engine_request(box, "changes", after=0, timeout=0, limit=10000)["events"])
    asks = {item.name: (item.kind, item.reason) for item in board.attention()}
    assert asks == {name: ("waiting", "approval: Bash(touch ran.txt)") for name in ("yes", "no")}
    assert "ASK" in board.badges("yes").plain
    assert not far.exists(f"{far.layout.worktree('yes')}/ran.txt")  # held there: nothing ran yet

    assert "yes: approved Bash(touch ran.txt)" in box.sv("approve", "yes").stdout
    box.wait_state("yes", "idle", timeout=60)
    assert far.exists(f"{far.layout.worktree('yes')}/ran.txt")  # the tool ran, there
    screen = far.screen("yes")
    assert "approved (by hook)" in screen and "AFTER-THE-QUESTION" in screen
    assert any(event["kind"] == "approved" and event["via"] == "hook" for event in box.agent("yes")["events"])

    box.sv("deny", "no", "--reason", "keep the build folder")
    wait_until(lambda: "denied (by hook): keep the build folder" in far.screen("no"), timeout=60,
               message="the denial and its reason on its screen there")
    box.wait_state("no", "idle", timeout=60)
    assert not far.exists(f"{far.layout.worktree('no')}/ran.txt")  # refused there
    assert "AFTER-THE-QUESTION" not in far.screen("no")
    board.set_agents(json.loads(box.sv("ls", "--json").stdout))
    assert [item.name for item in board.attention() if item.kind == "waiting"] == []


def test_commits_made_in_a_pane_on_a_host_meet_the_guard_the_audit_and_merge(far: Far, tmp_path: Path) -> None:
    box = far.sandbox
    contract = tmp_path / "SESSION.md"
    contract.write_text(render_contract(Contract(modify=("src/**",))))
    box.sv("start", "maker", "--host", HOST, "--contract", str(contract), "--command", far.claude("commits.yaml"))
    box.wait_state("maker", "idle", "starting", timeout=60)
    private = "refs/supervisor/hosts/box1/heads/agent/maker/work"

    # Within its contract: the guard (the host client, through its socket) lets it pass, and it comes home.
    box.sv("send", "maker", "add the feature")
    wait_until(lambda: "committed" in far.screen("maker"), timeout=60, message="its first commit")
    assert "commit failed" not in far.screen("maker")
    made = far.on_host("git", "-C", far.layout.worktree("maker"), "rev-parse", "HEAD").strip()
    wait_until(lambda: _ref(box, private) == made, timeout=30, message="the commit home")
    # made as the host user, who it runs as there (its HOME is theirs: their git identity applies)
    assert box.git("log", "-1", "--format=%an <%ae>", made, plain=True) == "svbox1 on its host <svbox1@hosts.example>"
    row = wait_until(lambda: (found := box.ls()["maker"])["ready_to_merge"] and found, timeout=30,
                     message="audited and ready")
    assert row["ahead"] == 1

    # Outside it: refused by the guard there, nothing committed.
    box.sv("send", "maker", "now the readme")
    wait_until(lambda: "commit failed" in far.screen("maker"), timeout=60, message="the guard's refusal")
    screen = far.screen("maker")
    assert "commit refused: maker may not change these paths" in screen and "README.md" in screen
    assert far.on_host("git", "-C", far.layout.worktree("maker"), "rev-parse", "HEAD").strip() == made

    # The clean commit merges into the user's repository.
    assert "maker" in box.sv("merge", "maker").stdout
    assert box.git("show", "main:src/feature.py", plain=True) == "print('feature')"

    # Past the guard with --no-verify: it comes home, the audit at home finds it, and its merge is refused.
    box.sv("send", "maker", "commit it anyway")
    wait_until(lambda: far.on_host("git", "-C", far.layout.worktree("maker"), "rev-parse", "HEAD").strip() != made,
               timeout=60, message="the --no-verify commit there")
    bad = far.on_host("git", "-C", far.layout.worktree("maker"), "rev-parse", "HEAD").strip()
    wait_until(lambda: _ref(box, private) == bad, timeout=30, message="the bad commit home")
    wait_until(lambda: any(event["kind"] == "boundary" and event.get("commit") == bad
                           for event in box.agent("maker")["events"]), timeout=30, message="the audit's finding")
    refused = box.sv("merge", "maker", check=False)
    assert refused.returncode == 1
    assert "outside its contract" in refused.stderr and "README.md" in refused.stderr
    assert box.git("show", "main:README.md", plain=True) == "# test repo"


def test_a_host_without_tmux_refuses_the_start_naming_tmux(far: Far) -> None:
    box = far.sandbox
    # Added to supervisor.yaml just now, and started on at once: the start waits for its first connection, which
    # finds no tmux there.
    config = box.root / "supervisor.yaml"
    config.write_text(config.read_text() + f"  {BARE}:\n    ssh: {HOST}-notmux\n"
                      f"    ssh_config: {far.ssh_hosts.config}\n    dir: {far.ssh_hosts.fresh_dir(HOST)}\n")
    refused = box.sv("start", "notmux", "--host", BARE, "--command", far.claude("asks.yaml"), check=False)
    assert refused.returncode == 1
    first = refused.stderr.splitlines()[0]
    assert first.startswith(f"supervisor: error: host {BARE} is unreachable now (tmux: not found"), refused.stderr
    assert "Traceback" not in refused.stderr
    assert "notmux" not in box.ls()  # nothing made
    (bare,) = [row for row in json.loads(box.sv("hosts", "--json").stdout) if row["name"] == BARE]
    assert bare["state"] == "down" and bare["error"].startswith("tmux: not found"), bare


def _ref(sandbox: Sandbox, ref: str) -> str | None:
    try:
        return sandbox.git("rev-parse", "--verify", "--quiet", ref, plain=True) or None
    except Exception:
        return None
