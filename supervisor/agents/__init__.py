"""Agent-CLI profiles by name."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePath

from supervisor.agents.aider import AIDER
from supervisor.agents.base import Profile
from supervisor.agents.claude import CLAUDE
from supervisor.agents.codex import CODEX
from supervisor.agents.gemini import GEMINI
from supervisor.agents.screens import CLI_LIMITS, ESC_TO_CANCEL, ScreenRules, Verdict, marker
from supervisor.errors import UsageError

# The bundled demo agent (supervisor.demo.agent): its screen texts are documented in its module docstring.
DEMO = Profile(
    name="demo", default_command="supervisor.demo.agent",
    screen=ScreenRules(
        markers=(
            ESC_TO_CANCEL,
            marker(Verdict.WORKING, "spinner", r"^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Working…"),
            marker(Verdict.IDLE, "input box", r"^─{10,}$"),
        ),
        errors=(re.compile(r"^Error: "),), limits=CLI_LIMITS[:1],
        input_line=re.compile(r"^─{10,}\n›(?P<typed>(?:.*\n)*?)─{10,}$", re.MULTILINE),
        # Its `work` step is real work whose only output is its counter: only the spinner glyph is noise.
        volatile=(re.compile(r"^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] ", re.MULTILINE),),
    ),
)

PROFILES: dict[str, Profile] = {
    "claude": CLAUDE,
    "codex": CODEX,
    "aider": AIDER,
    "gemini": GEMINI,
    "demo": DEMO,
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
        words = shlex.split(command)
        program = PurePath(words[0]).name
    except (ValueError, IndexError):
        return "generic"
    if DEMO.default_command in words:
        return "demo"
    return next((p.name for p in PROFILES.values() if p.default_command == program), "generic")
