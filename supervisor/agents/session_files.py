"""Where Codex and Gemini CLI keep the id of a conversation, read from the files each writes in the agent's own
state folder, so that `restart` and `restore` resume that conversation by its id.

Codex 0.171 (CODEX_HOME): one rollout file per conversation, `sessions/YYYY/MM/DD/rollout-<YYYY-MM-DDThh-mm-ss>-
<uuid>.jsonl`, written from the first prompt on (none before it), dated when the conversation began. Its first
line is `{"type": "session_meta", "payload": {"id": <uuid>, "timestamp": <ISO>, "cwd": <folder>, …}}`; it can be
tens of KB long (it carries the model's instructions). `codex resume <uuid>` resumes it and writes on in it.

Gemini CLI 0.61 (GEMINI_CLI_HOME): `.gemini/tmp/<project>/chats/session-<YYYY-MM-DDThh-mm>-<id[:8]>.jsonl`, made
when the CLI starts. Its first line is the metadata (`sessionId`, `projectHash`, `startTime`, `lastUpdated`,
`kind`), then one message per line (`{"id", "type": "user"|"gemini"|…, "content"}`). `--resume <id>` finds only a
conversation with a message in it ("resumable content"): an empty one is not told, lest a resume fail.

Both are read through a `Reader` (supervisor/agents/reader.py): the agent's folder on this machine, or on its host
through the link, by the same rules (only regular files, in folders reached from the agent's folder through no link).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from supervisor.agents.reader import LOCAL, Entry, Reader
from supervisor.agents.session_ids import valid

# A file's clock and ours may differ by a little (coarse mtimes, a timestamp taken just before the launch).
SLACK_SECONDS = 2.0
FIRST_LINE_LIMIT = 1 << 20  # bytes read of a first line (Codex's carries its instructions: ~50 KB)
CHAT_LIMIT = 4 << 20  # bytes of a Gemini chat read while looking for its first message
_NOT_SPOKEN = ("/", "?", "<session_context>", "<hook_context>")  # user "messages" Gemini does not resume for
_ROLLOUT = re.compile(r"^rollout-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-([0-9a-fA-F-]{36})\.jsonl$")  # the id: `valid`


def codex_session(state: str | Path, worktree: str | Path, since: float, reader: Reader = LOCAL) -> str | None:
    """The id of the newest Codex conversation begun in `worktree` at `since` or later, from the rollout files
    under `state` (the agent's CODEX_HOME, read through `reader`); None while there is none."""
    state = os.fspath(state)
    found: list[tuple[float, str]] = []
    for folder in _day_folders(posixpath.join(state, "sessions"), since, time.time()):
        for entry in reader.entries(folder, state):
            match = _ROLLOUT.match(entry.name)
            if entry.folder or match is None or entry.mtime < since - SLACK_SECONDS:
                continue
            meta = _loads(_text(reader.first_line(posixpath.join(folder, entry.name), FIRST_LINE_LIMIT)))
            payload = meta.get("payload") if isinstance(meta, dict) and meta.get("type") == "session_meta" else None
            if not isinstance(payload, dict) or payload.get("id") != match.group(1) or valid(match.group(1)) is None:
                continue
            began = _timestamp(payload.get("timestamp"))
            if began is None or began < since - SLACK_SECONDS \
                    or not _same_folder(payload.get("cwd"), os.fspath(worktree), reader):
                continue
            found.append((began, match.group(1)))
    return max(found)[1] if found else None


def gemini_session(state: str | Path, since: float, reader: Reader = LOCAL) -> str | None:
    """The id of the newest Gemini CLI conversation begun at `since` or later that has a message in it, from the
    chat files under `state` (the agent's GEMINI_CLI_HOME, which holds its worktree's project only, read through
    `reader`)."""
    state = os.fspath(state)
    found: list[tuple[float, str]] = []
    projects = posixpath.join(state, ".gemini", "tmp")
    for project in _folders(reader.entries(projects, state)):
        chats = posixpath.join(projects, project, "chats")
        for entry in reader.entries(chats, state):
            suffix = posixpath.splitext(entry.name)[1]
            if entry.folder or not entry.name.startswith("session-") or suffix not in (".jsonl", ".json") \
                    or entry.mtime < since - SLACK_SECONDS:
                continue
            chat = _gemini_chat(reader.head(posixpath.join(chats, entry.name), CHAT_LIMIT), suffix)
            if chat is None:
                continue
            began, session = chat
            if began >= since - SLACK_SECONDS:
                found.append((began, session))
    return max(found)[1] if found else None


def _folders(entries: list[Entry]) -> list[str]:
    return [entry.name for entry in entries if entry.folder]


def _text(data: bytes | None) -> str:
    return data.decode("utf-8", "replace") if data is not None else ""


def _gemini_chat(head: bytes | None, suffix: str) -> tuple[float, str] | None:
    """(start time, session id) of a chat file (its first bytes, `head`) with a message in it; None otherwise (or
    unreadable)."""
    records: Iterable[Any]
    if head is None:
        return None
    text = head.decode("utf-8", "replace")
    if suffix == ".json":  # the older form: one object, its messages in a list
        try:
            whole = json.loads(text)
        except ValueError:
            return None
        records = [whole, *(whole.get("messages") or [])] if isinstance(whole, dict) else []
    else:
        records = (_loads(line) for line in text.splitlines() if line.strip())
    meta: dict[str, Any] | None = None
    spoken = False
    for record in records:
        if not isinstance(record, dict):
            continue
        if meta is None and isinstance(record.get("sessionId"), str) and isinstance(record.get("projectHash"), str):
            meta = record
        update = record.get("$set")  # `{"$set": {"messages": [...]}}` rewrites the messages so far
        messages = update.get("messages") if isinstance(update, dict) else [record]
        spoken = spoken or any(isinstance(m, dict) and isinstance(m.get("id"), str) and _resumable(m)
                               for m in (messages if isinstance(messages, list) else []))
        if meta is not None and spoken:
            break
    if meta is None or not spoken or meta.get("kind") == "subagent":
        return None
    began, session = _timestamp(meta.get("startTime")), valid(meta["sessionId"])
    return None if began is None or session is None else (began, session)


def _resumable(message: dict[str, Any]) -> bool:
    """A message Gemini CLI counts as conversation: a user's text, or a reply with text, tool calls or thoughts."""
    content = message.get("content")
    text = content if isinstance(content, str) else "".join(
        str(part.get("text") or "") for part in content if isinstance(part, dict)) if isinstance(content, list) else ""
    if message.get("type") == "user":  # not a command, nor the context the CLI itself puts first
        return bool(text.strip()) and not text.strip().startswith(_NOT_SPOKEN)
    if message.get("type") == "gemini":
        return bool(text.strip() or message.get("toolCalls") or message.get("thoughts"))
    return False


def _day_folders(sessions: str, since: float, now: float) -> list[str]:
    """The day folders a conversation begun between `since` and `now` can be in, whatever the time zone of the
    machine that wrote them (this one's, or a host's: UTC-12 to UTC+14)."""
    days = {datetime.fromtimestamp(moment + shift, UTC).strftime("%Y/%m/%d")
            for moment in (since, now) for shift in (-12 * 3600, 0, 14 * 3600)}
    return [posixpath.join(sessions, day) for day in sorted(days)]


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _same_folder(cwd: Any, worktree: str, reader: Reader) -> bool:
    """Whether the conversation ran in the worktree (a record without a folder is taken as the agent's own). On a
    host the paths are compared as written (they are that machine's)."""
    if not isinstance(cwd, str):
        return True
    if posixpath.normpath(cwd) == posixpath.normpath(worktree):
        return True
    if reader is not LOCAL:
        return False
    try:
        return Path(cwd).resolve() == Path(worktree).resolve()
    except OSError:
        return False
