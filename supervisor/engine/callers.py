"""Who sent a request, and what it may ask.

A request through an agent's own socket is that agent's. A request through the human's socket is the human's,
unless its process is positively tied to an agent: one of its ancestors is a live agent's pane process (without
a sandbox an agent can reach the human's socket; the pane's first process keeps orphans in its tree as a child
subreaper, so `setsid` or a double fork stay tied), or it runs in an agent's cgroup (where the machine gives
each agent one: this holds also after the agent's first process exited, and for an agent that ended). Such a
caller acts as that agent.

Every decision is about the process that connected, pinned when the connection was accepted
(supervisor/engine/peers.py): if it has exited since (a caller that connected, handed the connection to a child
and exited leaves a pid that leads nowhere), it is nobody. Nobody may only read through the human's socket
(`UNVERIFIED_METHODS`), and nothing through an agent's.

An agent may call only the agent methods, about its own business: start its own helpers, message, report, send
its hook events, read about the agents of its own tree. Never stop, approve, deny, merge, remove, or anything
else the human decides.

What lineage does not catch: a process that something outside the agent's tree started on its behalf (the
tmux server's `run-shell`, `at`, a systemd user unit, a daemon of the user's), and, where agents get no cgroup,
a process that outlived the agent's first process (re-parented to init once its subreaper exited): only a
sandbox stops those. A cgroup is no wall either: a process of the user may move itself out of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from supervisor.core.model import Agent
from supervisor.engine.confinement import CGROUP, cgroup_name, cgroup_of
from supervisor.engine.peers import Peer
from supervisor.errors import SupervisorError
from supervisor.hostside.lineage import lineage  # the one walk of /proc, here and on hosts

# What an agent may ask for: its own business, nothing about other agents' work.
AGENT_METHODS = frozenset({"ping", "status", "ls", "show", "events", "screen", "unwritten", "hook", "report",
                           "helper", "msg", "task_add", "task_ls", "task_claim", "task_done", "task_release",
                           "guard"})
# Requests that act as the calling agent: they are told who it is.
CALLER_METHODS = frozenset({"hook", "report", "helper", "msg", "task_add", "task_claim", "task_done",
                            "task_release", "guard"})
# What a caller whose process is gone (or was never known) may ask through the human's socket: reads.
UNVERIFIED_METHODS = AGENT_METHODS - CALLER_METHODS
# Agent methods that read about one agent (`name`): only about an agent of the caller's own tree.
NAMED_READS = frozenset({"show", "events", "screen", "unwritten"})

HINT = "run it from your own terminal, outside every agent's pane"


def tied_agent(pid: int, agents: Iterable[Agent]) -> Agent | None:
    """The agent `pid` belongs to: the live agent whose pane process is `pid` or one of its ancestors, or the
    agent (live or not) whose cgroup holds it."""
    agents = list(agents)
    panes = {agent.pid: agent for agent in agents if agent.pid and agent.state.live}
    if panes:
        tied = next((panes[ancestor] for ancestor in lineage(pid) if ancestor in panes), None)
        if tied is not None:
            return tied
    return in_cgroup(pid, agents)


def in_cgroup(pid: int, agents: Iterable[Agent]) -> Agent | None:
    """The agent whose recorded cgroup holds process `pid` (or one below it)."""
    groups: dict[str, Agent] = {}
    for agent in agents:
        recorded = agent.extra.get(CGROUP)
        name = cgroup_name(Path(recorded)) if isinstance(recorded, str) else None
        if name is not None and name != "/":
            groups[name] = agent
    if not groups:
        return None
    try:
        found = cgroup_of(pid)
    except OSError:
        return None
    while found and found != "/":
        if found in groups:
            return groups[found]
        found = os.path.dirname(found)
    return None


def identify(peer: Peer, agents: list[Agent], method: str = "ping") -> Agent | None:
    """The agent a request acts as (None: the human); SupervisorError when its socket's agent is gone, a
    process of one agent came through another's socket, or the process that connected is gone (or was
    never known) and asks more than a read through the human's socket."""
    if not peer.alive():
        if peer.agent is not None:
            raise SupervisorError(f"refused: the process that connected to agent {peer.agent}'s socket "
                                  f"(pid {peer.pid}) is gone; a request is answered only while its "
                                  "connecting process runs")
        if method not in UNVERIFIED_METHODS:
            raise SupervisorError(f"refused: the process that connected (pid {peer.pid}) is gone, so who asks "
                                  f"{method} cannot be known; only reads are answered then", hint=HINT)
        return None
    tied = tied_agent(peer.pid, agents)
    if peer.agent is None:
        if tied is None and (foreign := _another_engines_agent(peer.pid)) is not None:
            raise SupervisorError(f"refused: the caller is another repository's agent ({foreign}); an agent "
                                  "reaches only the engine of its own repository", hint=HINT)
        return tied
    own = next((agent for agent in agents if agent.name == peer.agent), None)
    if own is None:
        raise SupervisorError(f"agent {peer.agent} is no longer known to the engine")
    if tied is not None and tied.name != own.name:
        raise SupervisorError(f"a process of agent {tied.name} may not use the socket of agent {own.name}")
    return own


def _another_engines_agent(pid: int) -> str | None:
    """Why process `pid`, tied to none of this engine's agents, is an agent all the same (its lineage carries an
    agent's variables, or it runs in an agent's cgroup): one of another repository's, without a sandbox (in one,
    no other engine's socket is in sight), that dropped its variables to pass for the human."""
    from supervisor.engine.whose import agent_around  # (whose reads lineage from here)

    return agent_around(pid)


def check(caller: Agent | None, peer: Peer, method: str, params: dict[str, Any]) -> None:
    """Refuse what `caller` (an agent) may not ask; the human may ask anything."""
    if caller is None:
        return
    how = ("through its own socket" if peer.agent is not None else
           f"from inside its process tree (pid {peer.pid})")
    if method not in AGENT_METHODS:
        asked = params.get("method") if method == "each" else method  # `each`: the verb it does to many
        raise SupervisorError(
            f"refused: agent {caller.name} may not call {asked} (the request came {how})",
            hint="agents may start their own helpers, message and report; " + HINT + " to act as yourself")
    name = params.get("name")
    named = method in NAMED_READS and (name is not None or method == "events")
    if named and (not isinstance(name, str) or _root(name) != _root(caller.name)):
        about = f"agent {name}" if isinstance(name, str) else "every agent"
        raise SupervisorError(f"refused: agent {caller.name} may not read about {about}, only about the agents "
                              "of its own tree", hint=HINT)
    if method in CALLER_METHODS and method != "hook" and not caller.state.live:
        # a request that was on its way when the agent ended (a hook event still says how it ended)
        raise SupervisorError(f"refused: agent {caller.name} is {caller.state}; only a running agent may "
                              f"call {method}")


def _root(name: str) -> str:
    return name.split(".", 1)[0]
