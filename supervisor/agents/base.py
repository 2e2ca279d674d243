"""What differs between agent CLIs: how to launch and resume them, and how to tell they are ready."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    name: str
    default_command: str | None
    stagger: float = 0.0  # seconds between launches of this CLI (some corrupt shared config otherwise)
    resume_args: str | None = None  # appended to the command on restart to resume the conversation
    ready_pattern: re.Pattern[str] | None = None  # the screen shows an input prompt
    blocked_pattern: re.Pattern[str] | None = None  # the screen shows a dialog, not the prompt

    def command_line(self, command: str, *, resume: bool) -> str:
        if resume and self.resume_args:
            return f"{command} {self.resume_args}"
        return command

    def prepare_worktree(self, repo_root: Path, worktree: Path, home: Path) -> None:
        """Anything the CLI needs before it is launched in a new worktree."""

    def ready(self, screen: str) -> bool | None:
        """True when the screen shows the CLI waiting for input; None when this profile cannot tell."""
        if self.ready_pattern is None:
            return None
        tail = "\n".join(screen.rstrip().splitlines()[-15:])
        if self.blocked_pattern is not None and self.blocked_pattern.search(tail):
            return False
        return bool(self.ready_pattern.search(tail))
