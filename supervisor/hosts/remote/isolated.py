"""An agent's isolation on a host: the same bubblewrap sandbox as on this machine, built there by the same code
(supervisor/hostside/sandbox.py, through the host program's `sandbox` op) from the host's own paths.

Which one it gets: its own setting (`start --isolation`, a plan's session), else supervisor.yaml's `isolation`,
else `sandbox` where the host's bubblewrap can make one (its hello's `bwrap`) and `none` where it cannot (said by
`hosts check`). `sandbox` asked for on a host that cannot make one refuses the agent (CannotIsolate): it never
runs less isolated than asked.

What it sees there, by the host's layout (layout.py): its own worktree read-write; the clone read-only but for
its own ref folder, reflogs and worktree git folder, and new loose objects (no pack, no alternates); its own CLI
folder (HOME in it); its own socket folder (read-only: connecting needs no write) and spool (read-write); the
guard's hooks, the host program's folder (every version installed there, as it is now: after an engine upgrade the
shared `supervisor` shim and guard hooks name the new version, which an agent launched before it must still reach)
and the folder of its `supervisor` command (ROOT/bin, which holds that command alone), read-only. Hidden: the
host's `dir` (unless it holds the host user's home: then this repository's folder in it; agent_cli.hidden_parts),
with the repository's folder there (every other agent's worktree, CLI folder, socket and spool, the tmux socket),
the host user's socket folders and credentials.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from supervisor.agents import PROFILES
from supervisor.core.model import Agent
from supervisor.engine.helpers import MESSAGES_DIR, STATUS_FILE, SUB_AGENTS, status_text
from supervisor.git.refs import ref_folder
from supervisor.git.worktrees import GIT_DIR_KEY
from supervisor.hosts import agent_cli, isolation
from supervisor.hosts.base import CannotIsolate
from supervisor.hosts.hostapp import INSTALL_DIR
from supervisor.hosts.link import RemoteError

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost

SHELL = "/bin/sh"
GUARD_HOOKS = "hooks"  # under the repository's folder there: the commit guard's hooks (worktrees.py installs them)
BUILD_TIMEOUT = 60.0


def can_sandbox(host: RemoteHost) -> tuple[bool, str | None]:
    """Whether the host's bubblewrap can make a sandbox (its hello says), and why not."""
    hello = host.link().hello
    problem = hello.get("bwrap_problem")
    return bool(hello.get("bwrap")), problem if isinstance(problem, str) else None


def isolation_of(host: RemoteHost, agent: Agent) -> str:
    """The isolation the agent gets there (see the module's docstring)."""
    own = agent.extra.get(isolation.KEY)
    chosen = own if own in isolation.CHOICES else host.settings().isolation
    if chosen in isolation.CHOICES:
        return str(chosen)
    return isolation.SANDBOX if can_sandbox(host)[0] else isolation.NONE


def wrap(host: RemoteHost, agent: Agent, command: str, env: Mapping[str, str]) -> tuple[str, dict[str, str], str]:
    """The command line and environment that run `command` (a shell command line) for the agent in its pane
    there, isolated as its settings say, and the isolation it gets."""
    if isolation_of(host, agent) == isolation.NONE:
        return command, dict(env), isolation.NONE
    words, home = build(host, agent, [SHELL, "-c", command], None)
    return shlex.join(words), {**env, "HOME": home}, isolation.SANDBOX


