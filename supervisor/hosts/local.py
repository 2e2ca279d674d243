"""This machine as a host: agents in panes of the engine's tmux server, each in its sandbox (or not, with
`isolation: none`)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import supervisor
from supervisor.agents import PROFILES, get_profile
from supervisor.agents.base import hook_command
from supervisor.agents.reader import LOCAL as LOCAL_READER
from supervisor.agents.reader import Reader
from supervisor.config import Config
from supervisor.core.model import Agent
from supervisor.engine.confinement import CGROUP, check_joined, confined, end_confined
from supervisor.engine.helpers import MESSAGES_DIR, STATUS_FILE, SUB_AGENTS, status_text
from supervisor.engine.panes import Panes
from supervisor.engine.processes import kill_tree
from supervisor.errors import SupervisorError
from supervisor.files import inside, write_in_place
from supervisor.git import object_folders, taking_in, worktrees
from supervisor.git.guard import install_guard
from supervisor.git.refs import ref_folder
from supervisor.git.worktrees import GIT_DIR_KEY, GitError, admin_dir, write_contract
from supervisor.hosts import commands, isolation, sandbox, sandbox_trial
from supervisor.hosts.base import CannotIsolate, Launched, Typing
from supervisor.hosts.commands import Ran
from supervisor.hostside import sandbox_prep
from supervisor.paths import RepoPaths, runtime_base
from supervisor.tmux.panes import LOCAL, PaneRef
from supervisor.tmux.server import PaneInfo, Tmux

ISOLATION_KEY = isolation.KEY  # in an agent's record: its own setting (start --isolation, a plan's session)
SHELL = "/bin/sh"


class LocalHost:
    name = LOCAL

    def __init__(self, paths: RepoPaths, tmux: Tmux, panes: Panes, settings: Callable[[], Config]) -> None:
        self.paths = paths
        self.tmux = tmux
        self.panes = panes
        self.settings = settings  # supervisor.yaml as the engine applies it now

    def isolation_of(self, agent: Agent) -> str:
        own = agent.extra.get(ISOLATION_KEY)
        return isolation.in_force(own if own in isolation.CHOICES else self.settings().isolation)

    # its worktree --------------------------------------------------------------------------------------

    def make_worktree(self, agent: Agent, base: str, within: str | None) -> str:
        worktree = Path(agent.worktree)
        if within is not None:  # a helper's, in its parent's `.sub-agents/`: not through a link the parent planted
            inside(Path(within), worktree)
        worktrees.ensure_excludes(self.paths.common_dir)
        taking_in.take_in_branches(self.paths.root, [agent.target])  # a helper's base: its parent's own objects
        worktrees.add_worktree(self.paths.root, worktree, agent.branch, base)
        return worktrees.git_dir_at_creation(worktree)

    def worktree_exists(self, agent: Agent) -> bool:
        return Path(agent.worktree).is_dir()

    def cli_files(self, agent: Agent) -> tuple[str, Reader]:
        return str(self.paths.agent_state(agent.name)), LOCAL_READER

    def write_session(self, agent: Agent, contract: str) -> None:
        worktree = Path(agent.worktree)
        write_contract(worktree, contract)
        install_guard(self.paths.common_dir, worktree, self.paths.state_dir / "hooks")

    def remove_worktree(self, agent: Agent) -> None:
        if agent.parent is None:
            self.tmux.kill_session(agent.name)
        elif (own := self.panes.own(agent)) is not None:
            self.tmux.kill_pane(own.pane)
        worktrees.remove_worktree(self.paths.root, Path(agent.worktree), agent.branch)
        object_folders.remove(self.paths.agent_objects(agent.name))  # its branch is gone: none of main's are there

    def remove_state(self, agent: Agent) -> None:
        shutil.rmtree(self.paths.agent_state(agent.name), ignore_errors=True)

    # its pane ------------------------------------------------------------------------------------------

    def prepare_launch(self, agent: Agent) -> str:
        get_profile(agent.profile).prepare_worktree(self.paths.root, Path(agent.worktree), Path.home(),
                                                    hook_command())
        self.tmux.ensure_server()
        state = self.paths.agent_state(agent.name)
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(state)

    def hook_command(self, agent: Agent) -> str:
        return hook_command()

    def missing_program(self, agent: Agent, command: str) -> str | None:
        return missing_program(command, Path(agent.worktree))

    def own_pane(self, agent: Agent) -> PaneInfo | None:
        return self.panes.own(agent)

    def launch(self, agent: Agent, command: str, env: Mapping[str, str], into: PaneInfo | None) -> Launched:
        line, env = self.wrap(agent, command, env)
        got = self.isolation_of(agent)
        if into is not None:
            pid = self.tmux.respawn(into.pane, into.server, Path(agent.worktree), line, env)
            return Launched(PaneRef.of(into), pid, into.history, got, check_joined(agent, pid))
        ref, pid = self.panes.open(agent, line, dict(env), self.tmux.list_panes())
        return Launched(ref, pid, 0, got, check_joined(agent, pid))

    def capture(self, agent: Agent, *, history: int = 0, ansi: bool = False) -> str | None:
        return self.panes.capture(agent, history=history, ansi=ansi)

    def send_keys(self, agent: Agent, *keys: str) -> bool:
        return self.panes.send_keys(agent, *keys)

    def type_text(self, agent: Agent, pane: PaneInfo, text: str, typing: Typing) -> None:
        typing.into(self.tmux, pane.pane, text)

    def attach_info(self, agent: Agent) -> dict[str, str] | None:
        info = self.panes.own(agent)
        if info is None:
            return None
        return {"pane": info.pane, "session": info.session, "socket": str(self.paths.tmux_socket)}

    def wrap(self, agent: Agent, command: str, env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """The command line and environment that run `command` isolated as the agent's settings say."""
        if self.isolation_of(agent) == isolation.NONE:
            # its orphans stay in its tree (a cgroup of its own where the machine allows), for `stop` to find
            return confined(self.paths, agent, command), dict(env)
        agent.extra.pop(CGROUP, None)  # its PID namespace holds every process it starts, and dies as one
        spec, bwrap = self._made(agent, env)
        if not sandbox_trial.passed(bwrap):  # said here, where the user looks, not as a pane that "exited 1"
            self._refuse(sandbox_trial.run(spec, bwrap))
        line = shlex.join(sandbox.argv(spec, [SHELL, "-c", command], bwrap))
        return line, {**env, "HOME": str(spec.home)}

    def sandbox_fault(self, agent: Agent, env: Mapping[str, str]) -> CannotIsolate | None:
        """Why the agent's sandbox cannot be made, tried now (its pane ended while starting, with the trial skipped
        as passed before); None when it can, or when it runs unsandboxed."""
        if self.isolation_of(agent) == isolation.NONE:
            return None
        try:
            spec, bwrap = self._made(agent, env)
            self._refuse(sandbox_trial.run(spec, bwrap))
        except CannotIsolate as exc:
            return exc
        return None

    @staticmethod
    def _refuse(said: str | None) -> None:
        if said is not None:
            raise CannotIsolate(f"its sandbox cannot be made ({said})",
                                hint="a folder it binds or hides may be gone or odd (`supervisor doctor`); "
                                     "or set `isolation: none`")

    def _made(self, agent: Agent, env: Mapping[str, str], worktree: Path | None = None) -> tuple[sandbox.Spec, str]:
        """The agent's sandbox (see `spec`) with what it binds made, and bubblewrap's path; CannotIsolate when
        either cannot be had."""
        found = isolation.sandboxing()
        if found.bwrap is None:
            raise CannotIsolate(f"isolation: sandbox, but {found.problem}", hint=found.hint)
        spec = self.spec(agent, env, worktree=worktree)
        try:
            prepare(spec)
        except OSError as exc:  # a read-only or full runtime or state folder: the agent fails saying so
            raise CannotIsolate(f"its sandbox cannot be made ({exc.strerror or exc}: {exc.filename})",
                                hint="free or make writable the folder named; or set `isolation: none`") from None
        return spec, found.bwrap

    def run_isolated(self, agent: Agent, command: str, cwd: str, env: Mapping[str, str], *,
                     timeout: float | None = None, stop: threading.Event | None = None, keep: int = 20) -> Ran:
        """Run `command` (a shell command line: the agent's own code, a `worktrees.setup` or `merge.check`) in
        `cwd` (its worktree, or a scratch worktree of its work) isolated as the agent is: in a sandbox built like
        its own, `cwd` read-write and no pane, no socket to the engine (`isolation: none`: as any process of the
        user's). CannotIsolate when the sandbox cannot be made: never run less isolated than asked."""
        folder = Path(cwd)
        if self.isolation_of(agent) == isolation.NONE:
            return commands.run([SHELL, "-c", command], folder, env, timeout=timeout, stop=stop, keep=keep)
        spec, bwrap = self._made(agent, env, worktree=folder)
        return commands.run(sandbox.argv(spec, [SHELL, "-c", command], bwrap), folder,
                            {**env, "HOME": str(spec.home)}, timeout=timeout, stop=stop, keep=keep)

    def spec(self, agent: Agent, env: Mapping[str, str], worktree: Path | None = None) -> sandbox.Spec:
        """The agent's sandbox; with `worktree`, the one a command the engine runs for it gets: that folder (the
        agent's own worktree, or a scratch one of its work) read-write, and none of its runtime folder."""
        paths = self.paths
        config = self.settings()
        own = Path(agent.worktree)
        folder = own if worktree is None else worktree
        try:  # the one folder of the shared .git it may write: never from its own `.git` file (`gitdir: /`)
            git_dir = admin_dir(paths.common_dir, folder, agent.extra.get(GIT_DIR_KEY) if folder == own else None)
        except GitError as exc:
            raise CannotIsolate(exc.message, hint=exc.hint) from None
        own_state = paths.agent_state(agent.name)
        profile = PROFILES.get(agent.profile) or PROFILES["generic"]
        helpers = self._helpers_folder(agent) if folder == own else None
        search = (env.get("PATH") or (self.tmux.env or {}).get("PATH") or os.environ.get("PATH", "")).split(os.pathsep)
        readable = [Path(sys.prefix), Path(supervisor.__file__).parent,
                    *(Path(p) for p in search if os.path.isabs(p) and os.path.isdir(p))]
        return sandbox.Spec(
            worktree=folder,
            common_dir=paths.common_dir,
            worktree_git_dir=git_dir,
            # agent/NAME/work: the agent's own folder (branches named before those folders share theirs)
            ref_folder=paths.common_dir / ref_folder(agent.branch),
            objects=paths.agent_objects(agent.name),
            shared_objects=paths.shared_objects_view,
            state_dir=paths.state_dir,
            own_state=own_state,
            guard_hooks=paths.state_dir / "hooks",
            runtime_dirs=runtime_folders(),
            own_runtime=paths.agent_runtime(agent.name),
            own_spool=paths.agent_spool(agent.name),
            root_worktree=paths.root,
            worktrees_dir=config.worktrees.dir,
            home=own_state / "home",
            real_home=Path.home(),
            network=config.sandbox.network,
            readable=sandbox.unique(readable),
            helpers=helpers,
            helpers_status=STATUS_FILE,
            helpers_messages=MESSAGES_DIR,
            extra_read=config.sandbox.read,
            extra_write=config.sandbox.write,
            home_read=profile.home_read,
            home_seed=profile.home_seed,
            runtime=worktree is None,
        )

    @staticmethod
    def _helpers_folder(agent: Agent) -> Path:
        """The agent's `.sub-agents/` with what its sandbox gives back of it (its helpers' status, messages),
        made now: a bind needs them to exist, and helpers made later appear in the hidden folder only."""
        worktree = Path(agent.worktree)
        helpers = worktree / SUB_AGENTS
        try:
            inside(worktree, helpers / MESSAGES_DIR).mkdir(parents=True, exist_ok=True)
            status = inside(worktree, helpers / STATUS_FILE)
            if not status.exists():
                write_in_place(status, status_text(agent, []))
        except SupervisorError as exc:
            raise CannotIsolate(exc.message, hint=exc.hint) from None
        return helpers

    def end(self, agent: Agent, pane: PaneInfo | None, grace: float, since: float) -> list[int]:
        root = pane.pid if pane is not None and not pane.dead else None
        # and anything that escaped it still carrying its own socket (unique to this repository's agent of that name);
        # never the engine itself and what it runs (were it started inside the agent's tree after all)
        return kill_tree(root, grace, env_key="SUPERVISOR_SOCKET", env_value=str(self.paths.agent_socket(agent.name)),
                         since=since, spare={*self.tmux.keepers(self.tmux.list_panes()), os.getpid()})

    def end_state_holders(self, agent: Agent, grace: float) -> list[int]:
        left = end_confined(agent)
        variable = get_profile(agent.profile).state_env
        if variable is None:
            return left
        return left + kill_tree(None, grace, env_key=variable, env_value=str(self.paths.agent_state(agent.name)),
                                spare=self.tmux.keepers(self.tmux.list_panes()))


