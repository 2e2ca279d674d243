"""What the engine's own environment, and the one its agents start from, leave out.

The engine is started by whichever command needs it first (supervisor/engine/detached.py), and that command
may run in a terminal, or in an agent's pane. Its environment is the user's, less:
- what describes the terminal it was started in (`TERMINAL_ONLY`): stale in any pane the engine opens later;
- every variable the engine gives an agent (`IDENTITY`, and each profile's `state_vars`), and git's location
  variables: an engine started from an agent's pane must not carry that agent's identity (a tmux server it
  starts would hand it to every pane, and ending that agent would end whatever carries its socket).

The tmux server the engine starts, and so every agent, gets the engine's environment less the alert
channels' secrets (`CHANNEL_SECRETS`, and every variable `alerts:` of supervisor.yaml names as `${VAR}`): the
engine needs them to send alerts, an agent never does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from supervisor.agents import PROFILES
from supervisor.config import named_variables
from supervisor.core.model import Agent
from supervisor.git.environment import LOCATION_VARS
from supervisor.paths import RepoPaths

if TYPE_CHECKING:
    from supervisor.tmux.server import Tmux

# Variables that describe the terminal (or tmux pane) a command runs in, not the user's environment.
TERMINAL_ONLY = frozenset({
    "TERM", "COLORTERM", "COLUMNS", "LINES", "TMUX", "TMUX_PANE", "STY", "WINDOW", "WINDOWID", "SSH_TTY",
    "GPG_TTY", "VTE_VERSION", "TERMINAL_EMULATOR", "LC_TERMINAL", "LC_TERMINAL_VERSION", "TILIX_ID",
})
TERMINAL_PREFIXES = ("TERM_", "KITTY_", "ITERM_", "WEZTERM_", "ALACRITTY_", "KONSOLE_", "GNOME_TERMINAL_",
                     "VSCODE_")

# What the engine gives each agent (`agent_identity`): its name, its port, its own socket to the engine. Nothing
# in it proves who it is: the socket it talks through does.
GIVEN = frozenset({"SUPERVISOR_AGENT", "SUPERVISOR_PORT", "SUPERVISOR_SOCKET", "COMPOSE_PROJECT_NAME"})
# What earlier versions gave agents besides (a token, the store's location): never passed on.
FORMERLY_GIVEN = frozenset({"SUPERVISOR_TOKEN", "SUPERVISOR_STATE_DIR"})
IDENTITY = GIVEN | FORMERLY_GIVEN
# Given by the engine, and only ever the user's own when no agent's identity comes with them (a user may set
# CLAUDE_CONFIG_DIR for their own sessions: the engine seeds agents' folders from it).
AGENT_ONLY = frozenset().union(*(profile.state_vars for profile in PROFILES.values()))

# What the alert channels read by name (supervisor.yaml's template names them); never an agent's.
CHANNEL_SECRETS = frozenset({"SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SMTP_PASSWORD"})
# Named in `alerts:` perhaps (`command: "${HOME}/bin/notify"`), but no secret, and every program needs them.
NEVER_SECRET = frozenset({"HOME", "PATH", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "TMPDIR", "PWD"})
NEVER_SECRET_PREFIXES = ("LC_", "XDG_")


def agent_identity(paths: RepoPaths, agent: Agent) -> dict[str, str]:
    """The variables that tell the agent who it is and where its own socket to the engine is (GIVEN). None of
    them is a secret: another process reading them gains nothing a path on disk does not show."""
    compose = f"{paths.name}-{agent.name}".lower().replace(".", "-")
    return {
        "SUPERVISOR_AGENT": agent.name,
        "SUPERVISOR_PORT": str(agent.port),
        "COMPOSE_PROJECT_NAME": "".join(c for c in compose if c.isalnum() or c in "-_"),
        # Its own socket: every command in its pane talks to the engine through it (`supervisor hook` spools
        # beside it while the engine is down).
        "SUPERVISOR_SOCKET": str(paths.agent_socket(agent.name)),
    }


def engine_environment(environ: Mapping[str, str], state_dir: Path | None = None) -> dict[str, str]:
    """`environ` as the user's own: without the terminal it was read in, nor an agent's identity. A profile's
    variable goes when an agent's identity came with it, or when it points into `state_dir` (the
    repository's supervisor state, where agents' own folders are)."""
    agents = None if state_dir is None else str(state_dir / "agents") + "/"
    an_agents = any(environ.get(key) for key in ("SUPERVISOR_AGENT", "SUPERVISOR_SOCKET", "SUPERVISOR_TOKEN"))

    def kept(key: str, value: str) -> bool:
        if key in TERMINAL_ONLY or key.startswith(TERMINAL_PREFIXES) or key in LOCATION_VARS:
            return False
        if key in IDENTITY:
            return key == "COMPOSE_PROJECT_NAME" and not an_agents
        if key in AGENT_ONLY:
            return not an_agents and not (agents is not None and (value + "/").startswith(agents))
        return True

    return {key: value for key, value in environ.items() if kept(key, value)}


def alert_variables(config_file: Path) -> frozenset[str]:
    """The variables `alerts:` of the file names (`${VAR}`); none when it cannot be read (a broken file is
    refused, and said, where it is loaded)."""
    try:
        root = yaml.compose(config_file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return frozenset()
    if not isinstance(root, yaml.MappingNode):
        return frozenset()
    names: set[str] = set()
    stack = [value for key, value in root.value if isinstance(key, yaml.ScalarNode) and key.value == "alerts"]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            names |= named_variables(str(node.value))
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
        elif isinstance(node, yaml.MappingNode):
            stack += [part for pair in node.value for part in pair]
    return frozenset(names)


def secret(key: str, named: frozenset[str]) -> bool:
    """Whether `key` is an alert channel's secret (`named`: what `alerts:` names)."""
    if key in NEVER_SECRET or key.startswith(NEVER_SECRET_PREFIXES):
        return False
    return key in CHANNEL_SECRETS or key in named


def agents_environment(environ: Mapping[str, str], paths: RepoPaths) -> dict[str, str]:
    """What the tmux server, and so every agent, starts from: the engine's own environment (`engine_environment`
    of `environ`) less the alert channels' secrets."""
    named = alert_variables(paths.config_file)
    return {key: value for key, value in engine_environment(environ, paths.state_dir).items()
            if not secret(key, named)}


def for_agents(tmux: Tmux, paths: RepoPaths) -> dict[str, str]:
    """What everything the engine runs for agents starts from (their panes, by way of `tmux`; worktree setup;
    merge checks), from this process's environment and supervisor.yaml as they are now; `tmux` gets it."""
    tmux.env = agents_environment(os.environ, paths)
    tmux.withheld = withheld(paths)
    return dict(tmux.env)


def withheld(paths: RepoPaths) -> frozenset[str]:
    """The names to take out of a running tmux server's own environment (one started before these rules may
    hold them): identities and channel secrets. A profile's variable, and COMPOSE_PROJECT_NAME, stay: each
    agent is given its own, and they may be the user's."""
    named = alert_variables(paths.config_file)
    return IDENTITY - {"COMPOSE_PROJECT_NAME"} | frozenset(key for key in CHANNEL_SECRETS | named if secret(key, named))
