"""Real sshd servers on loopback addresses for the hosts tests: two hosts, each its own unprivileged user.

`box1` listens on 127.0.0.2 as user `svbox1`, `box2` on 127.0.0.3 as `svbox2`. The users are made once per
machine (under a lock: xdist workers race on /etc/passwd); each xdist worker runs its own sshd per host on a
port of its own, with its own host key, client key and authorized keys (sshd reads them from the worker's
folder, so nothing is written into the users' `~/.ssh`). Each user has a git identity of its own in its
`~/.gitconfig` (`svbox1 on its host <svbox1@hosts.example>`), as a build box's user would. The client is
configured only through the ssh config file `SshHosts.config` (OpenSSH takes `~` from the password database,
not from `$HOME`, so a test's HOME cannot carry it). Host keys are checked (`StrictHostKeyChecking yes` against
a known_hosts of the worker's own), as a user's would be.

A second alias per host, `<name>-notmux`, logs in as the same user with a PATH that has no tmux (set by its
key's `environment=` option), for the "host without tmux" paths; `<name>-nobwrap` likewise has every program of
the system's PATH but bubblewrap, for a host that cannot sandbox its agents.

Needs root (to make the users and run sshd on loopback addresses), as CI runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
HOSTS = {"box1": ("svbox1", "127.0.0.2"), "box2": ("svbox2", "127.0.0.3")}
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
USERS_LOCK = Path("/tmp/supervisor-test-host-users.lock")
# What a host without tmux keeps on its PATH (linked into a folder of the worker's own).
BARE_TOOLS = ("sh", "bash", "env", "python3", "git", "cat", "mkdir", "mv", "rm", "ls", "df", "nproc", "uname",
              "id", "bwrap")


@dataclass
class SshHost:
    name: str
    user: str
    address: str
    home: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    config_file: Path = field(default=Path())


@dataclass
class SshHosts:
    root: Path  # the worker's folder: keys, sshd configs, known_hosts, the ssh config
    config: Path  # the ssh config file naming every host (`ssh -F config box1`)
    hosts: dict[str, SshHost]
    dirs: list[tuple[str, Path]] = field(default_factory=list)  # (user, folder) handed out by fresh_dir

    def ssh(self, name: str, *command: str, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run `command` on host `name` over ssh as its user (a test's way to look at the host). ssh hands the
        remote side one string for the user's shell, so the words are quoted here."""
        argv = ["ssh", "-F", str(self.config), "-T", "-o", "BatchMode=yes", name, "--", shlex.join(command)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check,
                              stdin=subprocess.DEVNULL)

    def fresh_dir(self, name: str) -> str:
        """A `dir` of the test's own on host `name`, as supervisor.yaml would name it (`~/...`); removed, with
        every process of the host user still running in it, when the session ends."""
        folder = f"t-{uuid.uuid4().hex[:10]}"
        host = self.hosts[name]
        self.dirs.append((host.user, host.home / folder))
        return f"~/{folder}"

    def clean(self) -> None:
        """End what tests left running in their folders on the hosts (tmux servers, host-side programs) and
        remove the folders; other workers' folders, on the same users, are left alone."""
        for process in psutil.process_iter(["username", "cmdline", "cwd"]):
            for user, folder in self.dirs:
                seen = [process.info["cwd"] or "", *(process.info["cmdline"] or [])]
                if process.info["username"] == user and any(str(folder) in text for text in seen):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        process.send_signal(signal.SIGKILL)
        for _, folder in self.dirs:
            shutil.rmtree(folder, ignore_errors=True)

    def cut(self, name: str) -> None:
        """Cut host `name` off: its sshd and every connection it carries are killed (the programs those
        connections started on the host see their link drop, as after a network failure)."""
        host = self.hosts[name]
        assert host.process is not None, f"{name} is not running"
        listener = psutil.Process(host.process.pid)
        sessions = [p for p in listener.children(recursive=True) if p.name().startswith("sshd")]
        host.process.kill()
        host.process.wait(timeout=10)
        host.process = None
        for process in sessions:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        # Sessions of this sshd that its listener no longer parents (none with -D, but be sure).
        for process in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if (process.info["name"] or "").startswith("sshd") and str(host.config_file) in cmdline:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()

    def resume(self, name: str) -> None:
        """Start host `name`'s sshd again on the same address, port and keys."""
        _start_sshd(self.hosts[name])

    def stop(self) -> None:
        for name, host in self.hosts.items():
            if host.process is not None:
                self.cut(name)


