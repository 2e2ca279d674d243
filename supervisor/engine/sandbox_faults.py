"""A sandboxed agent whose pane ended while starting: was it its sandbox? The trial before each launch is skipped
once one passed (supervisor/hosts/sandbox_trial.py), so it is run here instead, on that failure only, and the
agent is failed saying what bubblewrap said, as a trial before its launch would have."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.engine.environments import agent_identity
from supervisor.hosts.base import ISOLATED
from supervisor.hosts.isolation import SANDBOX

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine


def not_started(engine: Engine, agent: Agent) -> str | None:
    """The reason the agent did not start when its sandbox cannot be made now; None when it can (its own command
    failed), when it ran unsandboxed, or on a host that tries its sandbox before every launch."""
    if agent.extra.get(ISOLATED) != SANDBOX:
        return None
    tried = getattr(engine.host_of(agent), "sandbox_fault", None)
    if tried is None:
        return None
    fault = tried(agent, {**engine.agents_env, **agent_identity(engine.paths, agent)})
    return None if fault is None else f"not started: {fault.message}; {fault.hint}"
