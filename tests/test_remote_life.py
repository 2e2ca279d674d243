"""The life of an agent on a host beyond start and stop, against the real sshd host box1 (tests/remotes.py): a host
that drops and comes back finds its agents re-adopted with their true state, undisturbed; approvals held for a
host that dropped are let go, saying so."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import wait_until
from tests.remotes import HOST, Remote, remote_fixture  # noqa: F401  (the fixture)
from tests.sshd import SshHosts

BACKOFF_BOUND = 90.0  # seconds: a host back is found by the next attempt (the delay doubles to 60 s at most)

LONG_TURN = """\
turns:
  - [say: "Starting the long one", work: 15s, say: "DONE-WHILE-APART"]
"""
ASKING = """\
turns:
  - [say: "About to ask", ask: "rm -rf build", say: "AFTER-THE-ASK"]
"""


def events(remote: Remote, name: str | None = None) -> list[dict[str, Any]]:
    return list(remote.request("events", **({"name": name} if name else {}), limit=1000))


def states_from(remote: Remote, name: str, state: str) -> list[str]:
    """The states agent `name` was put in from the last time it was put in `state` on."""
    moves = [str(event["state"]) for event in events(remote, name) if "previous" in event and "state" in event]
    return moves[len(moves) - 1 - moves[::-1].index(state):]


def alive_on_host(remote: Remote, pid: int) -> bool:
    return any(info["pid"] == pid and info["state"] != "Z" for info in remote.link().call("ps", pids=[pid]))


def test_a_host_that_drops_and_comes_back_finds_its_agent_as_it_truly_is(remote: Remote, ssh_hosts: SshHosts) -> None:
    box = remote.sandbox
    remote.request("start", name="far", task="the long one", command=remote.claude("far", LONG_TURN),
                   profile="claude", host=HOST)
    box.wait_state("far", "working", timeout=30)
    pid = int(box.agent("far")["pid"])
    ssh_hosts.cut(HOST)
    try:
        apart = box.wait_state("far", "unreachable", timeout=30)
        assert apart["last_state"] == "working"
        # it finishes its turn while home cannot see it: its Stop hook spools on the host
        wait_until(lambda: _stop_spooled(remote), timeout=40, message="its Stop hook spooled on the host")
    finally:
        ssh_hosts.resume(HOST)
    back = box.wait_state("far", "idle", "working", timeout=BACKOFF_BOUND)
    assert back["last_state"] is None
    # judged from what it did meanwhile, never put back to working first: it was not working any more
    assert states_from(remote, "far", "unreachable") == ["unreachable", "idle"]
    # undisturbed: the same process, and what it printed meanwhile is in its log
    assert int(box.agent("far")["pid"]) == pid and alive_on_host(remote, pid)
    assert "DONE-WHILE-APART" in box.sv("log", "far").stdout
    hooks = [event.get("hook_event_name") for event in events(remote, "far") if event["kind"] == "hook"]
    assert hooks[-1] == "Stop", hooks  # the spooled Stop came home, after the events before it
    wait_until(lambda: host_alerts(remote) == ["firing", "resolved"], timeout=20, message="the resolved follow-up")


def host_alerts(remote: Remote) -> list[str]:
    alerts = json.loads(remote.sandbox.sv("alerts", "ls", "--json").stdout)
    return [a["status"] for a in reversed(alerts) if a["subject"] == f"host:{HOST}"]


def _stop_spooled(remote: Remote) -> bool:
    """Whether a Stop hook of `far` waits in its spool on the host (read from this machine: the host is cut off,
    and box1 is this machine under another user)."""
    for path in Path(remote.host_dir).glob("*/spool/far/hooks/[!.]*"):  # not one being written
        with contextlib.suppress(OSError):  # taken meanwhile
            if '"Stop"' in path.read_text():
                return True
    return False


def test_an_approval_held_for_a_host_that_drops_is_let_go_saying_so(remote: Remote, ssh_hosts: SshHosts) -> None:
    box = remote.sandbox
    remote.request("start", name="far", task="ask first", command=remote.claude("far", ASKING), profile="claude",
                   host=HOST)
    waiting = box.wait_state("far", "waiting", timeout=30)
    assert waiting["waiting_reason"].startswith("approval: ")
    ssh_hosts.cut(HOST)
    try:
        box.wait_state("far", "unreachable", timeout=30)
        wait_until(lambda: [a for a in remote.request("approvals", name="far") if a["status"] != "pending"],
                   timeout=15, message="the held approval let go")
        held = remote.request("approvals", name="far")[0]
        assert held["status"] == "dropped" and f"host {HOST}" in held["reason"], held
        dropped = [event for event in events(remote, "far") if event["kind"] == "approval_dropped"]
        assert len(dropped) == 1 and f"host {HOST}" in dropped[0]["reason"]
        refused = box.sv("approve", "far", check=False)
        assert refused.returncode != 0 and "unreachable" in refused.stderr, refused.stderr
    finally:
        ssh_hosts.resume(HOST)
    # back: the CLI shows its own dialog (its hook gave up), and an approve answers it there
    box.wait_state("far", "waiting", timeout=BACKOFF_BOUND)
    wait_until(lambda: "1. Yes" in remote.request("screen", name="far")["text"], timeout=30,
               message="its own dialog on the screen")
    box.sv("approve", "far")
    wait_until(lambda: "AFTER-THE-ASK" in remote.request("screen", name="far")["text"], timeout=30,
               message="the turn going on after the approval")


TWO_TURNS = """\
turns:
  - [say: "FIRST-TURN-DONE"]
  - [say: "SECOND-TURN-DONE"]