def make_users() -> None:
    """The host users, once per machine: made if missing, with a usable (not locked) account and a home."""
    if os.geteuid() != 0:
        raise RuntimeError("the hosts tests need root: they make a user per host and run sshd (CI runs as root)")
    with USERS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for user, _ in HOSTS.values():
            try:
                pwd.getpwnam(user)
            except KeyError:
                subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user], check=True,
                               capture_output=True)
            # A locked account ('!' in shadow) cannot log in by key without PAM: '*' is no password, not locked.
            subprocess.run(["usermod", "-p", "*", user], check=True, capture_output=True)
            _git_identity(user)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def _git_identity(user: str) -> None:
    """The host user's own git identity in its `~/.gitconfig`, as a build box's user has one: what an agent
    there commits as (tests see it in the commits that come home)."""
    entry = pwd.getpwnam(user)
    config = Path(entry.pw_dir) / ".gitconfig"
    for key, value in (("user.name", f"{user} on its host"), ("user.email", f"{user}@hosts.example")):
        subprocess.run(["git", "config", "--file", str(config), key, value], check=True, capture_output=True)
    os.chown(config, entry.pw_uid, entry.pw_gid)


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


def _start_sshd(host: SshHost) -> None:
    with host.config_file.with_suffix(".log").open("ab") as log:
        host.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(host.config_file)],
                                        stdout=subprocess.DEVNULL, stderr=log)
    from tests.conftest import wait_until

    def listening() -> bool:
        assert host.process is not None and host.process.poll() is None, f"sshd for {host.name} exited"
        with socket.socket() as probe:
            probe.settimeout(0.5)
            return probe.connect_ex((host.address, host.port)) == 0

    wait_until(listening, timeout=20, message=f"sshd for {host.name} listening on {host.address}:{host.port}")


def start(root: Path) -> SshHosts:
    """Both hosts' sshd in `root` (a folder of the worker's own), with the ssh config naming them."""
    make_users()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)  # keys are made in it before anyone else may enter
    client_public = _keygen(root / "client_key")
    bare_public = _keygen(root / "bare_key")
    nobwrap_public = _keygen(root / "nobwrap_key")
    bare_bin = root / "bare-bin"
    bare_bin.mkdir()
    for tool in BARE_TOOLS:
        found = shutil.which(tool, path=SYSTEM_PATH)
        if found:
            (bare_bin / tool).symlink_to(found)
    nobwrap_bin = root / "nobwrap-bin"
    nobwrap_bin.mkdir()
    for folder in SYSTEM_PATH.split(":"):
        for entry in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
            if entry.name != "bwrap" and not (nobwrap_bin / entry.name).exists():
                (nobwrap_bin / entry.name).symlink_to(entry)
    root.chmod(0o711)  # the host users reach bare-bin through it; they list nothing in it
    authorized = root / "authorized"
    authorized.mkdir(mode=0o755)
    known_hosts = []
    lines = []
    hosts: dict[str, SshHost] = {}
    for name, (user, address) in HOSTS.items():
        host = SshHost(name=name, user=user, address=address, home=Path(pwd.getpwnam(user).pw_dir))
        host.port = _free_port(address)
        host_key = root / f"{name}_host_key"
        known_hosts.append(f"{name} {_keygen(host_key)}")
        (authorized / user).write_text(f"{client_public}\nenvironment=\"PATH={bare_bin}\" {bare_public}\n"
                                       f"environment=\"PATH={nobwrap_bin}\" {nobwrap_public}\n")
        host.config_file = root / f"sshd_{name}.conf"
        host.config_file.write_text("\n".join([
            f"ListenAddress {address}",
            f"Port {host.port}",
            f"HostKey {host_key}",
            f"PidFile {root / f'sshd_{name}.pid'}",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            f"AuthorizedKeysFile {authorized}/%u",
            f"AllowUsers {user}",
            "PermitUserEnvironment PATH",
            "StrictModes no",  # the keys sit under /tmp (world-writable), which strict modes refuse
            "LogLevel ERROR",
            "MaxStartups 100:30:200",
            "",
        ]))
        common = [f"  HostName {address}", f"  Port {host.port}", f"  User {user}", "  IdentitiesOnly yes",
                  f"  HostKeyAlias {name}", f"  UserKnownHostsFile {root / 'known_hosts'}",
                  "  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes", "  LogLevel ERROR"]
        lines += [f"Host {name}", f"  IdentityFile {root / 'client_key'}", *common, "",
                  f"Host {name}-notmux", f"  IdentityFile {root / 'bare_key'}", *common, "",
                  f"Host {name}-nobwrap", f"  IdentityFile {root / 'nobwrap_key'}", *common, ""]
        hosts[name] = host
    (root / "known_hosts").write_text("\n".join(known_hosts) + "\n")
    config = root / "ssh_config"
    config.write_text("\n".join(lines))
    box = SshHosts(root=root, config=config, hosts=hosts)
    try:
        for host in hosts.values():
            _start_sshd(host)
    except BaseException:
        box.stop()
        raise
    return box


@pytest.fixture(scope="session")
def ssh_hosts() -> Iterator[SshHosts]:
    """Two real sshd hosts for this worker (see the module's docstring); stopped at the end of the session.

    Their folder is not under pytest's (which only root may enter): sshd reads authorized keys as the user."""
    root = Path(tempfile.mkdtemp(prefix="sv-sshd-"))
    try:
        box = start(root)
        try:
            yield box
        finally:
            box.stop()
            box.clean()
    finally:
        shutil.rmtree(root, ignore_errors=True)
