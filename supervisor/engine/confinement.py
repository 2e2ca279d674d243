"""Keeping each agent's processes its own, so that `stop` ends all of them.

Every agent starts as a child subreaper (supervisor/engine/subreaper.py): whatever it double-forks or moves to
a session of its own stays in its pane's tree, which `stop` freezes and kills. Where the machine gives the
engine a writable cgroup v2 folder (a delegated one, or root with a writable v2 mount), each agent also runs
in a cgroup of its own, `stop` kills that cgroup as one (`cgroup.kill`), and it catches what outlived the
agent's own first process too. With the sandbox, the agent's PID namespace dies with it as well.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from supervisor.core.model import Agent
from supervisor.engine import subreaper
from supervisor.paths import RepoPaths, agent_file_name

CGROUP = "cgroup"  # agent.extra: the cgroup folder its current run was started in


def confined(paths: RepoPaths, agent: Agent, command: str) -> str:
    """The command line that starts the agent's `command` as a child subreaper, in a cgroup of its own where
    the machine allows (recorded in `agent.extra` for `stop`)."""
    group = _agent_cgroup(paths, agent)
    if group is None:
        agent.extra.pop(CGROUP, None)
    else:
        agent.extra[CGROUP] = str(group)
    return subreaper.command_line(command, str(group) if group is not None else None)


def check_joined(agent: Agent, pid: int, timeout: float = 2.0) -> str | None:
    """None when the agent's first process `pid` got into the cgroup `confined` made for it (or none was made);
    else why not, and the agent is taken as in no cgroup from then on (`stop` walks its tree): a machine can
    let the engine make a cgroup and still refuse a process in it (a threaded parent, a controller's rules).

    Waits until the first process has run the prefix (a few milliseconds of Python start)."""
    recorded = agent.extra.get(CGROUP)
    if not isinstance(recorded, str):
        return None
    group = Path(recorded)
    wanted = _cgroup_path(group)
    prefix = os.path.abspath(subreaper.__file__).encode()
    deadline = time.monotonic() + timeout
    began = False  # the prefix seen running: until then `pid` may still be tmux's child before its exec
    while True:
        try:
            in_prefix = prefix in Path(f"/proc/{pid}/cmdline").read_bytes()
            now_in = _cgroup_of(pid)
        except OSError:
            return None  # ended already: nothing of it left to keep together
        if now_in == wanted and wanted is not None:
            return None
        began = began or in_prefix
        if (began and not in_prefix) or time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    agent.extra.pop(CGROUP, None)
    with contextlib.suppress(OSError):
        group.rmdir()
    return (f"its first process could not join its cgroup {group} (it is in {now_in or 'none'}): "
            f"stop ends it by its process tree alone")


def trial_join(group: Path) -> str | None:
    """Try a short-lived process in `group` (made for the trial, removed after): None when it could join, else
    the system's reason."""
    code = ("import sys\ntry:\n    with open(sys.argv[1], 'w') as procs:\n        procs.write('0')\n"
            "except OSError as exc:\n    print(exc.strerror or exc)\n")
    try:
        group.mkdir(exist_ok=True)
        done = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(group / "cgroup.procs")],
                              capture_output=True, text=True, timeout=10, check=False)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        with contextlib.suppress(OSError):
            group.rmdir()


def end_confined(agent: Agent, timeout: float = 5.0) -> list[int]:
    """Kill every process left in the agent's cgroup (none: nothing to do) and remove the cgroup; the pids that
    survived."""
    recorded = agent.extra.get(CGROUP)
    if not isinstance(recorded, str) or not Path(recorded, "cgroup.procs").exists():
        return []
    group = Path(recorded)
    if not _write(group / "cgroup.kill", "1"):  # a kernel before 5.14: freeze, then kill each process
        _write(group / "cgroup.freeze", "1")
        for pid in _members(group):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while (left := _members(group)) and time.monotonic() < deadline:
        time.sleep(0.02)
    if not left:
        with contextlib.suppress(OSError):
            group.rmdir()
    return left


def cgroup_offer(paths: RepoPaths | None = None) -> str:
    """What this machine offers for keeping an agent's processes together (one line, for `doctor`): with
    `paths`, a process is tried in a cgroup where the repository's agents' go."""
    base, why = cgroup_base()
    if base is None:
        return f"each agent a child subreaper; no cgroup of its own ({why})"
    if paths is not None:
        repository = repository_cgroup(base, paths)
        refused = "cannot make it" if not _made(repository) else trial_join(repository / "_doctor")
        if refused:
            return (f"each agent a child subreaper; no cgroup of its own: a process cannot join one under "
                    f"{repository} ({refused}), so stop walks each agent's process tree")
    kill = "cgroup.kill" if (base / "cgroup.kill").exists() or _kernel_has_kill(base) else "freeze and kill"
    return f"each agent a child subreaper, in a cgroup of its own under {base} (stopped by {kill})"


