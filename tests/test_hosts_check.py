"""`supervisor hosts check`, `supervisor hosts` and `doctor` against real sshd hosts (tests/sshd.py): a host with
all it needs is all green, one without tmux is named with a hint, an unknown host key or a host that does not
answer is one clear ssh line — never a prompt, never host-key checks turned off."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from supervisor.config import HostConfig
from supervisor.hosts.ssh import SshError, run_on
from tests import sandboxed
from tests.conftest import Sandbox, wait_until
from tests.sshd import SshHosts

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not sandboxed.in_ci(),
                                 reason="needs bubblewrap (apt-get install bubblewrap)")
AGENT_CLI = "python3 -m agent --flag"  # a CLI whose program every test host has on its PATH


def configure(sandbox: Sandbox, ssh_hosts: SshHosts, config: Path | None = None, command: str = AGENT_CLI,
              **hosts: str) -> dict[str, str]:
    """supervisor.yaml naming `hosts` (name → ssh destination), each with a dir of its own on its host, and the
    agents' `command` (its program found on every host); each host's dir, as supervisor.yaml names it."""
    lines = ["agent:", "  profile: generic", f"  command: {command}", "hosts:"]
    dirs = {}
    for name, destination in hosts.items():
        box = destination.split("-")[0]
        dirs[name] = f"{ssh_hosts.fresh_dir(box)}/work"
        lines += [f"  {name}:", f"    ssh: {destination}", f"    ssh_config: {config or ssh_hosts.config}",
                  f"    dir: {dirs[name]}", "    max_agents: 3"]
    sandbox.write_config("\n".join(lines) + "\n")
    return dirs


def test_a_host_with_all_it_needs_is_all_green(sandbox: Sandbox, ssh_hosts: SshHosts) -> None:
    configure(sandbox, ssh_hosts, box1="box1")
    done = sandbox.sv("hosts", "check")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("box1 (ssh box1, dir ~/t-")
    marks = {line.split()[1]: line.split()[0] for line in lines[1:] if line.split()[0] in ("ok", "FAIL")}
    assert marks == {"ssh": "ok", "python": "ok", "git": "ok", "tmux": "ok", "isolation": "ok", "cli": "ok",
                     "credentials": "ok", "disk": "ok"}
    assert "as svbox1 by key, host key known" in done.stdout
    # The disk is looked at where the host's `dir` will be: under the host user's home, `~` expanded there.
    assert f"free under {ssh_hosts.hosts['box1'].home}/t-" in done.stdout
    report = json.loads(sandbox.sv("hosts", "check", "box1", "--json").stdout)
    assert [(r["host"], r["ok"]) for r in report] == [("box1", True)]
    assert [r["name"] for r in report[0]["requirements"]] == ["ssh", "python", "git", "tmux", "isolation", "cli",
                                                              "credentials", "disk"]
    assert "not copied: each agent's CLI logs in on the host itself" in done.stdout  # what goes there, said


def test_a_host_without_tmux_is_named_with_a_hint(sandbox: Sandbox, ssh_hosts: SshHosts) -> None:
    configure(sandbox, ssh_hosts, box1="box1", box2="box2-notmux")
    done = sandbox.sv("hosts", "check", check=False)
    assert done.returncode == 1
    box2 = done.stdout.split("\n\n")[1].splitlines()
    tmux = next(i for i, line in enumerate(box2) if line.split()[:2] == ["FAIL", "tmux"])
    assert "not found on the PATH an ssh command gets there" in box2[tmux]
    assert "hint: install tmux >= 3.2 on the host" in box2[tmux + 1]
    assert [line.split()[1] for line in box2 if line.startswith("  FAIL")] == ["tmux"]  # the rest is there
    assert "box2: not ready for agents" in done.stderr
    assert sandbox.sv("hosts", "check", "box1").returncode == 0  # one host's check alone


def test_an_unknown_host_key_is_one_ssh_line_and_the_key_is_never_taken(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                        tmp_path: Path) -> None:
    # The same host under an alias its known_hosts has no key for: ssh must refuse, and learn nothing.
    known_hosts = ssh_hosts.root / "known_hosts"
    before = known_hosts.read_text()
    stranger = tmp_path / "ssh_config"
    stranger.write_text(ssh_hosts.config.read_text().replace("HostKeyAlias box1", "HostKeyAlias stranger")
                        .replace("StrictHostKeyChecking yes", "StrictHostKeyChecking ask"))
    configure(sandbox, ssh_hosts, config=stranger, box1="box1")
    # A prompt would go to this program (it answers yes to anything): ssh must never ask it.
    asked = tmp_path / "asked"
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho \"$*\" >> {asked}\necho yes\n")
    askpass.chmod(0o755)
    sandbox.env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    done = sandbox.sv("hosts", "check", check=False, timeout=60)
    assert not asked.exists()
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[1].split()[:2] == ["FAIL", "ssh"] and "Host key verification failed." in lines[1]
    assert "not in your known_hosts" in lines[2] and "never turns host-key checks off" in lines[2]
    assert len(lines) == 3  # nothing else is looked at without a connection
    assert known_hosts.read_text() == before
    row = json.loads(sandbox.sv("hosts", "--json").stdout)[1]
    assert (row["name"], row["state"], row["error"]) == ("box1", "down", "ssh: Host key verification failed.")


def test_a_host_that_does_not_answer_is_one_ssh_line(sandbox: Sandbox, ssh_hosts: SshHosts) -> None:
    configure(sandbox, ssh_hosts, box2="box2")
    ssh_hosts.cut("box2")
    try:
        done = sandbox.sv("hosts", "check", check=False, timeout=60)
    finally:
        ssh_hosts.resume("box2")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[1].split()[:2] == ["FAIL", "ssh"] and "Connection refused" in lines[1]
    assert "is sshd running on the host" in lines[2]


def test_hosts_lists_each_host_with_its_state(sandbox: Sandbox, ssh_hosts: SshHosts) -> None:
    configure(sandbox, ssh_hosts, box1="box1", box2="box2-notmux")
    rows = json.loads(sandbox.sv("hosts", "--json").stdout)
    keys = {"name", "state", "agents", "max_agents", "load", "latency_ms", "last_seen", "error"}
    assert [set(row) for row in rows] == [keys] * 3
    local, box1, box2 = rows
    assert (local["name"], local["state"], local["max_agents"]) == ("local", "up", None)
    assert (box1["name"], box1["state"], box1["max_agents"], box1["error"]) == ("box1", "up", 3, None)
    assert box1["load"]["cores"] >= 1 and box1["load"]["load1"] >= 0
    assert box1["latency_ms"] >= 0 and box1["last_seen"].endswith("Z")
    assert local["agents"] is None and box1["agents"] is None  # no engine runs: nobody counted them
    assert (box2["state"], box2["error"]) == ("down", f"tmux: not found on the PATH an ssh command gets there "
                                                      f"({ssh_hosts.root / 'bare-bin'})")
    # With the engine running, it answers from its link to each host (`connecting` until the first attempt
    # ends), and counts the agents.
    sandbox.sv("engine", "start")
    rows = wait_until(lambda: (found := json.loads(sandbox.sv("hosts", "--json").stdout))
                      and all(row["state"] != "connecting" for row in found) and found, timeout=60,
                      interval=0.2, message="each host's link up or down")
    assert [(row["name"], row["state"], row["agents"]) for row in rows] == [("local", "up", 0), ("box1", "up", 0),
                                                                              ("box2", "down", 0)]
    assert rows[2]["error"] == box2["error"]  # what it lacks, as the check says it
    table = sandbox.sv("hosts").stdout.splitlines()
    assert table[0].split() == ["HOST", "STATE", "AGENTS", "LOAD", "LATENCY", "LAST", "SEEN", "ERROR"]
    assert table[2].split()[:3] == ["box1", "up", "0/3"]
    assert table[3].split()[:2] == ["box2", "down"] and table[3].endswith("bare-bin)")


def test_doctor_checks_each_host(sandbox: Sandbox, ssh_hosts: SshHosts) -> None:
    configure(sandbox, ssh_hosts, box1="box1", box2="box2-notmux")
    checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
    assert checks["host box1"]["ok"] and "Python 3." in checks["host box1"]["detail"]
    assert not checks["host box2: tmux"]["ok"] and "install tmux" in checks["host box2: tmux"]["hint"]
    assert "host box2" not in checks


def _cli(block: list[str]) -> tuple[str, str]:
    """The `cli` line of a host's block, and its hint (or "")."""
    at = next(i for i, line in enumerate(block) if line.split()[1:2] == ["cli"])
    hint = block[at + 1] if at + 1 < len(block) and "hint:" in block[at + 1] else ""
    return block[at], hint


