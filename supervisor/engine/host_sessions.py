"""The conversation ids of agents on a host whose CLI keeps them in its own files (Codex, Gemini CLI), found as the
local watch finds its own (SlowChecks.look_for_sessions): by the profile's own code, reading the agent's CLI folder on
the host through its link (hosts/remote/reader.py: regular files only, below that folder, through no link), at the
host's slow ticks until one is found, then more seldom (a `/new` begins another). `_decide` records it for `restart`
and `restore` to resume that conversation by its id there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.agents import get_profile
from supervisor.agents.base import Profile
from supervisor.agents.session_ids import valid
from supervisor.core.model import Agent
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

SESSION_RECHECK_EVERY = 3  # slow checks between looks for a newer conversation once one was found (as locally)


class HostSessions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._checks: dict[str, int] = {}  # by host: its slow checks so far

    def look(self, host: RemoteHost, agents: list[Agent]) -> None:
        """For each of the host's live agents (on the host's own tick thread, which judges them)."""
        checks = self._checks.get(host.name, 0)
        self._checks[host.name] = checks + 1
        again = checks % SESSION_RECHECK_EVERY == 0
        for agent in agents:
            live = self.engine.live.get(agent.name)
            if live is None or (live.session_id is not None and not again):
                continue
            profile = get_profile(agent.profile)
            if type(profile).find_session is Profile.find_session:
                continue  # its CLI keeps no conversation id in files of its own (or tells it through hooks)
            folder, reader = host.cli_files(agent)
            found = valid(profile.find_session(Path(folder), Path(agent.worktree), live.launched_at, reader))
            if found is not None:
                live.session_id = found
