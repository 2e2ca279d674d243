"""Where a repository's supervisor files live.

Durable state (SQLite store, transcripts, engine log) sits in the git common dir, so it is per repository,
shared by all its worktrees and never committed. The two Unix sockets (the engine's control socket and the
dedicated tmux server's) sit in a short private runtime directory instead, because a socket path is limited
to about 100 bytes and a repository can live anywhere.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from supervisor.core.model import validate_name
from supervisor.errors import SupervisorError, UsageError

# Bound read-only over the hidden state directory in every agent's sandbox (supervisor/hostside/sandbox.py).
from supervisor.hostside.sandbox import SANDBOX_MARK


@dataclass(frozen=True)
class RepoPaths:
    root: Path  # the main worktree of the repository
    common_dir: Path  # the git common dir (.git of the main worktree)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def state_dir(self) -> Path:
        return self.common_dir / "supervisor"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def engine_log(self) -> Path:
        return self.state_dir / "engine.log"

    @property
    def engine_output(self) -> Path:
        """What the detached engine prints outside its log (stdout and stderr: a crash before logging starts)."""
        return self.state_dir / "engine.out"

    @property
    def config_refused(self) -> Path:
        """Holds the error while the engine refuses the current supervisor.yaml (gone once it applies)."""
        return self.state_dir / "config-refused"

    @property
    def engine_failed(self) -> Path:
        """Why the last engine start failed (JSON: error, hint), for the command that started it."""
        return self.state_dir / "engine-failed"

    @property
    def engine_starting(self) -> Path:
        """What the engine holding the lock is doing before it answers (a line, rewritten as it goes), for the
        command that waits for it."""
        return self.state_dir / "engine-starting"

    @property
    def store_notice(self) -> Path:
        """What the engine found wrong in the store at its start (records set aside, agents rebuilt), one
        line each, shown by `ls`, `engine status` and `doctor` until an engine starts on a sound store."""
        return self.state_dir / "store-notice"

    @property
    def tmux_conf(self) -> Path:
        return self.state_dir / "tmux.conf"

    @property
    def config_file(self) -> Path:
        return self.root / "supervisor.yaml"

    @property
    def runtime_dir(self) -> Path:
        digest = hashlib.sha256(str(self.common_dir).encode()).hexdigest()[:16]
        return runtime_base() / digest

    @property
    def engine_socket(self) -> Path:
        return self.runtime_dir / "engine.sock"

    @property
    def tmux_socket(self) -> Path:
        return self.runtime_dir / "tmux.sock"

    @property
    def engine_lock(self) -> Path:
        return self.runtime_dir / "engine.lock"

    def agent_runtime(self, agent: str) -> Path:
        """The agent's own runtime folder: its socket to the engine (which is its identity), and what it
        leaves for an engine that is down. A sandbox binds this folder (not the socket: an engine started
        again makes the socket anew) and none of the rest of the runtime directory."""
        return self.runtime_dir / "agents" / agent_file_name(agent)

    def agent_socket(self, agent: str) -> Path:
        """The agent's own socket to the engine: a connection through it is that agent."""
        return self.agent_runtime(agent) / "engine.sock"

    def agent_spool(self, agent: str) -> Path:
        """Where the agent's hook keeps events while the engine does not take them; read as the agent's."""
        return self.agent_runtime(agent) / "spool"

    def agent_contract(self, agent: str) -> Path:
        """The agent's contract as the engine keeps it, for its pre-commit guard: read-only inside its sandbox."""
        return self.agent_runtime(agent) / "contract.json"

    @property
    def contract_key(self) -> Path:
        """The engine's key for the digests of stored contracts: in the state directory (hidden from sandboxed
        agents, and kept across reboots, unlike the runtime directory)."""
        return self.state_dir / "contract.key"

    def agent_state(self, agent: str) -> Path:
        """The agent's own folder for its CLI's state (config, sessions, credentials it may use)."""
        return self.state_dir / "agents" / agent_file_name(agent)

    def transcript(self, agent: str) -> Path:
        return _transcript(self.common_dir, agent)

    @property
    def objects_dir(self) -> Path:
        """The sandboxed agents' own object folders (supervisor/git/object_folders.py)."""
        return self.state_dir / "objects"

    def agent_objects(self, agent: str) -> Path:
        """Where the agent's git writes the objects it makes: its sandbox shows this folder as the repository's
        `objects/`, the shared store being read-only to it."""
        return self.objects_dir / agent_file_name(agent)

    @property
    def shared_objects_view(self) -> Path:
        """Where a sandbox shows the shared object store, read-only (an empty folder out here)."""
        return self.state_dir / "shared-objects"

    @property
    def sandbox_mark(self) -> Path:
        """Present only inside an agent's sandbox, which binds it read-only over the hidden state directory."""
        return self.state_dir / SANDBOX_MARK

    def ensure_dirs(self) -> None:
        """Create the state and runtime directories, private to the user; the state directory must take
        writes (an engine starts only where its store can be written: it says so in one line otherwise).
        Never inside an agent's sandbox: an engine there would see none of the store, tmux server or agents."""
        if self.sandbox_mark.exists():
            raise SupervisorError("the engine cannot be reached from inside an agent's sandbox, and it does not "
                                  "start there",
                                  hint="it starts with the next supervisor command run outside the agents")
        try:
            for directory in (self.state_dir, self.logs_dir):
                directory.mkdir(parents=True, exist_ok=True)
                directory.chmod(0o700)
            _probe_write(self.state_dir)
        except OSError as exc:
            raise SupervisorError(
                f"cannot write {exc.filename or self.state_dir}: {exc.strerror or exc}",
                hint="the engine keeps its store there: free some space or make it writable, then try again",
            ) from None
        ensure_private_dir(self.runtime_dir)