def test_the_agent_cli_is_looked_for_where_agents_run_it(sandbox: Sandbox, ssh_hosts: SshHosts) -> None:
    configure(sandbox, ssh_hosts, command="no-such-agent-cli --flag", box1="box1")
    done = sandbox.sv("hosts", "check", check=False)
    line, hint = _cli(done.stdout.splitlines())
    assert done.returncode == 1 and line.split()[0] == "FAIL"
    assert "no-such-agent-cli: not found on the PATH an ssh command gets there" in line
    assert "install it on host box1 outside its dir (~/t-" in hint and "full path" in hint
    assert "box1: not ready for agents" in done.stderr
    checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
    assert not checks["host box1: cli"]["ok"] and "no-such-agent-cli" in checks["host box1: cli"]["detail"]


@needs_bwrap
def test_an_agent_cli_under_the_hosts_dir_is_refused_where_the_sandbox_hides_it(sandbox: Sandbox,
                                                                               ssh_hosts: SshHosts) -> None:
    """Under `dir` (or a link into it), the host user finds the CLI but a sandboxed agent there cannot."""
    home = ssh_hosts.hosts["box1"].home
    outside = str(home / ssh_hosts.fresh_dir("box1").removeprefix("~/"))
    dirs = configure(sandbox, ssh_hosts, box1="box1")
    inside = str(home / dirs["box1"].removeprefix("~/"))
    ssh_hosts.ssh("box1", "sh", "-c", 'mkdir -p "$1/bin" "$2" && printf "#!/bin/sh\\n" > "$1/bin/cli" && '
                  'chmod +x "$1/bin/cli" && cp "$1/bin/cli" "$2/cli" && ln -s "$1/bin/cli" "$2/link"',
                  "sh", inside, outside)
    for program, ok in ((f"{inside}/bin/cli", False), (f"{outside}/link", False), (f"{outside}/cli", True)):
        configure_again = (sandbox.root / "supervisor.yaml").read_text().replace(
            f"command: {AGENT_CLI}", f"command: {program} --flag")
        sandbox.write_config(configure_again)
        done = sandbox.sv("hosts", "check", check=False)
        line, hint = _cli(done.stdout.splitlines())
        assert (done.returncode == 0) is ok, done.stdout
        if ok:
            assert line.split()[:2] == ["ok", "cli"] and f"at {outside}/cli" in line
        else:
            assert line.split()[:2] == ["FAIL", "cli"]
            assert f"at {inside}/bin/cli, but it lies under the host's dir ({inside})" in line  # the link resolved
            assert "which an agent's sandbox there hides" in line and "outside its dir" in hint
        sandbox.write_config((sandbox.root / "supervisor.yaml").read_text().replace(
            f"command: {program} --flag", f"command: {AGENT_CLI}"))
    # Unsandboxed, it runs there: said, not refused.
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text().replace(
        f"command: {AGENT_CLI}", f"command: {inside}/bin/cli") + "isolation: none\n")
    line, _ = _cli(sandbox.sv("hosts", "check").stdout.splitlines())
    assert line.split()[:2] == ["ok", "cli"] and "could not start if they were sandboxed" in line


