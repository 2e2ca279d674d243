"""`supervisor hosts check`: what a host needs, looked at in one ssh round trip, each requirement with a hint.

A small POSIX sh script goes over the connection's stdin (a login shell of any kind starts `sh -s`, and the
script is not a quoted word that csh or fish would parse). It answers `ready`, echoes one line back (the round
trip over the open connection: the latency, without the handshake), then prints `key=value` lines: the host
user, python3, git, tmux, bubblewrap and whether it can make namespaces, the free space under `dir`, the load and
the cores, and where the agent CLI that supervisor.yaml names is (agent_cli.py: on that PATH, outside what an
agent's sandbox hides). The PATH is the one a non-interactive ssh command gets, as the engine's own connection
and every agent's pane there will.
"""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from supervisor.hosts import agent_cli, isolation, unsandboxed
from supervisor.hosts.ssh import SSH_FAILED, failure, ssh_argv
from supervisor.hostsconfig import CREDENTIALS_COPY

if TYPE_CHECKING:
    from supervisor.config import HostConfig

TIMEOUT: Final = 25.0  # seconds for the whole check: ssh's own connect timeout (10 s) and the script
MIN_PYTHON: Final = (3, 11)
MIN_GIT: Final = (2, 25)
MIN_TMUX: Final = (3, 2)
MIN_FREE: Final = 1024 ** 3  # bytes free under `dir` below which the check fails
SANDBOX_NOTE: Final = ("agents there run with isolation: none (unsandboxed, as the host user), and an agent "
                       "asked to run with isolation: sandbox there is refused")

# One compound command: the shell has read all of it before `read` takes the echoed line from the same stdin.
SCRIPT: Final = "{\n" + agent_cli.WHERE_SH + r"""d=$1
shift
case $d in "~") d=$HOME ;; "~/"*) d=$HOME/${d#"~/"} ;; esac
first() { v=$("$@" 2>&1) || v="FAILED: $v"; printf '%s\n' "${v%%
*}"; }
have() { command -v "$1" >/dev/null 2>&1; }
echo ready
read -r ping
echo "$ping"
printf 'user='; first id -un
echo "path=$PATH"
echo "dir=$d"
echo "dir_real=$(real "$d")"
echo "home_real=$(real "$HOME")"
i=0
for c in "$@"; do i=$((i + 1)); echo "cli_$i=$(where "$c")"; done  # before `set --` below
if have python3; then printf 'python='; first python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'
else echo python=; fi
if have git; then printf 'git='; first git --version; else echo git=; fi
if have tmux; then printf 'tmux='; first tmux -V; else echo tmux=; fi
if have bwrap; then
  echo "bwrap=$(command -v bwrap)"
  printf 'bwrap_run='
  # as agents' sandboxes start: as root, in a user namespace of its own (which the host may refuse)
  if [ "$(id -u)" = 0 ]; then set -- --unshare-user --uid 65534 --gid 65534; else set --; fi
  first bwrap "$@" --die-with-parent --unshare-pid --ro-bind / / --dev /dev --proc /proc -- "$(command -v sh)" -c :
else echo bwrap=; fi
p=$d
while [ ! -e "$p" ] && [ -n "$p" ]; do p=${p%/*}; done
[ -n "$p" ] || p=/
echo "existing=$p"
if [ -e "$d" ] && [ ! -d "$d" ]; then echo "dir_problem=not a folder"; fi
if [ ! -w "$p" ]; then echo "dir_problem=not writable by $(id -un 2>/dev/null): $p"; fi
df -Pk "$p" 2>/dev/null | { free=; while read -r a b c avail rest; do free=$avail; done; echo "free_kb=$free"; }
if have nproc; then printf 'cores='; first nproc; else echo "cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null)"; fi
if [ -r /proc/loadavg ]; then read -r l1 rest </proc/loadavg; echo "load1=$l1"; fi
echo end
}
"""
PING: Final = "ping-supervisor"


