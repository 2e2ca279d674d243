"""`hosts:` in supervisor.yaml: defaults, `local`, and every bad value refused with its file and line before
anything starts (no ssh is run for a bad file); the ssh command line a host gets."""

from __future__ import annotations

import os
import pwd
import textwrap
from pathlib import Path

import pytest

from supervisor.config import HostConfig, load_config
from supervisor.errors import InputFileError
from supervisor.hosts.ssh import ssh_argv
from supervisor.hostsconfig import tilde
from tests.conftest import Sandbox


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "myrepo"
    root.mkdir()
    return root


def write(repo: Path, text: str) -> None:
    (repo / "supervisor.yaml").write_text(textwrap.dedent(text), encoding="utf-8")


def error(repo: Path, text: str) -> InputFileError:
    write(repo, text)
    with pytest.raises(InputFileError) as info:
        load_config(repo, environ={"BOX": "box9"})
    assert info.value.path == repo / "supervisor.yaml"
    return info.value


def test_no_hosts_by_default(repo: Path) -> None:
    config = load_config(repo, environ={})
    assert dict(config.hosts) == {} and config.local_max_agents is None


def test_a_host_with_defaults_and_one_with_every_key(repo: Path) -> None:
    (repo / "ssh.conf").write_text("Host box2\n  HostName 127.0.0.3\n")
    write(repo, """\
        hosts:
          box1:
            ssh: ${BOX}
          box2:
            ssh: me@build.example.com
            ssh_config: ssh.conf
            dir: /srv/agents
            max_agents: 20
          local:
            max_agents: 4
        """)
    config = load_config(repo, environ={"BOX": "box9"})
    assert list(config.hosts) == ["box1", "box2"]  # the file's order; local is not among them
    assert config.hosts["box1"] == HostConfig(name="box1", ssh="box9", ssh_config=None, dir="~/supervisor",
                                              max_agents=10)
    assert config.hosts["box2"] == HostConfig(name="box2", ssh="me@build.example.com", ssh_config=repo / "ssh.conf",
                                              dir="/srv/agents", max_agents=20)
    assert config.local_max_agents == 4


def test_the_tilde_of_ssh_config_is_the_users_home_as_openssh_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/nowhere")  # a test's or a sudo's HOME: OpenSSH reads the password database
    home = pwd.getpwuid(os.getuid()).pw_dir
    assert tilde("~/.ssh/config") == f"{home}/.ssh/config"
    assert tilde("~") == home
    assert tilde("~root/x") == f"{pwd.getpwnam('root').pw_dir}/x"
    assert tilde("/etc/ssh/ssh_config") == "/etc/ssh/ssh_config"


@pytest.mark.parametrize(("text", "line", "message", "hint"), [
    ("hosts:\n  box1:\n    ssh: box1\n    max_agent: 3\n", 4, "unknown key 'hosts.box1.max_agent'",
     "did you mean 'hosts.box1.max_agents'?"),
    ("host:\n  box1: {ssh: box1}\n", 1, "unknown key 'host'", "did you mean 'hosts'?"),
    ("hosts:\n  box1:\n    dir: ~/work\n", 3, "hosts.box1 needs 'ssh'", "e.g. hosts: {box1: {ssh: box1}}"),
    ("hosts:\n  box1: box1\n", 2, "hosts.box1 must be a mapping of its settings, got 'box1'", "e.g. hosts:"),
    ("hosts: [box1]\n", 1, "'hosts' must map host names to their settings, got a list", "e.g. hosts:"),
    ("hosts:\n  box1: {ssh: box1, max_agents: 0}\n", 2, "hosts.box1.max_agents must be an integer ≥ 1, got 0", None),
    ("hosts:\n  box1:\n    ssh: box1\n    max_agents: many\n", 4, "hosts.box1.max_agents must be an integer", None),
    ("hosts:\n  box1:\n    ssh: -oProxyCommand=sh\n", 3, "hosts.box1.ssh must be one destination",
     "ssh options belong in your ssh config"),
    ("hosts:\n  box1:\n    ssh: box1 -p 2222\n", 3, "hosts.box1.ssh must be one destination", None),
    ("hosts:\n  box1:\n    ssh: null\n", 3, "hosts.box1.ssh must be a destination such as box1", None),
    ("hosts:\n  box1:\n    ssh: box1\n    dir: work\n", 4, "hosts.box1.dir must be a folder on the host",
     "e.g. dir: ~/supervisor"),
    ("hosts:\n  box1:\n    ssh: box1\n    ssh_config: missing.conf\n", 4, "hosts.box1.ssh_config: no such file", None),
    ("hosts:\n  Box_1: {ssh: box1}\n", 2, "invalid host name 'Box_1'", "a-z, 0-9 and '-'"),
    ("hosts:\n  box1: {ssh: box1}\n  box1: {ssh: box2}\n", 3, "duplicate host 'hosts.box1'", "line 2"),
    ("hosts:\n  local:\n    ssh: box1\n", 3, "hosts.local is this machine: 'ssh' cannot be set for it",
     "give the remote host another name"),
    ("hosts:\n  local: {max_agents: -1}\n", 2, "hosts.local.max_agents must be an integer ≥ 1", None),
    ("hosts:\n  box1: {ssh: '${NOPE}'}\n", 2, "environment variable 'NOPE' is not set", None),
])
def test_a_bad_hosts_value_names_its_line(repo: Path, text: str, line: int, message: str, hint: str | None) -> None:
    found = error(repo, text)
    assert found.line == line, found.message
    assert message in found.detail
    if hint is not None:
        assert found.hint is not None and hint in found.hint


def test_a_bad_hosts_value_stops_the_command_before_any_ssh(sandbox: Sandbox) -> None:
    sandbox.write_config("hosts:\n  box1:\n    ssh: box1\n    max_agnets: 3\n")
    for command in (["hosts"], ["hosts", "check"], ["hosts", "--json"]):
        done = sandbox.sv(*command, check=False)
        assert done.returncode == 2, done
        assert f"{sandbox.root / 'supervisor.yaml'}:4: unknown key 'hosts.box1.max_agnets'" in done.stderr
        assert "did you mean 'hosts.box1.max_agents'?" in done.stderr
        assert done.stdout == ""


def test_the_ssh_command_line_keeps_the_users_setup_and_never_asks(tmp_path: Path) -> None:
    config = tmp_path / "ssh.conf"
    host = HostConfig(name="box1", ssh="me@box1", ssh_config=config)
    options = ["-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ConnectTimeout=10",
               "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
               # nothing of this machine's forwarded to a host where agents run: no agent, no X11, no ports
               "-a", "-x", "-o", "ForwardAgent=no", "-o", "ForwardX11=no", "-o", "ClearAllForwardings=yes",
               "-o", "PermitLocalCommand=no"]
    # The remote words become one string for the host's shell, each word quoted as it was.
    assert ssh_argv(host, "printf", "%s", "a b", "it's") == [
        "ssh", "-F", str(config), "-T", *options, "--", "me@box1", "printf %s 'a b' 'it'\"'\"'s'"]
    # attach: a terminal; no config file named: OpenSSH's own files.
    assert ssh_argv(HostConfig(name="box1", ssh="box1"), tty=True) == ["ssh", "-t", *options, "--", "box1"]
    assert not any("StrictHostKeyChecking" in word for word in ssh_argv(host, "true"))