def missing_program(command: str, cwd: Path) -> str | None:
    """The program of a simple command line when it cannot be found; None when found or not simple."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words or any(ch in command for ch in ";|&$`()<>") or "=" in words[0]:
        return None  # shell syntax: let the shell decide, and read its verdict from the exit status
    program = words[0]
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else cwd / program
        return None if os.access(path, os.X_OK) else program
    return None if shutil.which(program) else program


def prepare(spec: sandbox.Spec) -> None:
    """Make what the sandbox binds (supervisor/hostside/sandbox_prep.py), and its object folder naming the shared
    store (as the sandbox shows it) as its alternate."""
    sandbox_prep.prepare(spec)
    if spec.objects is not None and spec.shared_objects is not None:
        object_folders.prepare(spec.objects, spec.shared_objects, spec.common_dir / "objects")


def runtime_folders() -> tuple[Path, ...]:
    """Every folder of this user's where sockets live, hidden in a sandbox: every repository's runtime folder,
    the XDG runtime folder (the user's bus, gpg and ssh agents, podman), tmux's own, `/run/user/UID`."""
    return sandbox.unique([runtime_base(), *sandbox.user_runtime_folders()])


__all__ = ["ISOLATION_KEY", "CannotIsolate", "LocalHost", "missing_program", "runtime_folders"]