@dataclass(frozen=True)
class Requirement:
    name: str  # ssh, python, git, tmux, isolation, disk
    ok: bool
    detail: str
    hint: str | None = None


@dataclass(frozen=True)
class HostCheck:
    """What one check of a host found: its requirements (ssh first), and the figures `supervisor hosts` shows."""

    host: str
    requirements: list[Requirement]
    checked_at: float
    latency_ms: float | None = None  # one round trip over the open connection
    load1: float | None = None
    cores: int | None = None
    disk_free: int | None = None  # bytes free under `dir` (or its nearest existing parent)
    facts: dict[str, str] = field(default_factory=dict)  # what the script printed

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.requirements)

    @property
    def reachable(self) -> bool:
        return bool(self.requirements) and self.requirements[0].ok

    @property
    def error(self) -> str | None:
        """The first requirement that fails, in a line; None when none does."""
        bad = next((r for r in self.requirements if not r.ok), None)
        return None if bad is None else f"{bad.name}: {bad.detail}"


class _Reader:
    """The lines of a stream as they come, to wait for with a deadline."""

    def __init__(self, stream: Iterable[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True, name="host-check").start()

    def _read(self, stream: Iterable[str]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                self.lines.put(line)
        self.lines.put(None)

    def next(self, deadline: float) -> str | None:
        """The next line without its newline; None at the end of the stream or the deadline."""
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        if line is None:
            self.lines.put(None)  # the end stays the end
            return None
        self.seen.append(line)
        return line.rstrip("\n")


def check(host: HostConfig, timeout: float = TIMEOUT, isolation: str | None = None,
          commands: Sequence[str] = ()) -> HostCheck:
    """Check `host` in one ssh round trip; never raises for what the host or ssh does (it is all in the
    result), and never runs past `timeout` seconds. `isolation`: supervisor.yaml's (None: not set);
    `commands`: the agents' command lines whose CLI must be there (supervisor.yaml's `agent.command`)."""
    programs = [program for program in map(agent_cli.program_of, commands) if program is not None]
    started = time.time()
    deadline = time.monotonic() + timeout
    try:
        process = subprocess.Popen(ssh_argv(host, "sh", "-s", "--", host.dir, *programs), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        return HostCheck(host.name, [Requirement("ssh", False, f"cannot run ssh: {exc.strerror or exc}",
                                                 "install the OpenSSH client (apt-get install openssh-client)")],
                         started)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    out, err = _Reader(process.stdout), _Reader(process.stderr)
    ready = finished = False
    latency = None
    facts: dict[str, str] = {}
    try:
        process.stdin.write(SCRIPT)
        process.stdin.flush()
        while not ready and (line := out.next(deadline)) is not None:
            ready = line == "ready"  # what a login script printed before it is passed over
        if ready:
            sent = time.monotonic()
            process.stdin.write(PING + "\n")
            process.stdin.close()
            if out.next(deadline) == PING:
                latency = (time.monotonic() - sent) * 1000
            while not finished and (line := out.next(deadline)) is not None:
                finished = line == "end"
                key, _, value = line.partition("=")
                facts.setdefault(key, value)
    except OSError:
        pass  # ssh ended early (a broken pipe): what it said is read below
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()
    if not finished:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    try:
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    if code == SSH_FAILED and not finished:
        said = failure(_rest(err, time.monotonic() + 1), host)
        return HostCheck(host.name, [Requirement("ssh", False, said.line, said.hint)], started)
    if not ready:
        return HostCheck(host.name, [Requirement("ssh", False, f"no answer within {timeout:g} s",
                                                 "is the host up and reachable from here (network, VPN, "
                                                 "ProxyJump)?")], started)
    if not finished:
        return HostCheck(host.name, [_ssh_ok(host, facts, latency),
                                     Requirement("host", False, f"the check did not finish within {timeout:g} s",
                                                 "is the host very busy, or its disk hanging?")], started)
    return _judge(host, facts, latency, started, isolation, commands)


def _rest(reader: _Reader, deadline: float) -> str:
    """All the stream said, up to its end (or `deadline`)."""
    while reader.next(deadline) is not None:
        pass
    return "".join(reader.seen)


def _ssh_ok(host: HostConfig, facts: dict[str, str], latency: float | None) -> Requirement:
    who = facts.get("user") or "?"
    rtt = "" if latency is None else f", round trip {latency:.{1 if latency < 10 else 0}f} ms"
    return Requirement("ssh", True, f"logged in to {host.ssh} as {who} by key, host key known{rtt}")


def _version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _tool(name: str, text: str, least: tuple[int, int], install: str, path: str) -> Requirement:
    """A program found on the host's PATH at `least` this version (`text`: what it said of its version)."""
    need = ".".join(map(str, least))
    if not text:
        return Requirement(name, False, f"not found on the PATH an ssh command gets there ({path})",
                           f"install {install} >= {need} on the host (Debian/Ubuntu: apt-get install {install}); "
                           "it must be on that PATH")
    version = _version(text)
    if text.startswith("FAILED:") or version is None or version < least:
        return Requirement(name, False, f"{text} (needs >= {need})", f"install {install} >= {need} on the host")
    return Requirement(name, True, text)


def lacks(hello: Mapping[str, Any]) -> str | None:
    """What a host's hello (supervisor/hostside/facts.py) says it lacks to run agents, in one line worded as
    `hosts check` words it (`tmux: not found on the PATH ...`); None when it has python, git and tmux at their
    least versions."""
    path = str(hello.get("path") or "?")
    python, git, tmux = (str(hello.get(key) or "") for key in ("python", "git", "tmux"))
    for requirement in (_tool("python", python and f"Python {python}", MIN_PYTHON, "python3", path),
                        _tool("git", git and f"git version {git}", MIN_GIT, "git", path),
                        _tool("tmux", tmux and f"tmux {tmux}", MIN_TMUX, "tmux", path)):
        if not requirement.ok:
            return f"{requirement.name}: {requirement.detail}"
    return None


def _sandbox_problem(facts: dict[str, str]) -> str | None:
    """What keeps the host from making a sandbox, in words; None when it can."""
    if not facts.get("bwrap"):
        return "no bubblewrap"
    said = facts.get("bwrap_run", "")
    return f"bubblewrap cannot make namespaces there ({said[7:].strip()})" if said.startswith("FAILED:") else None


def _isolation(facts: dict[str, str], configured: str | None) -> Requirement:
    if configured == isolation.NONE:
        return Requirement("isolation", True, "none (supervisor.yaml): agents there run unsandboxed, as the host "
                           "user", None if _sandbox_problem(facts) else "the host can sandbox them: drop "
                           "`isolation: none`")
    if not facts.get("bwrap"):
        return Requirement("isolation", True, f"no bubblewrap: {SANDBOX_NOTE}",
                           "to sandbox them, install bubblewrap on the host (apt-get install bubblewrap)")
    said = facts.get("bwrap_run", "")
    if said.startswith("FAILED:"):
        return Requirement("isolation", True, f"bubblewrap cannot make namespaces there ({said[7:].strip()}): "
                           f"{SANDBOX_NOTE}", "allow unprivileged user namespaces on the host "
                           "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0)")
    return Requirement("isolation", True, f"sandbox (bubblewrap at {facts['bwrap']}): each agent there sees only "
                                          "its own work, as here")


def _clis(host: HostConfig, facts: dict[str, str], configured: str | None,
          commands: Sequence[str]) -> list[Requirement]:
    """Where each agent CLI of `commands` is on the host (`cli_N`, in the order of their programs), or why it
    cannot start there."""
    sandboxed = configured != isolation.NONE and _sandbox_problem(facts) is None
    found, index = [], 0
    for command in commands:
        program = agent_cli.program_of(command)
        if program is None:
            found.append(Requirement("cli", True, f"not looked for: `{command}` is a shell command line (its shell "
                                     "says at start whether it runs)"))
            continue
        index += 1
        found.append(_cli(host, program, facts.get(f"cli_{index}", ""), facts, sandboxed))
    return found


def _cli(host: HostConfig, program: str, where: str, facts: dict[str, str], sandboxed: bool) -> Requirement:
    fix = agent_cli.fix(host.name, host.dir)
    if not where:
        return Requirement("cli", False, f"{program}: not found on the PATH an ssh command gets there "
                           f"({facts.get('path', '?')}), which is the PATH of agents' panes", fix)
    hidden = agent_cli.hidden_by_sandbox(where, facts.get("dir_real") or facts.get("dir", ""),
                                         facts.get("home_real") or None)
    if hidden is None:
        return Requirement("cli", True, f"{program} at {where}")
    if sandboxed:
        return Requirement("cli", False, f"{program} at {where}, but {hidden}: it cannot start there", fix)
    return Requirement("cli", True, f"{program} at {where} ({hidden}: it could not start if they were "
                       "sandboxed)", fix)


def credentials(host: HostConfig) -> Requirement:
    """What of the user's CLI logins goes to the host (`hosts.NAME.credentials`): said, never a failure."""
    if host.credentials == CREDENTIALS_COPY:
        return Requirement("credentials", True, "copied: your CLIs' logins (.credentials.json, auth.json, "
                           "oauth_creds.json, .env) go into each agent's CLI folder there, where every agent on "
                           "the host can read them (.claude.json without your MCP servers and other projects)",
                           f"`credentials: host` under hosts.{host.name} keeps them here")
    return Requirement("credentials", True, "not copied: each agent's CLI logs in on the host itself (in its "
                       "pane, or by the CLI's API key variable in the host user's environment)",
                       f"`credentials: copy` under hosts.{host.name} copies your logins there")


def _disk(host: HostConfig, facts: dict[str, str]) -> tuple[Requirement, int | None]:
    where = facts.get("dir") or "?"
    if facts.get("dir_problem"):
        return Requirement("disk", False, f"{where}: {facts['dir_problem']}",
                           f"choose a folder the host user can write (hosts.{host.name}.dir)"), None
    kb = facts.get("free_kb", "")
    if not kb.isdigit():
        return Requirement("disk", False, f"free space under {where} unknown (df said nothing)",
                           "is df installed on the host?"), None
    free = int(kb) * 1024
    shown = f"{free / 1024 ** 3:.1f} GiB free under {where}"
    if free < MIN_FREE:
        return Requirement("disk", False, shown, "free some space there, or choose another `dir`"), free
    return Requirement("disk", True, shown), free


def _judge(host: HostConfig, facts: dict[str, str], latency: float | None, started: float,
           configured: str | None = None, commands: Sequence[str] = ()) -> HostCheck:
    path = facts.get("path", "")
    python = facts.get("python", "")
    requirements = [
        _ssh_ok(host, facts, latency),
        _tool("python", f"Python {python}" if python and not python.startswith("FAILED:") else python,
              MIN_PYTHON, "python3", path),
        _tool("git", facts.get("git", ""), MIN_GIT, "git", path),
        _tool("tmux", facts.get("tmux", ""), MIN_TMUX, "tmux", path),
        _isolation(facts, configured),
        *_clis(host, facts, configured, commands),
        credentials(host),
    ]
    if unsandboxed.why_unsandboxed(configured, _sandbox_problem(facts)) is not None:
        requirements += [Requirement(name, True, text)
                         for name, text in unsandboxed.statement(host, facts.get("user") or "the host user")]
    disk, free = _disk(host, facts)
    requirements.append(disk)
    load = facts.get("load1", "")
    cores = facts.get("cores", "")
    return HostCheck(host.name, requirements, started, latency_ms=latency,
                     load1=float(load) if re.fullmatch(r"\d+(\.\d+)?", load) else None,
                     cores=int(cores) if cores.isdigit() else None, disk_free=free, facts=facts)
