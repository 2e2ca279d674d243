"""A CLI's conversation id, checked before it is kept or put on a command line.

The id reaches supervisor from places an agent can write: its hook events (`supervisor hook` takes any JSON from
inside the pane) and the CLI's own files in its state folder. It goes back onto the CLI's command line at
`restart` and `restore`: anything but a plain UUID (what Claude Code, Codex and Gemini CLI all use) could be an
option (`--dangerously-skip-permissions`). So an id is kept, and used, only when it is a UUID; the command lines
put it where no option can start anyway (`--resume=ID`, `resume -- ID`).
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

from supervisor.agents.reader import LOCAL, Reader

SESSION_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CONVERSATION_LIMIT = 4 << 20  # bytes of a Claude Code conversation read while looking for its first prompt


def valid(value: object) -> str | None:
    """The id when it is a UUID, else None."""
    return value if isinstance(value, str) and SESSION_ID.fullmatch(value) else None


def claude_conversation_held(config: Path, session: str, reader: Reader = LOCAL) -> bool:
    """Whether Claude Code (CLAUDE_CONFIG_DIR `config`, read through `reader`: where the agent runs) keeps
    conversation `session` with a prompt in it: `projects/<cwd, non-alphanumerics dashed>/<id>.jsonl` with a
    `user` line. Its SessionStart hook tells the id before any prompt, when no such file exists: `--resume` would
    exit 1 ("No conversation found")."""
    if valid(session) is None:
        return False
    projects = posixpath.join(str(config), "projects")
    return any(_has_prompt(reader.head(posixpath.join(projects, project, f"{session}.jsonl"), CONVERSATION_LIMIT))
               for project in reader.folders(projects))


def _has_prompt(head: bytes | None) -> bool:
    if head is None:
        return False
    text = head.decode("utf-8", "replace")
    for line in text.splitlines():
        if '"user"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("type") == "user" and not record.get("isMeta") \
                and isinstance(record.get("message"), dict):
            return True
    return False
