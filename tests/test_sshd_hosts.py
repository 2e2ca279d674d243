"""The test hosts are what the hosts tests rely on: real sshd, a user of their own, keys and host keys checked,
a cut that drops every connection, and a way back."""

from __future__ import annotations

import subprocess

from tests.sshd import SshHosts


def test_each_host_is_its_own_user_over_real_ssh_with_host_keys_checked(ssh_hosts: SshHosts) -> None:
    for name, host in ssh_hosts.hosts.items():
        done = ssh_hosts.ssh(name, "id", "-un")
        assert done.stdout.strip() == host.user
    # The host key is checked: the same host under another alias has no known key, and ssh refuses it.
    refused = subprocess.run(["ssh", "-F", str(ssh_hosts.config), "-T", "-o", "BatchMode=yes",
                              "-o", "HostKeyAlias=unknown", "box1", "true"], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL)
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr


def test_the_notmux_alias_has_git_and_python_but_no_tmux(ssh_hosts: SshHosts) -> None:
    done = ssh_hosts.ssh("box2-notmux", "sh", "-c",
                         "command -v git; command -v python3; command -v tmux || echo no-tmux")
    lines = done.stdout.split()
    assert lines[-1] == "no-tmux" and len(lines) == 3


def test_a_cut_host_drops_its_connections_and_comes_back(ssh_hosts: SshHosts) -> None:
    held = subprocess.Popen(["ssh", "-F", str(ssh_hosts.config), "-T", "-o", "BatchMode=yes", "box2", "cat"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert held.stdin is not None and held.stdout is not None
    held.stdin.write(b"ping\n")
    held.stdin.flush()
    assert held.stdout.readline() == b"ping\n"
    ssh_hosts.cut("box2")
    try:
        assert held.wait(timeout=20) == 255
        assert ssh_hosts.ssh("box2", "true", check=False).returncode == 255
    finally:
        ssh_hosts.resume("box2")
    assert ssh_hosts.ssh("box2", "echo", "back").stdout.strip() == "back"
