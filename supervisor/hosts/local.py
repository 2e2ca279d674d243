"""This machine as a host: agents in panes of the engine's tmux server, each in its sandbox (or not, with
`isolation: none`)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import supervisor
from supervisor.config import Config
from supervisor.core.model import Agent
from supervisor.engine.confinement import CGROUP, check_joined, confined
from supervisor.engine.panes import Panes
from supervisor.engine.processes import kill_tree
from supervisor.git.refs import ref_folder, worktree_git_dir
from supervisor.hosts import isolation, sandbox
from supervisor.hosts.base import CannotIsolate, Launched
from supervisor.paths import RepoPaths
from supervisor.tmux.panes import LOCAL, PaneRef
from supervisor.tmux.server import PaneInfo, Tmux

ISOLATION_KEY = "isolation"  # in an agent's record: its own setting (a plan's session), over supervisor.yaml's
SUB_AGENTS = ".sub-agents"
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

    def launch(self, agent: Agent, command: str, env: Mapping[str, str], into: PaneInfo | None,
               panes: Mapping[str, PaneInfo]) -> Launched:
        line, env = self.wrap(agent, command, env)
        if into is not None:
            pid = self.tmux.respawn(into.pane, into.server, Path(agent.worktree), line, env)
            return Launched(PaneRef.of(into), pid, into.history, check_joined(agent, pid))
        ref, pid = self.panes.open(agent, line, dict(env), panes)
        return Launched(ref, pid, 0, check_joined(agent, pid))

    def wrap(self, agent: Agent, command: str, env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """The command line and environment that run `command` isolated as the agent's settings say."""
        if self.isolation_of(agent) == isolation.NONE:
            # its orphans stay in its tree (a cgroup of its own where the machine allows), for `stop` to find
            return confined(self.paths, agent, command), dict(env)
        agent.extra.pop(CGROUP, None)  # its PID namespace holds every process it starts, and dies as one
        found = isolation.sandboxing()
        if found.bwrap is None:
            raise CannotIsolate(f"isolation: sandbox, but {found.problem}", hint=found.hint)
        spec = self.spec(agent, env)
        for folder in sandbox.folders_to_create(spec):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = shlex.join(sandbox.argv(spec, [SHELL, "-c", command], found.bwrap))
        return line, {**env, "HOME": str(spec.home)}

    def spec(self, agent: Agent, env: Mapping[str, str]) -> sandbox.Spec:
        paths = self.paths
        config = self.settings()
        worktree = Path(agent.worktree)
        git_dir = worktree_git_dir(worktree)
        own_state = paths.agent_state(agent.name)
        helpers = worktree / SUB_AGENTS
        hidden = tuple(sorted(p for p in helpers.iterdir() if p.is_dir() and (p / ".git").exists())) \
            if helpers.is_dir() else ()
        search = (env.get("PATH") or (self.tmux.env or {}).get("PATH") or os.environ.get("PATH", "")).split(os.pathsep)
        readable = [Path(sys.prefix), Path(supervisor.__file__).parent,
                    *(Path(p) for p in search if os.path.isabs(p) and os.path.isdir(p))]
        return sandbox.Spec(
            worktree=worktree,
            common_dir=paths.common_dir,
            worktree_git_dir=(git_dir if git_dir is not None else worktree / ".git").resolve(),
            # agent/NAME/work: the agent's own folder (branches named before those folders share theirs)
            ref_folder=paths.common_dir / ref_folder(agent.branch),
            state_dir=paths.state_dir,
            own_state=own_state,
            guard_hooks=paths.state_dir / "hooks",
            runtime_dir=paths.runtime_dir,
            own_runtime=paths.agent_runtime(agent.name),
            root_worktree=paths.root,
            worktrees_dir=config.worktrees.dir,
            home=own_state / "home",
            real_home=Path.home(),
            network=config.sandbox.network,
            readable=sandbox.unique(readable),
            hidden=hidden,
            extra_read=config.sandbox.read,
            extra_write=config.sandbox.write,
        )

    def end(self, agent: Agent, pane: PaneInfo | None, grace: float, since: float) -> list[int]:
        root = pane.pid if pane is not None and not pane.dead else None
        # and anything that escaped it still carrying its own socket (unique to this repository's agent of that name);
        # never the engine itself and what it runs (were it started inside the agent's tree after all)
        return kill_tree(root, grace, env_key="SUPERVISOR_SOCKET", env_value=str(self.paths.agent_socket(agent.name)),
                         since=since, spare={*self.tmux.keepers(self.tmux.list_panes()), os.getpid()})


__all__ = ["ISOLATION_KEY", "CannotIsolate", "LocalHost"]
