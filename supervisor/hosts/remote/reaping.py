"""An agent's pane command on a host, started through the host program's reaper (supervisor/hostside/reaper.py):
the child subreaper of the agent's processes there, so that one that detaches (setsid, a double fork) stays in
the pane's tree for a stop to find. Each launch gets a token of its own (`SUPERVISOR_LAUNCH` in the pane's
environment, inherited by every process of it); the record keeps the last few, and a stop ends whatever still
carries one of them."""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.hostside.ending import TOKEN

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost

TOKENS = "launch_tokens"  # in the agent's record: its launches' tokens, newest last
KEPT = 4


def wrap(host: RemoteHost, agent: Agent, command: str, env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """`command` (a shell command line) run by the reaper, and `env` with this launch's token (recorded)."""
    token = secrets.token_hex(16)
    agent.extra[TOKENS] = [*tokens(agent), token][-KEPT:]
    client = host.channel.client_command()  # python3 -I -S …/host-V.pyz client
    # tmux gives a new pane the PATH of the client that asked for it (the host program's), whatever `-e` says:
    # the agent's PATH (the `supervisor` shim first) is set again by the pane's first word.
    path = ["env", f"PATH={env['PATH']}"] if env.get("PATH") else []
    words = [*path, *client[:-1], "reap", "--", "sh", "-c", command]
    return shlex.join(words), {**env, TOKEN: token}


def tokens(agent: Agent) -> list[str]:
    kept = agent.extra.get(TOKENS)
    return [token for token in kept if isinstance(token, str) and token] if isinstance(kept, list) else []


def carrying(agent: Agent) -> list[tuple[str, str]]:
    """What marks its processes of every launch kept: (variable, value) pairs."""
    return [(TOKEN, token) for token in tokens(agent)]
