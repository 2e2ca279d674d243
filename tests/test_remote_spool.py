"""What an agent on a host shows while the engine cannot reach it survives the host's tmux dying (or the host
rebooting) before the engine is back: the host keeps each pane's transcript on its own disk while home is away,
and the engine takes it over when it finds the pane gone, in order and without duplicates. Against the real
sshd host box1 (tests/remotes.py); box1 is this machine under another user, so the test acts on the host
directly as that user while its sshd is down."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from supervisor.hostside.presence import SILENT
from tests.conftest import wait_until
from tests.remotes import HOST, Remote, remote_fixture  # noqa: F401  (the fixture)
from tests.sshd import SshHosts

BACKOFF_BOUND = 90.0  # seconds: a host back is found by the next attempt (the delay doubles to 60 s at most)

SHOWN_BEFORE = """\
turns:
  - [say: "SHOWN-BEFORE-THE-CUT"]
"""
MARKER = "SHOWN-WHILE-CUT-OFF-42"


def as_host_user(ssh_hosts: SshHosts, *words: str) -> str:
    """Run `words` on box1 as its user without ssh (its sshd is down): what they print."""
    done = subprocess.run(["runuser", "-u", ssh_hosts.hosts[HOST].user, "--", *words], capture_output=True,
                          text=True, timeout=30, check=True, stdin=subprocess.DEVNULL)
    return done.stdout


def spooled(remote: Remote, text: str) -> bool:
    """Whether the host's spool of transcripts holds `text` (read from this machine: box1 is this machine)."""
    for path in Path(remote.host_dir).glob("*/spool/.panes/*"):
        try:
            if text in path.read_text(errors="replace"):
                return True
        except OSError:  # replaced meanwhile
            continue
    return False


def rows_in(shown: str, prefix: str) -> list[str]:
    return [line.strip() for line in shown.splitlines() if line.strip().startswith(prefix)]


def numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{number}" for number in range(1, count + 1)]


def cut_off_printing(remote: Remote, ssh_hosts: SshHosts, name: str, *, kill_tmux: bool) -> None:
    """Start `name` on the host, have it print rows that scroll into its history, cut the host off, have it print
    more rows and the marker while home cannot look, then (`kill_tmux`) kill the host's tmux server, and bring
    the host back."""
    box = remote.sandbox
    remote.request("start", name=name, task="say one thing", command=remote.claude(name, SHOWN_BEFORE),
                   profile="claude", host=HOST)
    box.wait_state(name, "idle", timeout=30)
    remote.in_pane(name, "seq -f 'BEFORE-%g' 1 120")  # more than its screen holds: most scroll off, seen home
    socket = remote.host().layout().tmux_socket
    pane = str(box.agent(name)["pane"])
    tmux = ("tmux", "-S", socket)
    server = int(as_host_user(ssh_hosts, *tmux, "display-message", "-p", "#{pid}").strip())
    ssh_hosts.cut(HOST)
    try:
        box.wait_state(name, "unreachable", timeout=30)
        # It prints while home cannot look (its own `!` shell mode): the typed line does not hold the marker.
        as_host_user(ssh_hosts, *tmux, "send-keys", "-t", pane, "-l",
                     "!seq -f 'DURING-%g' 1 120; echo SHOWN-WHILE-CUT-OFF-$((6*7))")
        as_host_user(ssh_hosts, *tmux, "send-keys", "-t", pane, "Enter")
        wait_until(lambda: MARKER in as_host_user(ssh_hosts, *tmux, "capture-pane", "-p", "-t", pane), timeout=20,
                   message="the marker on its screen")
        # The keeper keeps once the host program lets go of `.home`: as it exits, or after SILENT seconds without
        # a line from home (a cut it never hears of).
        wait_until(lambda: spooled(remote, MARKER), timeout=SILENT + 15, message="the marker kept on the host's disk")
        if kill_tmux:
            os.kill(server, signal.SIGKILL)  # the host's tmux server dies (as in a reboot) before home is back
    finally:
        ssh_hosts.resume(HOST)


