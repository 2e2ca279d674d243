"""What an alert is about: one agent, or something that is not an agent.

A subject is a string: an agent's full name (`auth`, `auth.test`), or `KIND:NAME` for anything else, e.g.
`tmux:` (supervisor's tmux server), `host:build-2`, `repo:`. Agent names are a-z, 0-9, '-' and '.', so a colon
never makes a subject that could be an agent. The alert router keys its groups, conditions, threads and
silences by subject; an alert about a non-agent subject also names the agents it concerns.

A silence on `KIND:` with no name covers every subject of that kind.
"""

from __future__ import annotations

from supervisor.core.model import validate_name
from supervisor.errors import UsageError

TMUX = "tmux:"  # supervisor's tmux server for the repository here; `tmux:HOST` its server on that host
REPO = "repo:"  # the repository as a whole (its budget for the day)
KINDS = {
    "tmux": "supervisor's tmux server",
    "host": "host",
    "repo": "the repository",
}


def is_agent(subject: str) -> bool:
    return ":" not in subject


def kind(subject: str) -> str | None:
    """`tmux` for `tmux:`; None for an agent."""
    return None if is_agent(subject) else subject.split(":", 1)[0]


def label(subject: str) -> str:
    """How a message names the subject: the agent's name, or e.g. "supervisor's tmux server"."""
    if is_agent(subject):
        return subject
    what, _, name = subject.partition(":")
    base = KINDS.get(what, what)
    if not name:
        return base
    if what == "host":
        return f"{base} {name}"
    return f"{base} on host {name}" if what == "tmux" else f"{base} ({name})"


def check(subject: str) -> str:
    """A subject a user typed (`alerts snooze tmux:`): an agent name, or a known kind with an optional name."""
    if is_agent(subject):
        return validate_name(subject)
    what, _, name = subject.partition(":")
    if what not in KINDS or any(ch.isspace() for ch in name):
        raise UsageError(f"invalid alert subject {subject!r}",
                         hint=f"an agent's name, or one of {', '.join(k + ':' for k in KINDS)} (e.g. tmux:)")
    return subject


def covers(silenced: str, subject: str) -> bool:
    """Whether a silence on `silenced` holds back alerts about `subject`."""
    if silenced == subject:
        return True
    return silenced.endswith(":") and not is_agent(silenced) and subject.startswith(silenced)
