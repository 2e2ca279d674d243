"""The engine's own steps on a host against what agents there can write (`isolation: none`: the host user's
clone configuration, attributes and folders), on real sshd hosts (tests/sshd.py): its git runs no filter an agent
configured, a stop ends the command's own process group and nothing a file names, and a branch an earlier start
left when the link dropped does not keep the name from starting again."""

from __future__ import annotations

import shlex
import threading

from supervisor.core.contract import Contract
from supervisor.engine.engine import Engine
from supervisor.hosts.commands import STOPPED, Ran
from tests.conftest import Sandbox, wait_until
from tests.sshd import SshHosts
from tests.test_remote_git import engine, on_host, place, remote

__all__ = ["engine"]  # the fixture, shared with test_remote_git


def configure(sandbox: Sandbox, ssh_hosts: SshHosts) -> str:
    folder = ssh_hosts.fresh_dir("box1")
    sandbox.write_config("agent:\n  profile: generic\n  command: sleep 600\nisolation: none\n"
                         f"hosts:\n  box1:\n    ssh: box1\n    ssh_config: {ssh_hosts.config}\n    dir: {folder}\n")
    return folder


def test_the_engines_git_there_runs_no_filter_an_agent_configured(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                  engine: Engine) -> None:
    folder = configure(sandbox, ssh_hosts)
    host = remote(engine)
    place(engine, "one", Contract(modify=("**",)))
    clone = shlex.quote(host.layout().clone)
    marks = f"{folder}/marks"
    # An agent of the host user's names a filter for every file, in the clone's configuration and attributes.
    on_host(ssh_hosts, f"mkdir -p {marks} && " + " && ".join(
        f"git --git-dir={clone} config filter.evil.{leaf} {shlex.quote(f'touch {marks}/{leaf}; cat')}"
        for leaf in ("smudge", "clean", "process")) + f" && echo '* filter=evil' > {clone}/info/attributes")
    # The engine's git checks files out (a new worktree), and compares them (status, diff) after an edit.
    two = place(engine, "two", Contract(modify=("**",)))
    on_host(ssh_hosts, f"echo changed >> {shlex.quote(two)}/README.md")
    agent = engine.get("two")
    assert host.worktrees.uncommitted_changes(agent) == [" M README.md"]
    assert "+changed" in host.worktrees.diff_against(agent, agent.base)
    assert on_host(ssh_hosts, f"ls -A {marks}") == ""  # none of them ran


def test_a_stop_ends_the_commands_own_group_whatever_a_file_there_says(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                       engine: Engine) -> None:
    folder = configure(sandbox, ssh_hosts)
    host = remote(engine)
    worktree = place(engine, "cmd", Contract(modify=("**",)))
    root = host.layout().root
    # A process of the host user's, in a session of its own: nothing of the command's.
    victim = on_host(ssh_hosts, "setsid sleep 6021 </dev/null >/dev/null 2>&1 & echo $!")
    ready = f"{folder}/ready"
    # The command writes the victim's pid wherever the engine might look for its own.
    command = (f"for f in {root}/run/*.pid {root}/run/*/*.pid; do [ -e \"$f\" ] && echo {victim} > \"$f\"; done; "
               f"touch {ready}; sleep 6022")
    stop = threading.Event()
    ran: list[Ran] = []
    running = threading.Thread(target=lambda: ran.append(host.run_isolated(
        engine.get("cmd"), command, worktree, {}, stop=stop, timeout=60)))
    running.start()
    try:
        wait_until(lambda: on_host(ssh_hosts, f"[ -e {ready} ] && echo yes || true") == "yes", timeout=30,
                   message="the command's writes done")
        stop.set()
        running.join(90)
        assert [done.cut for done in ran] == [STOPPED]
        assert on_host(ssh_hosts, f"kill -0 {victim} && echo alive || echo gone") == "alive"
        assert on_host(ssh_hosts, "ps -o args= -u \"$(id -u)\" | grep -c '^sleep 6022' || true") == "0"
    finally:
        on_host(ssh_hosts, f"kill {victim} 2>/dev/null || true")


def test_a_branch_an_earlier_start_left_does_not_keep_the_name(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                               engine: Engine) -> None:
    configure(sandbox, ssh_hosts)
    host = remote(engine)
    layout = host.layout()
    # An earlier start of `gone` made its branch and worktree there, then the link dropped: the start failed and
    # its record went (as the launcher does), what was made on the host stayed.
    earlier = engine.launcher.new_session("gone", None, "sleep 600", "generic", "HEAD", engine.config)
    earlier.host, earlier.worktree = "box1", layout.worktree("gone")
    host.make_worktree(earlier, earlier.base, None)
    on_host(ssh_hosts, f"echo half > {shlex.quote(earlier.worktree)}/half-made")
    # The next start of that name makes its worktree afresh.
    again = engine.launcher.new_session("gone", None, "sleep 600", "generic", "HEAD", engine.config)
    again.host, again.worktree = "box1", layout.worktree("gone")
    engine.store.add_agent(again)
    host.make_worktree(again, again.base, None)
    clone = shlex.quote(layout.clone)
    assert on_host(ssh_hosts, f"git --git-dir={clone} rev-parse refs/heads/agent/gone/work") == again.base
    assert "half-made" not in on_host(ssh_hosts, f"ls -A {shlex.quote(again.worktree)}").split()
