"""`stop` of an agent on a host leaves nothing of it there, whatever the agent did from inside its pane to get away
(against a real sshd host, tests/sshd.py, and a real engine): a `setsid -f` without its identity variables, a
double fork, and a window of its own in the repository's tmux server there. And one `end_tree` request cut off
by a dropped link leaves nothing frozen on the host."""

from __future__ import annotations

import subprocess
import sys

from supervisor.hosts.link import Link
from supervisor.hosts.remote.host import RemoteHost
from supervisor.hostside import ending as hostside_ending
from tests.conftest import wait_until
from tests.remotes import Remote, remote_fixture  # noqa: F401  (the fixture)
from tests.sshd import SshHosts
from tests.test_host_link_ssh import link_to

LOOP = "while :; do sleep 1; done"
UNSET = "env -u SUPERVISOR_SOCKET -u CLAUDE_CONFIG_DIR -u SUPERVISOR_LAUNCH"
# Run inside the agent's pane on the host by the fake claude: three ways out of its tree.
ESCAPE = f"""\
setsid -f {UNSET} sh -c '{LOOP}' escapee-setsid </dev/null >/dev/null 2>&1
( {UNSET} sh -c '{LOOP}' escapee-fork </dev/null >/dev/null 2>&1 & )
tmux -S "${{TMUX%%,*}}" new-window -d "sh -c '{LOOP}' escapee-tmux"
echo ESCAPES-STARTED
"""
MARKERS = ("escapee-setsid", "escapee-fork", "escapee-tmux")
# The pids on the host whose command line ends with one of argv[1:].
FIND = r"""
import os, sys
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) != os.getpid():
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                words = handle.read().split(b"\0")[:-1]
            with open("/proc/%s/stat" % entry, "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and words and words[-1].decode(errors="replace") in sys.argv[1:]:
            print(entry, words[-1].decode(errors="replace"))
"""


def escapees(link: Link, markers: tuple[str, ...] = MARKERS) -> dict[str, int]:
    ran = link.call("run", argv=["python3", "-c", FIND, *markers])
    return {name: int(pid) for pid, name in (line.split() for line in str(ran["stdout"]).splitlines())}


def test_what_an_agent_detaches_on_a_host_does_not_survive_its_stop(remote: Remote) -> None:
    box = remote.sandbox
    link = remote.link()
    link.call("write", path=f"{remote.host_dir}/bin/escape.sh", text=ESCAPE, mode=0o755)
    link.call("write", path=f"{remote.host_dir}/bin/script.yaml",
              text=f'turns:\n  - [run: "sh {remote.host_dir}/bin/escape.sh", say: "ESCAPE-TURN-DONE"]\n')
    remote.request("start", name="far", task="get away", command=remote.command, profile="claude", host="box1")
    try:
        wait_until(lambda: len(escapees(link)) == len(MARKERS), timeout=60, message="the three escapees running")
        box.wait_state("far", "idle", timeout=30)
        box.sv("stop", "far")
        assert box.state("far") == "stopped"
        assert escapees(link) == {}
        host = remote.engine.host_named("box1")
        assert isinstance(host, RemoteHost)
        gone = link.call("run", argv=["test", "-e", host.layout().socket("far")])
        assert gone["rc"] == 1  # its socket there is closed with it
    finally:
        left = escapees(link)
        if left:
            link.call("signal", pids=sorted(left.values()), signal="KILL")


def test_a_stop_while_the_host_is_down_is_carried_out_when_it_is_back(remote: Remote,
                                                                      ssh_hosts: SshHosts) -> None:
    box = remote.sandbox
    remote.request("start", name="far", task="plan it", command=remote.command, profile="claude", host="box1")
    box.wait_state("far", "idle", timeout=60)
    pid = int(box.agent("far")["pid"])
    tree = [int(info["pid"]) for info in remote.link().call("ps", pids=[pid])]
    ssh_hosts.cut("box1")
    try:
        box.wait_state("far", "unreachable", timeout=30)
        stopped = box.sv("stop", "far")
        assert "host box1 is unreachable" in stopped.stdout and "once it is back" in stopped.stdout
        assert box.state("far") == "stopped" and box.agent("far")["stop_pending"] is True
    finally:
        ssh_hosts.resume("box1")
    wait_until(lambda: box.agent("far")["stop_pending"] is False, timeout=60, message="the stop carried out")
    link = remote.link()
    assert [info for info in link.call("ps", pids=tree) if info["state"] != "Z"] == []
    assert box.state("far") == "stopped"

    # Removed with --force while its host is down: forgotten here, saying what is left there.
    ssh_hosts.cut("box1")
    try:
        wait_until(lambda: remote.engine.hostlinks.link("box1") is None, timeout=30, message="box1 down")
        removed = box.sv("rm", "--force", "far")
        assert "far: removed here" in removed.stdout and "left there: its worktree" in removed.stdout
        assert "far" not in box.ls()
    finally:
        ssh_hosts.resume("box1")


def test_one_request_ends_a_tree_on_the_host_and_answers_when_it_is_gone(ssh_hosts: SshHosts) -> None:
    """`end_tree`: a tree whose child ignores TERM and which detached a process carrying the launch token is
    ended whole (TERM, the grace, KILL) before the answer comes."""
    host_dir = ssh_hosts.fresh_dir("box1")
    link = link_to(ssh_hosts, "box1", host_dir)
    tree = ("SUPERVISOR_LAUNCH=tok-1 setsid -f sh -c 'while :; do sleep 1; done' escapee-carrier "
            "</dev/null >/dev/null 2>&1\n"
            "setsid -f sh -c 'trap \"\" TERM; sh -c \"while :; do sleep 1; done\" escapee-child & wait' "
            "escapee-parent </dev/null >/dev/null 2>&1\n")
    markers = ("escapee-carrier", "escapee-parent", "escapee-child")
    try:
        link.call("write", path=f"{host_dir}/tree.sh", text=tree)
        link.call("run", argv=["sh", "tree.sh"], cwd=host_dir)
        found = wait_until(lambda: names if len(names := escapees(link, markers)) == 3 else None, timeout=30,
                           message="the tree and the token's carrier running")
        done = link.call("end_tree", roots=[found["escapee-parent"]], carrying=[["SUPERVISOR_LAUNCH", "tok-1"]],
                         grace=0.5, timeout=60)
        assert done["survivors"] == []
        assert set(found.values()) <= set(done["ended"])
        assert escapees(link, markers) == {}
    finally:
        left = escapees(link, markers)
        if left:
            link.call("signal", pids=sorted(left.values()), signal="KILL")
        link.close()


def test_an_ending_cut_short_lets_go_of_what_it_froze() -> None:
    """The host program's input ends mid-stop: what its ending froze runs again (no tree left stopped)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        ending = hostside_ending.Ending([child.pid], [], [], [])
        assert ending.freeze()
        wait_until(lambda: _state(child.pid) == "T", timeout=10, message="frozen")
        hostside_ending.release_all()
        wait_until(lambda: _state(child.pid) in ("S", "R"), timeout=10, message="let go")
    finally:
        hostside_ending._released.clear()
        child.kill()
        child.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()[0].decode()
