"""Preparing an agent's CLI folder at each launch (the engine's side of `Profile.prepare_state`): what the agent
left in the way there (a link, a file where a folder goes) is replaced, never followed, and said once as a
`planted_replaced` event; a folder that cannot be prepared fails the agent with the reason, where the user looks.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.agents.base import Profile
from supervisor.agents.state_folder import StateFolder, noticed
from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.errors import SupervisorError

EVENT = "planted_replaced"


def prepare(events: Store, agent: Agent, profile: Profile, state: Path, repo_root: Path,
            hook_command: str) -> dict[str, str] | str:
    """The variables that point the agent's CLI at its folder `state`, or why it cannot be prepared (one line).
    `hook_command`: what its CLI's hooks run (`supervisor hook` as the agent's machine runs it)."""
    try:
        with noticed() as replaced:
            StateFolder(state).ensure()
            env = profile.prepare_state(state, Path.home(), repo_root, Path(agent.worktree), hook_command)
    except SupervisorError as exc:
        return f"its CLI folder cannot be prepared: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    except OSError as exc:
        return f"its CLI folder cannot be prepared ({exc.strerror or exc}: {exc.filename or state})"
    if replaced:
        events.append_event(agent.name, EVENT, folder=str(state), paths=sorted(set(replaced)))
    return env
