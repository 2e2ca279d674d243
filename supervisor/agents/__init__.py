"""Agent-CLI profiles by name."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePath

from supervisor.agents.base import Profile
from supervisor.agents.claude import CLAUDE
from supervisor.agents.gemini import GEMINI
from supervisor.agents.screens import ESC_TO_CANCEL, ScreenRules, Verdict, marker
from supervisor.errors import UsageError

# A CLI's own words for a usage or rate limit, not the words alone: an agent writes "rate limit" middleware,
# prints line 429 of a file, or (Codex) tells how far "your usage limits go".
_LIMITS = (re.compile(
    r"usage limit (?:reached|exceeded)|hit (?:your|the) usage limit|rate limit (?:reached|exceeded)"
    r"|rate_limit_error|RateLimitError|quota exceeded|exceeded your (?:current )?quota|RESOURCE_EXHAUSTED"
    r"|\b429 Too Many Requests|\bstatus(?: code)?:? 429\b", re.IGNORECASE),)

# Codex and Gemini CLI rules come from screens recorded from Codex 0.169.0 and Gemini CLI 0.61.0
# (tests/fixtures/codex, tests/fixtures/gemini). Both draw their input box in every state, so the box is a
# weak idle marker: the working line above it, or a dialog, decides when there is one.
CODEX = Profile(
    name="codex", default_command="codex", resume_args="resume --last",
    screen=ScreenRules(
        markers=(
            ESC_TO_CANCEL,
            marker(Verdict.WAITING, "dialog: enter", r"enter continue · esc|enter/esc confirm|Press enter to confirm"),
            marker(Verdict.WAITING, "dialog: options", r"^\s*›\s*1\.\s"),
            marker(Verdict.WORKING, "esc to interrupt", r"esc to interrupt", re.I),
            marker(Verdict.IDLE, "input box", r"\? for shortcuts|Ask Codex to do anything|^\s*\S+ default · ",
                   weak=True),
        ),
        errors=(re.compile(r"^\s*(■|error|Error)[: ]"),), limits=_LIMITS,
        # Codex draws nothing while text streams: idle once `Worked for` (or an interruption) ends the turn.
        prompt_line=re.compile(r"^› "), turn_end=re.compile(r"^\s*Worked for |^■ "),
    ),
    cli_processes=frozenset({"codex", "node"}),
)

AIDER = Profile(
    name="aider", default_command="aider",
    screen=ScreenRules(
        markers=(
            marker(Verdict.WAITING, "question", r"\(Y\)es/\(N\)o|\[Yes\]:|\(Y\)es"),
            marker(Verdict.IDLE, "prompt", r"^\S*> ?$"),
            marker(Verdict.WORKING, "waiting for model", r"Waiting for|Thinking|Tokens:", re.I),
        ),
        errors=(re.compile(r"litellm\.|Error:"),), limits=_LIMITS,
    ),
    cli_processes=frozenset({"aider", "python", "python3"}),
)

# The bundled demo agent (supervisor.demo.agent): its screen texts are documented in its module docstring.
DEMO = Profile(
    name="demo", default_command="supervisor.demo.agent",
    screen=ScreenRules(
        markers=(
            ESC_TO_CANCEL,
            marker(Verdict.WORKING, "spinner", r"^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Working…"),
            marker(Verdict.IDLE, "input box", r"^─{10,}$"),
        ),
        errors=(re.compile(r"^Error: "),), limits=_LIMITS[:1],
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
