"""Agents in panes on a host over SSH, against a real sshd host (tests/sshd.py) and a real engine: the fake claude
started on box1 is judged working, then idle, from its host's pane; `send` types into it there; `log` shows what
it printed; `stop` leaves no process of its tree on the host; and a host cut off holds up no local agent.

Nothing is stood in for: the agent's worktree is made on the host from the base pushed over the link, with its
SESSION.md and guard (the set-up: tests/remotes.py)."""

from __future__ import annotations

from supervisor.hosts.link import Link
from supervisor.hosts.remote.host import RemoteHost
from tests.conftest import wait_until
from tests.remotes import Remote, remote_fixture  # noqa: F401  (the fixture)
from tests.sshd import SshHosts


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