@functools.cache
def cgroup_base() -> tuple[Path | None, str]:
    """The writable cgroup v2 folder agents' cgroups go under (this process's own cgroup), or None and why."""
    mounts = _cgroup2_mounts()
    if not mounts:
        return None, "no cgroup v2 mounted"
    own = _own_cgroup()
    if own is None:
        return None, "this process is in no cgroup v2"
    for mount, root in mounts:
        relative = os.path.relpath(own, root)
        if relative.startswith(".."):
            continue
        folder = Path(os.path.normpath(mount / relative))
        if (folder / "cgroup.procs").exists() and os.access(folder, os.W_OK):
            return folder, "writable"
        return None, f"cgroup v2 folder {folder} not writable"
    return None, "this process's cgroup is not under a cgroup v2 mount"


def _agent_cgroup(paths: RepoPaths, agent: Agent) -> Path | None:
    base, _why = cgroup_base()
    if base is None:
        return None
    group = repository_cgroup(base, paths) / agent_file_name(agent.name)
    sweep(base)
    try:
        group.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return group if (group / "cgroup.procs").exists() else None


def repository_cgroup(base: Path, paths: RepoPaths) -> Path:
    """The folder the repository's agents' cgroups go in."""
    digest = hashlib.sha256(str(paths.state_dir).encode()).hexdigest()[:10]
    return base / f"supervisor.{digest}"


def _made(folder: Path) -> bool:
    with contextlib.suppress(OSError):
        folder.mkdir(exist_ok=True)
    return (folder / "cgroup.procs").exists()


def cgroup_name(group: Path) -> str | None:
    """`group` (a folder) as /proc/PID/cgroup names it."""
    return _cgroup_path(group)


def cgroup_of(pid: int) -> str | None:
    """The cgroup v2 path of process `pid` (raises OSError once it is gone)."""
    return _cgroup_of(pid)


def _cgroup_path(group: Path) -> str | None:
    """`group` (a folder) as /proc/PID/cgroup names it."""
    for mount, root in _cgroup2_mounts():
        relative = os.path.relpath(group, mount)
        if not relative.startswith(".."):
            return os.path.normpath(os.path.join(root, relative))
    return None


def _cgroup_of(pid: int) -> str | None:
    """The cgroup v2 path of process `pid` (raises OSError once it is gone)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def sweep(base: Path, older_than: float = 60.0) -> None:
    """Remove the empty agent cgroups (and repository folders) left under `base` by agents that ended without
    a stop, or by repositories gone since; the kernel refuses to remove one that holds a process. One made in
    the last `older_than` seconds is left alone: its agent may be starting."""
    now = time.time()
    with contextlib.suppress(OSError):
        for repository in base.glob("supervisor.*"):
            with contextlib.suppress(OSError):
                for group in repository.iterdir():
                    if group.is_dir() and now - group.stat().st_mtime > older_than:
                        with contextlib.suppress(OSError):
                            group.rmdir()
                if now - repository.stat().st_mtime > older_than:
                    repository.rmdir()


def _members(group: Path) -> list[int]:
    """The processes in `group` and the cgroups below it."""
    found: list[int] = []
    for folder, _dirs, _files in os.walk(group):
        with contextlib.suppress(OSError, ValueError):
            found += [int(line) for line in Path(folder, "cgroup.procs").read_text().split()]
    return found


def _write(path: Path, text: str) -> bool:
    try:
        path.write_text(text)
        return True
    except OSError:
        return False


def _kernel_has_kill(base: Path) -> bool:
    return any((child / "cgroup.kill").exists() for child in base.iterdir() if child.is_dir())


def _cgroup2_mounts() -> list[tuple[Path, str]]:
    """(mount point, root inside the hierarchy) of each cgroup v2 mount this process sees."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            before, _, after = line.partition(" - ")
            if after.split(" ", 1)[0] == "cgroup2":
                fields = before.split()
                found.append((Path(_unescape(fields[4])), _unescape(fields[3])))
    return found


def _own_cgroup() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    return None


def _unescape(text: str) -> str:
    """A mountinfo field (space, tab, newline and backslash written in octal)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text