def _probe_write(directory: Path) -> None:
    """Write a page to a scratch file in `directory` (a full disk or a read-only folder refuses it)."""
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
    except OSError as exc:
        exc.filename = str(directory)
        raise
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def agents_objects_dir(common_dir: Path) -> Path:
    """The folder of the sandboxed agents' own object folders, in the repository whose git common dir is
    `common_dir`."""
    return RepoPaths(root=common_dir, common_dir=common_dir).objects_dir


@functools.lru_cache(maxsize=4096)
def _transcript(common_dir: Path, agent: str) -> Path:
    # Cached: the watcher asks for every agent's transcript every tick.
    return RepoPaths(root=common_dir, common_dir=common_dir).logs_dir / f"{agent_file_name(agent)}.log"


def agent_file_name(name: str) -> str:
    """`name` as part of a path, once checked to be an agent's name: "../../x" or "/etc/x" would lead out of
    the folder it is meant for (UsageError "invalid agent name")."""
    return validate_name(name)


def runtime_base() -> Path:
    override = os.environ.get("SUPERVISOR_RUNTIME_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "supervisor"
    return Path("/tmp") / f"supervisor-{os.getuid()}"


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and a private parent) as 0700, refusing one that another user owns."""
    for directory in (path.parent, path):
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise SupervisorError(
                f"{directory} is not a directory owned by you; refusing to put the control socket there",
                hint="remove it, or set SUPERVISOR_RUNTIME_DIR to a private directory",
            )
        if stat.S_IMODE(info.st_mode) & 0o077:
            directory.chmod(0o700)


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise SupervisorError("git is not installed", hint="install git >= 2.25") from exc
    if done.returncode != 0:
        raise UsageError(
            f"not inside a git repository: {cwd}",
            hint="run supervisor from the repository root or one of its worktrees",
        )
    return done.stdout.strip()


def find_repo(start: Path | None = None) -> RepoPaths:
    """The repository that `start` (default: the current directory) belongs to, from any of its worktrees."""
    cwd = (start or Path.cwd()).resolve()
    common = Path(_git(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir")).resolve()
    # A bare repository or unusual layout: the worktree containing cwd is the best root we have.
    root = common.parent if common.name == ".git" else Path(_git(cwd, "rev-parse", "--show-toplevel")).resolve()
    return RepoPaths(root=root, common_dir=common)