"""


def test_restart_and_restore_resume_an_agent_on_a_host_in_its_own_conversation(remote: Remote,
                                                                                ssh_hosts: SshHosts) -> None:
    box = remote.sandbox
    remote.request("start", name="far", task="first", command=remote.claude("far", TWO_TURNS), profile="claude",
                   host=HOST)
    wait_until(lambda: "FIRST-TURN-DONE" in remote.request("screen", name="far")["text"], timeout=30,
               message="its first turn")
    box.wait_state("far", "idle", timeout=30)
    session = wait_until(lambda: box.agent("far").get("session_id"), timeout=15, message="its conversation's id")

    # restart: ended on the host and started again there, in the conversation its hooks named
    before = int(box.agent("far")["pid"])
    box.sv("restart", "far")
    wait_until(lambda: f"resumed conversation {session}" in remote.request("screen", name="far")["text"],
               timeout=30, message="its conversation resumed")
    box.wait_state("far", "idle", timeout=30)
    shown = box.agent("far")
    assert int(shown["pid"]) != before and shown["session_id"] == session
    assert not alive_on_host(remote, before)

    # restore: its host's tmux server killed (as by a reboot), brought back in the same conversation
    layout = remote.host().layout()
    ssh_hosts.ssh(HOST, "tmux", "-S", layout.tmux_socket, "kill-server")
    wait_until(lambda: far_restorable(remote), timeout=30, message="far restorable")
    restored = remote.request("restore", names=["far"])
    assert [(agent["name"], agent["resumed"], agent["session_id"]) for agent in restored["restored"]] == [
        ("far", True, session)], restored
    wait_until(lambda: f"resumed conversation {session}" in remote.request("screen", name="far")["text"],
               timeout=30, message="its conversation resumed after the restore")
    box.sv("send", "far", "next")
    wait_until(lambda: "SECOND-TURN-DONE" in remote.request("screen", name="far")["text"], timeout=30,
               message="its next turn, where the conversation left off")


def far_restorable(remote: Remote) -> bool:
    return "far" in remote.request("restorable")["agents"]


CRUNCHING = """\
turns:
  - [say: "Crunching quietly", spawn: "timeout 20 sh -c 'while :; do :; done'", quiet: 18s, say: "CRUNCHED"]
