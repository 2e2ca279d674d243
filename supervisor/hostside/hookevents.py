"""A hook event as `supervisor hook` sends it, on this machine and on a host alike: cut to fit what the engine
takes (`fit`, `unread`), and spooled into the agent's own folder when the engine does not take it (`spool`).
Standard library only: the host client (`client.py`) runs it where only Python is installed.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

HOOK_INPUT = 64 * 1024 * 1024  # what `supervisor hook` reads of its stdin
STRING_CUT = 64 * 1024  # a longer string in an event is cut (the CLI's own transcript has it whole)
EVENT_BUDGET = 1024 * 1024  # an event as sent and spooled: far below a request's limit
CUT = "supervisor_cut"  # in an event: `strings` (long strings cut), `input` (its tool input left out), `unread`
_SUMMARY_KEYS = ("command", "file_path", "path", "url", "pattern", "prompt")
_NAMES = ("hook_event_name", "notification_type", "tool_name", "source", "reason", "session_id", "message")


def _cut_strings(value: Any, limit: int) -> tuple[Any, bool]:
    if isinstance(value, str):
        return (value[:limit], True) if len(value) > limit else (value, False)
    if isinstance(value, dict):
        pairs = [(key, *_cut_strings(item, limit)) for key, item in value.items()]
        return {key: item for key, item, _ in pairs}, any(cut for _, _, cut in pairs)
    if isinstance(value, list):
        items = [_cut_strings(item, limit) for item in value]
        return [item for item, _ in items], any(cut for _, cut in items)
    return value, False


def fit(event: dict[str, Any]) -> dict[str, Any]:
    """The event cut to fit EVENT_BUDGET, always: long strings are cut; if it is still too large, only what
    decides the state and an approval is kept (names, and the tool input's summary), marked in CUT."""
    cut, changed = _cut_strings(event, STRING_CUT)
    if len(json.dumps(cut)) <= EVENT_BUDGET:
        return {**cut, CUT: "strings"} if changed else dict(cut)
    kept: dict[str, Any] = {key: event[key][:1024] for key in _NAMES if isinstance(event.get(key), str)}
    data = event.get("tool_input")
    if isinstance(data, dict):
        kept["tool_input"] = {key: data[key][:4096] for key in _SUMMARY_KEYS if isinstance(data.get(key), str)}
    return {**kept, CUT: "input"}


def unread(raw: bytes) -> dict[str, Any]:
    """An event too large to read whole: its names as found in what was read, marked `unread`."""
    event: dict[str, Any] = {"hook_event_name": "unparsable"}
    for key in ("hook_event_name", "tool_name"):
        found = re.search(rb'"' + key.encode() + rb'"\s*:\s*"([A-Za-z0-9_.:-]{1,100})"', raw)
        if found:
            event[key] = found.group(1).decode()
    return {**event, CUT: "unread"}


def spool(directory: str, payload: dict[str, Any], *, at: float, key: str) -> str:
    """Keep an event the engine did not take (one file per event, written atomically) in the agent's own spool
    folder, which says whose it is. `at`: when the hook ran; `key`: the id it was sent with, so an engine that
    took it after all does not apply it twice. The file's path."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    name = f"{key}.json"
    tmp = os.path.join(directory, f".{name}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"event": payload, "at": at, "key": key}))
    target = os.path.join(directory, name)
    os.replace(tmp, target)
    return target
