"""Agent-CLI profiles by name."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePath

from supervisor.agents.base import Profile
from supervisor.agents.claude import CLAUDE
from supervisor.errors import UsageError

PROFILES: dict[str, Profile] = {
    "claude": CLAUDE,
    "codex": Profile(name="codex", default_command="codex", resume_args="resume --last",
                     ready_pattern=re.compile(r"^\s*›", re.MULTILINE)),
    "aider": Profile(name="aider", default_command="aider", ready_pattern=re.compile(r"^\S*> ?$", re.MULTILINE)),
    "gemini": Profile(name="gemini", default_command="gemini",
                      ready_pattern=re.compile(r"Type your message", re.MULTILINE)),
    "generic": Profile(name="generic", default_command=None),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(
            f"unknown agent profile {name!r}", hint=f"choose one of: {', '.join(PROFILES)}"
        ) from None


def profile_for(command: str) -> str:
    """The profile a bare --command implies: the CLI it runs when it is a known one, else generic."""
    try:
        program = PurePath(shlex.split(command)[0]).name
    except (ValueError, IndexError):
        return "generic"
    return next((p.name for p in PROFILES.values() if p.default_command == program), "generic")