"""


def test_an_agent_on_a_host_whose_tools_use_cpu_silently_is_working_not_stalled(remote: Remote) -> None:
    box = remote.sandbox
    remote.limits("stall_after: 8s")
    remote.request("start", name="far", task="crunch", command=remote.claude("far", CRUNCHING), profile="claude",
                   host=HOST)
    wait_until(lambda: "Crunching quietly" in remote.request("screen", name="far")["text"], timeout=30,
               message="its quiet turn begun")
    busy = wait_until(lambda: (row := box.ls()["far"])["cpu_percent"] and row, timeout=30,
                      message="its tools' CPU read on the host")
    assert busy["cpu_percent"] >= 3 and busy["rss_bytes"] > 0, busy  # a busy loop (on a loaded machine)
    wait_until(lambda: "CRUNCHED" in remote.request("screen", name="far")["text"], timeout=40,
               message="its turn's end")
    moves = [str(event["state"]) for event in events(remote, "far") if "previous" in event and "state" in event]
    assert "stalled" not in moves, moves  # 18 s without output, each second of it a tool's CPU


def test_a_helper_started_in_a_pane_on_a_host_runs_there_in_its_parents_worktree(remote: Remote) -> None:
    box = remote.sandbox
    command = remote.claude("far", TWO_TURNS)
    remote.request("start", name="far", task="first", command=command, profile="claude", host=HOST)
    box.wait_state("far", "idle", timeout=30)
    far = box.agent("far")
    # `supervisor helper` as the agent runs it in its pane there (its `!` shell mode): the shim on its PATH
    remote.request("send", name="far", text="!supervisor helper scout --role test-agent --task 'look around' "
                                            "--no-wait")
    wait_until(lambda: "far.scout: " in remote.request("screen", name="far")["text"], timeout=60,
               message="the helper started from far's pane")
    helper = box.agent("far.scout")
    assert (helper["host"], helper["parent"]) == (HOST, "far")
    assert helper["worktree"] == f"{far['worktree']}/.sub-agents/scout"
    box.wait_state("far.scout", "idle", "working", timeout=30)
    pid = int(box.agent("far.scout")["pid"])
    assert alive_on_host(remote, pid)  # in a pane on the host, beside its parent's
    cwd = remote.on_host("readlink", f"/proc/{pid}/cwd").strip()
    assert cwd == helper["worktree"]
    assert [row["name"] for row in json.loads(box.sv("ls", "--json").stdout)] == ["far", "far.scout"]


def test_an_agent_whose_pane_went_while_its_host_was_out_of_reach_keeps_no_last_state(remote: Remote,
                                                                                      ssh_hosts: SshHosts) -> None:
    """The host's tmux server dies while home cannot see it (as in a reboot): back, the agent is `exited` and
    restorable, and nothing of its time out of reach stays in its record (`last_state` is null unless it is
    `unreachable`), nor after it is restored."""
    box = remote.sandbox
    remote.request("start", name="far", task="first", command=remote.claude("far", TWO_TURNS), profile="claude",
                   host=HOST)
    box.wait_state("far", "idle", timeout=30)
    socket = remote.host().layout().tmux_socket
    ssh_hosts.cut(HOST)
    try:
        assert box.wait_state("far", "unreachable", timeout=30)["last_state"] == "idle"
        # (box1 is this machine under another user: its tmux server is reached without ssh)
        subprocess.run(["runuser", "-u", ssh_hosts.hosts[HOST].user, "--", "tmux", "-S", socket, "kill-server"],
                       check=True, capture_output=True, timeout=30)
    finally:
        ssh_hosts.resume(HOST)
    ended = box.wait_state("far", "exited", timeout=BACKOFF_BOUND)
    assert (ended["reason"], ended["restorable"], ended["last_state"]) == ("tmux server ended", True, None), ended
    assert json.loads(box.sv("show", "far", "--json").stdout)["last_state"] is None
    remote.request("restore", names=["far"])
    back = box.wait_state("far", "idle", timeout=30)
    assert back["last_state"] is None


def test_a_hosts_tmux_server_dying_is_one_alert_that_names_the_host(remote: Remote, ssh_hosts: SshHosts) -> None:
    """Its agents end, restorable, and the one alert about it is about that host's server (`tmux:HOST`, not this
    machine's `tmux:`), saying which host, with the command that brings them back."""
    box = remote.sandbox
    remote.request("start", name="far", task="first", command=remote.claude("far", TWO_TURNS), profile="claude",
                   host=HOST)
    box.wait_state("far", "idle", timeout=30)
    ssh_hosts.ssh(HOST, "tmux", "-S", remote.host().layout().tmux_socket, "kill-server")
    assert box.wait_state("far", "exited", timeout=30)["restorable"] is True

    def about_the_server() -> list[dict[str, Any]]:
        alerts = json.loads(box.sv("alerts", "ls", "--json").stdout)
        return [alert for alert in alerts if alert["subject"].startswith("tmux:")]

    (alert,) = wait_until(about_the_server, timeout=30, message="the alert about the host's tmux server")
    assert (alert["subject"], alert["agents"]) == (f"tmux:{HOST}", ["far"]), alert
    assert f"supervisor's tmux server on host {HOST}" in alert["title"], alert["title"]
    assert alert["items"][0]["summary"].startswith(f"the tmux server on host {HOST} ended"), alert["items"]
    assert alert["actions"][0] == "supervisor restore --all", alert["actions"]