@needs_bwrap
def test_with_the_hosts_dir_holding_its_home_a_cli_under_the_home_is_not_hidden(sandbox: Sandbox,
                                                                                 ssh_hosts: SshHosts) -> None:
    """`dir: ~`: the sandbox there keeps the home readable (it hides the repository's folder in it), so a CLI under
    the home starts sandboxed, and `hosts check` says so."""
    home = ssh_hosts.hosts["box1"].home
    outside = str(home / ssh_hosts.fresh_dir("box1").removeprefix("~/"))
    ssh_hosts.ssh("box1", "sh", "-c", 'mkdir -p "$1" && printf "#!/bin/sh\\n" > "$1/cli" && chmod +x "$1/cli"',
                  "sh", outside)
    dirs = configure(sandbox, ssh_hosts, command=f"{outside}/cli --flag", box1="box1")
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text().replace(f"dir: {dirs['box1']}", "dir: '~'"))
    done = sandbox.sv("hosts", "check", check=False)
    line, _ = _cli(done.stdout.splitlines())
    assert done.returncode == 0, done.stdout
    assert line.split()[:2] == ["ok", "cli"] and f"at {outside}/cli" in line and "hides" not in line, line


def test_run_on_carries_each_word_as_it_was(ssh_hosts: SshHosts) -> None:
    host = HostConfig(name="box1", ssh="box1", ssh_config=ssh_hosts.config)
    words = ["a b", "it's", "$HOME", "*", "; echo injected", ""]
    done = run_on(host, ["printf", "[%s]", *words], timeout=30)
    assert done.stdout == "".join(f"[{word}]" for word in words)
    assert run_on(host, ["sh", "-c", "exit 3"], timeout=30).returncode == 3
    with pytest.raises(SshError) as info:
        run_on(HostConfig(name="box1", ssh="box1-unknown", ssh_config=ssh_hosts.config), ["true"], timeout=30)
    assert info.value.message.startswith("box1: ") and info.value.hint


def test_a_stale_controlmaster_socket_of_the_users_does_not_hang_the_check(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                           tmp_path: Path) -> None:
    # The user's config shares connections through a master socket that accepts and never answers (a master
    # that hung): a plain `ssh box1` waits on it for ever; ConnectTimeout does not cover it.
    stale = Path(tempfile.mkdtemp(prefix="sv-cm-", dir="/tmp")) / "master.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(stale))
    listener.listen(8)
    config = tmp_path / "ssh_config"
    config.write_text(f"Host box1\n  ControlMaster auto\n  ControlPath {stale}\n\n{ssh_hosts.config.read_text()}")
    configure(sandbox, ssh_hosts, config=config, box1="box1")
    try:
        done = sandbox.sv("hosts", "check", timeout=60)
    finally:
        listener.close()
        shutil.rmtree(stale.parent, ignore_errors=True)
    assert "ok    ssh        logged in to box1 as svbox1" in done.stdout