def assert_shown_once_in_order(shown: str) -> None:
    assert rows_in(shown, "BEFORE-") == numbered("BEFORE-", 120), shown  # what home had: not twice
    assert rows_in(shown, "DURING-") == numbered("DURING-", 120), shown  # what it showed meanwhile: all, once
    assert shown.count(MARKER) == 1, shown
    assert shown.index("BEFORE-120") < shown.index("DURING-1") < shown.index(MARKER), shown


def test_what_a_pane_shows_while_its_host_is_cut_off_survives_the_hosts_tmux_dying(remote: Remote,
                                                                                    ssh_hosts: SshHosts) -> None:
    cut_off_printing(remote, ssh_hosts, "a", kill_tmux=True)
    box = remote.sandbox
    box.wait_state("a", "exited", timeout=BACKOFF_BOUND)
    assert "a" in remote.request("restorable")["agents"]
    assert_shown_once_in_order(box.sv("log", "a").stdout)
    wait_until(lambda: not spooled(remote, MARKER), timeout=15, message="the host's spool taken home")


def history_size(ssh_hosts: SshHosts, socket: str, pane: str) -> int:
    return int(as_host_user(ssh_hosts, "tmux", "-S", socket, "display-message", "-p", "-t", pane,
                            "#{history_size}").strip())


def test_a_full_history_that_printed_a_tenth_of_its_limit_while_cut_off_is_taken_from_the_hosts_copy(
        remote: Remote, ssh_hosts: SshHosts) -> None:
    """A pane whose scrollback is full (a long-running agent) drops its oldest tenth each time it refills: after it
    printed exactly that much while home was away, its history has the size it had, and tells nothing of it. The
    host's copy does, and is kept until the engine has taken it."""
    box = remote.sandbox
    name = "c"
    remote.request("start", name=name, task="say one thing", command=remote.claude(name, SHOWN_BEFORE),
                   profile="claude", host=HOST)
    box.wait_state(name, "idle", timeout=30)
    socket = remote.host().layout().tmux_socket
    pane = str(box.agent(name)["pane"])
    remote.in_pane(name, "seq -f 'FILL-%g' 1 52000")  # past its history's limit (50000): full from now on
    limit = int(as_host_user(ssh_hosts, "tmux", "-S", socket, "display-message", "-p", "-t", pane,
                             "#{history_limit}").strip())
    assert history_size(ssh_hosts, socket, pane) >= limit - limit // 10
    ssh_hosts.cut(HOST)
    try:
        box.wait_state(name, "unreachable", timeout=30)
        # A tenth of the limit, a thousand rows at a time (as an agent prints: the host's copy counts each second).
        batches = limit // 10 // 1000
        as_host_user(ssh_hosts, "tmux", "-S", socket, "send-keys", "-t", pane, "-l",
                     f"!for b in $(seq 0 {batches - 1}); do seq -f 'DURING-%g' $((b*1000+1)) $((b*1000+1000)); "
                     "sleep 1.5; done; echo SHOWN-WHILE-CUT-OFF-$((6*7))")
        as_host_user(ssh_hosts, "tmux", "-S", socket, "send-keys", "-t", pane, "Enter")
        wait_until(lambda: spooled(remote, MARKER), timeout=60, message="the marker kept on the host's disk")
    finally:
        ssh_hosts.resume(HOST)
    box.wait_state(name, "idle", timeout=BACKOFF_BOUND)
    wait_until(lambda: MARKER in box.sv("log", name).stdout, timeout=30, message="the marker in its log")
    shown = box.sv("log", name).stdout
    assert rows_in(shown, "DURING-") == numbered("DURING-", batches * 1000), shown[-3000:]
    assert shown.count(MARKER) == 1
    wait_until(lambda: not spooled(remote, MARKER), timeout=15, message="the host's copy dropped once taken")


def test_a_pane_that_lived_through_the_cut_is_read_from_its_history_and_its_spool_dropped(remote: Remote,
                                                                                         ssh_hosts: SshHosts) -> None:
    cut_off_printing(remote, ssh_hosts, "b", kill_tmux=False)
    box = remote.sandbox
    box.wait_state("b", "idle", timeout=BACKOFF_BOUND)
    wait_until(lambda: MARKER in box.sv("log", "b").stdout, timeout=15, message="the marker in its log")
    assert_shown_once_in_order(box.sv("log", "b").stdout)
    wait_until(lambda: not spooled(remote, MARKER), timeout=15, message="the host's spool dropped")
