"""The one place that builds the ssh command line for a host, and a one-shot command on a host.

The OpenSSH client, so that the user's whole setup applies (`-F` config, Match, ProxyJump, IdentityAgent,
known_hosts; `~` from the password database). Always: `BatchMode=yes` (never a password or host-key prompt),
no ControlMaster (a stale master socket hangs, and ConnectTimeout does not cover it), a connect timeout and
keep-alives (a dead link is noticed within ~15 s). Host-key checks are never turned off. No forwarding of any
kind, whatever the user's config says (`ForwardAgent yes` there would hand every agent on the host the user's
keys): no agent, no X11, no port forwards, no local command.

ssh hands the remote side ONE string, which the host user's login shell parses: the remote words are joined
with `shlex.join`, so each arrives as the word it was.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from supervisor.errors import SupervisorError

if TYPE_CHECKING:
    from supervisor.config import HostConfig

SSH: Final = "ssh"
CONNECT_TIMEOUT: Final = 10  # seconds
OPTIONS: Final = ("-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
                  "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "ServerAliveInterval=5",
                  "-o", "ServerAliveCountMax=3", "-a", "-x", "-o", "ForwardAgent=no", "-o", "ForwardX11=no",
                  "-o", "ClearAllForwardings=yes", "-o", "PermitLocalCommand=no")
SSH_FAILED: Final = 255  # ssh's own exit status when it could not connect or lost the connection


def ssh_argv(host: HostConfig, *remote: str, tty: bool = False) -> list[str]:
    """`ssh … DESTINATION 'remote words'` for `host`; without `remote`, the user's login shell. `tty`: a
    terminal on the host (attach), else none (`-T`: the stdio carries data)."""
    argv = [SSH]
    if host.ssh_config is not None:
        argv += ["-F", str(host.ssh_config)]
    argv += ["-t" if tty else "-T", *OPTIONS, "--", host.ssh]
    if remote:
        argv.append(shlex.join(remote))
    return argv


class SshError(SupervisorError):
    """ssh did not get the command to the host (or back): the line ssh said, and what to do about it."""


@dataclass(frozen=True)
class Failure:
    line: str
    hint: str


def failure(stderr: str, host: HostConfig) -> Failure:
    """What ssh's stderr says went wrong, in one line, with a hint for the usual causes."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = next((line for line in reversed(lines) if "warning:" not in line.lower()), "") or "ssh failed"
    said = said.removeprefix("ssh: ")  # said where it is shown as ssh's
    text = stderr.lower()
    how = f"ssh {'-F ' + shlex.quote(str(host.ssh_config)) + ' ' if host.ssh_config else ''}{host.ssh}"
    if "host key verification failed" in text or "remote host identification has changed" in text:
        hint = (f"the host's key is not in your known_hosts, or changed: connect once with `{how}` and check "
                "the fingerprint (supervisor never turns host-key checks off)")
    elif "permission denied" in text or "too many authentication failures" in text:
        hint = (f"log in by key without a prompt: install your key on the host (ssh-copy-id) and load it into "
                f"ssh-agent; `{how} true` must work without asking anything")
    elif "could not resolve" in text or "name or service not known" in text:
        hint = f"the name {host.ssh!r} resolves to no address: check it, or the Host entry of your ssh config"
    elif "connection refused" in text:
        hint = "nothing listens there: is sshd running on the host, and the port right?"
    elif "timed out" in text or "no route to host" in text or "network is unreachable" in text:
        hint = "the host does not answer: is it up, and reachable from here (network, VPN, ProxyJump)?"
    else:
        hint = f"run `{how} true` to see what ssh says"
    return Failure(said, hint)


def run_on(host: HostConfig, words: Sequence[str], timeout: float, input: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    """Run `words` on `host` once and wait (at most `timeout` seconds) for its end; its exit status, stdout and
    stderr as they came. SshError when ssh could not run it there (the line ssh said, with a hint) or the
    deadline passed. A remote command that itself exits 255 reads as an ssh failure: none of ours does."""
    argv = ssh_argv(host, *words)
    try:
        done = subprocess.run(argv, input=input or "", capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise SshError(f"{host.name}: no answer over ssh within {timeout:g} s",
                       hint="is the host up and reachable, and not too busy?") from None
    except OSError as exc:
        raise SshError(f"{host.name}: cannot run ssh: {exc.strerror or exc}",
                       hint="install the OpenSSH client (Debian/Ubuntu: apt-get install openssh-client)") from None
    if done.returncode == SSH_FAILED:
        found = failure(done.stderr, host)
        raise SshError(f"{host.name}: {found.line}", hint=found.hint)
    return done