def wrap_argv(host: RemoteHost, agent: Agent, argv: list[str], cwd: str,
              env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """`argv` (the agent's own code: a `worktrees.setup`, a `merge.check`) run in `cwd` (its worktree, or a
    scratch worktree of its work) isolated as the agent is: in a sandbox built like its own, `cwd` read-write,
    no socket to the engine and no spool. As it is with `isolation: none`."""
    if isolation_of(host, agent) == isolation.NONE:
        return list(argv), dict(env)
    words, home = build(host, agent, argv, cwd)
    return words, {**env, "HOME": home}


def build(host: RemoteHost, agent: Agent, argv: list[str], cwd: str | None) -> tuple[list[str], str]:
    """The host's bubblewrap command line for `argv` in the agent's sandbox (`cwd` given: the one a command the
    engine runs for it gets), and the HOME it has there. CannotIsolate when the host cannot make it."""
    able, problem = can_sandbox(host)
    if not able:
        raise CannotIsolate(f"isolation: sandbox, but host {host.name} cannot make one ({problem or 'no bubblewrap'})",
                            hint=f"install bubblewrap there and allow user namespaces (`supervisor hosts check "
                                 f"{host.name}`), or set `isolation: none` for its agents")
    args: dict[str, Any] = {"spec": spec(host, agent, cwd), "command": argv}
    if cwd is None:
        args["helpers_status_text"] = status_text(agent, [])
    try:
        built = host.link().call("sandbox", timeout=BUILD_TIMEOUT, **args)
    except RemoteError as exc:  # the host's own words: what it lacks, or what could not be made
        said = exc.message.partition(": ")[2] or exc.message
        raise CannotIsolate(f"{agent.name}'s sandbox on host {host.name}: {said}",
                            hint="`supervisor hosts check` says what the host has; or set `isolation: none`") from None
    return [str(word) for word in built["argv"]], str(built["home"])


def spec(host: RemoteHost, agent: Agent, cwd: str | None) -> dict[str, Any]:
    """The agent's sandbox as the host program's `sandbox` op takes it: the host's paths, as text."""
    layout = host.layout()
    name = agent.name
    own = agent.worktree
    folder = own if cwd is None else cwd
    state = layout.state(name)
    profile = PROFILES.get(agent.profile) or PROFILES["generic"]
    link = host.link()
    home = link.hello.get("home")
    installed = INSTALL_DIR.replace("~", home, 1) if isinstance(home, str) and home.startswith("/") else INSTALL_DIR
    recorded = agent.extra.get(GIT_DIR_KEY) if folder == own else None
    shim = posixpath.dirname(host.channel.shim_path())
    # every repository's folder there (their agents, sockets, tmux servers), unless `dir` holds the home itself
    outer = [part for part in agent_cli.hidden_parts(posixpath.dirname(layout.root), home if isinstance(home, str)
                                                     else None, layout.root) if part != layout.root]
    return {
        "worktree": folder,
        "common_dir": layout.clone,
        "git_dir": recorded if isinstance(recorded, str) else None,
        "ref_folder": posixpath.join(layout.clone, ref_folder(agent.branch)),
        # the repository's folder there, all of it hidden; what is the agent's own is given back below
        "root_worktree": layout.root,
        "worktrees_dir": posixpath.dirname(layout.worktree(name)),
        "state_dir": posixpath.dirname(state),
        "own_state": state,
        "home": posixpath.join(state, "home"),
        "guard_hooks": posixpath.join(layout.root, GUARD_HOOKS),
        "runtime_dirs": [posixpath.dirname(posixpath.dirname(layout.socket(name)))],  # every agent's socket
        "own_runtime": posixpath.dirname(layout.socket(name)),
        "own_spool": layout.spool(name),
        "hidden": outer,
        # its hooks' and commands' client: the host program's folder as a whole, live, so that the version the shim
        # and the guard hooks name after an engine upgrade is there too; and in its pane the folder of its
        # `supervisor` command (the shim alone), in a hidden part: shown as they are, unlike `readable`, which may
        # show nothing hidden
        "programs": [installed, *([shim] if cwd is None else [])],
        "helpers": posixpath.join(own, SUB_AGENTS) if folder == own else None,
        "helpers_status": STATUS_FILE,
        "helpers_messages": MESSAGES_DIR,
        "network": host.settings().sandbox.network,
        "home_read": list(profile.home_read),
        "home_seed": list(profile.home_seed),
        "runtime": cwd is None,
    }

