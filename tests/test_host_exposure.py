"""What the host program exposes to the agents on its host, against real sshd (tests/sshd.py): no forwarded ssh
agent or display, even with `ForwardAgent yes` in the user's ssh config (the link and `attach` alike); no way for
another process of the host user into the program's output (/proc/PID/fd); and a program file changed on the host
is replaced, never run."""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.config import HostConfig
from supervisor.hosts.hostapp import INSTALL_DIR, build, host_app
from supervisor.hosts.link import Link
from supervisor.hosts.ssh import run_on, ssh_argv
from tests.conftest import wait_until
from tests.links import Heard, host_argv
from tests.sshd import SshHosts

ASK = "echo agent=${SSH_AUTH_SOCK:-none} conn=${SSH_CONNECTION:-none} client=${SSH_CLIENT:-none}"
NOTHING = "agent=none conn=none client=none"


@pytest.fixture
def forwarding(ssh_hosts: SshHosts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A running ssh-agent holding a key, and the user's ssh config saying `ForwardAgent yes` for every host:
    → that config."""
    socket = Path(f"/tmp/sv-agent-{uuid.uuid4().hex[:8]}.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL)
    try:
        wait_until(socket.exists, message="ssh-agent listening")
        key = tmp_path / "user_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket))
        subprocess.run(["ssh-add", "-q", str(key)], check=True, capture_output=True)
        config = tmp_path / "ssh_config"
        config.write_text("Host *\n  ForwardAgent yes\n  ForwardX11 yes\n\n" + ssh_hosts.config.read_text())
        yield config
    finally:
        agent.terminate()
        agent.wait()
        socket.unlink(missing_ok=True)


def test_the_users_agent_is_not_forwarded_to_the_link_attach_or_one_off_commands(
        ssh_hosts: SshHosts, forwarding: Path) -> None:
    host = HostConfig(name="box1", ssh="box1", ssh_config=forwarding)
    # A one-off command (hosts check and the like) and attach's `ssh -t` get no agent of the user's.
    done = run_on(host, ["sh", "-c", "echo ${SSH_AUTH_SOCK:-none}"], timeout=30)
    assert done.stdout.strip() == "none", done.stderr
    attach = subprocess.run(ssh_argv(host, "sh", "-c", "echo ${SSH_AUTH_SOCK:-none}", tty=True),
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False)
    assert attach.stdout.strip() == "none", attach.stderr
    # The host program, and so every command, tmux server and pane it starts, has neither the user's agent
    # nor where the user connects from.
    app = host_app()
    link = Link("box1", ssh_argv(host, *app.boot_words(ssh_hosts.fresh_dir("box1"))), app=app)
    link.connect()
    try:
        ran = link.call("run", argv=["sh", "-c", ASK])
        assert ran["stdout"].strip() == NOTHING
        assert "SSH_TTY" not in link.call("run", argv=["env"])["stdout"]
    finally:
        link.close()


def test_no_other_process_of_the_host_user_can_open_the_programs_output(ssh_hosts: SshHosts) -> None:
    app = host_app()
    link = Link("box1", host_argv(ssh_hosts, "box1", app.boot_words(ssh_hosts.fresh_dir("box1"))), app=app)
    link.connect()
    try:
        program = int(link.call("run", argv=["sh", "-c", "echo $PPID"])["stdout"])
        # A process of the same user, as an agent's is (`isolation: none`): it cannot write into the link.
        probe = (f"(exec 3>/proc/{program}/fd/1) 2>/dev/null && echo opened || echo refused; "
                 f"ls /proc/{program}/fd >/dev/null 2>&1 && echo listed || echo refused")
        seen = ssh_hosts.ssh("box1", "sh", "-c", probe).stdout.split()
        assert seen == ["refused", "refused"]
        assert link.call("ping")["version"] == app.version  # and the link is whole
    finally:
        link.close()


def test_a_program_file_changed_on_the_host_is_replaced_not_run(ssh_hosts: SshHosts) -> None:
    app = build({"hostside/_unique.py": uuid.uuid4().hex.encode()})  # a version no other test installs
    installed = f"{INSTALL_DIR}/host-{app.version}.pyz"
    marker = f"tampered-{uuid.uuid4().hex[:8]}"
    tampered = build({"hostside/_unique.py": b"", "__main__.py": (
        f"import os\nopen(os.path.expanduser('~/{marker}'), 'w').write('ran')\n"
        "from hostside.server import main\nmain()\n").encode()}).data

    def connect() -> Link:
        link = Link("box1", host_argv(ssh_hosts, "box1", app.boot_words(ssh_hosts.fresh_dir("box1"))),
                    on_event=Heard().event, app=app)
        link.connect()
        return link

    first = connect()
    try:
        assert first.installed
        # An agent of the host user's replaces the program (the same name: the version the engine asks for).
        write = f"base64 -d > {installed}"
        done = first.call("run", argv=["sh", "-c", write], stdin=base64.b64encode(tampered).decode())
        assert done["rc"] == 0, done["stderr"]
    finally:
        first.close()
    again = connect()
    try:
        assert again.installed  # the bootstrap saw the file was not this version, and asked for it anew
        assert again.call("ping")["version"] == app.version
        listing = again.call("run", argv=["sh", "-c", f"ls ~/{marker} 2>&1; sha256sum {installed}"])["stdout"]
        assert "No such file" in listing  # the changed program never ran
        assert listing.split()[-2].startswith(app.version)  # the file is this version again
    finally:
        again.close()
