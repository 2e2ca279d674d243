"""Claude Code's session transcript (`$CLAUDE_CONFIG_DIR/projects/<cwd, dashed>/<session id>.jsonl`).

An assistant message is written once per content block (thinking, text, each tool_use), every line repeating
the message's `message.id`, the `requestId` and the `usage`: a (message id, request id) pair is one response,
counted once (with the largest figures any of its lines carries: an early line may hold a partial output count).
Subagents' messages (`isSidechain`) cost tokens but are not the main conversation's context. The context in use
is the newest main-line response's input + cache read + cache creation.
"""

from __future__ import annotations

import json
import time
from typing import Any

from supervisor.usage.records import Context, Found, Record, number, timestamp

SYNTHETIC = "<synthetic>"  # the model Claude Code names on messages it made itself (errors): no tokens


def read(lines: list[bytes], state: dict[str, Any]) -> Found:
    found = Found([])
    now = time.time()
    for line in lines:
        if b'"usage"' not in line or b'"assistant"' not in line:
            continue  # most lines (user turns, tool results, summaries) cost nothing to skip
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("message") if isinstance(entry, dict) and entry.get("type") == "assistant" else None
        usage = message.get("usage") if isinstance(message, dict) else None
        if not isinstance(usage, dict):
            continue
        assert isinstance(message, dict)
        model = message.get("model") if isinstance(message.get("model"), str) else None
        if model == SYNTHETIC:
            continue
        ident = message.get("id") or entry.get("uuid")
        if not isinstance(ident, str):
            continue
        record = Record(key=f"claude:{ident}:{entry.get('requestId') or ''}",
                        ts=timestamp(entry.get("timestamp"), now), model=model,
                        input=number(usage.get("input_tokens")), output=number(usage.get("output_tokens")),
                        cache_read=number(usage.get("cache_read_input_tokens")),
                        cache_write=number(usage.get("cache_creation_input_tokens")))
        found.records.append(record)
        if not entry.get("isSidechain"):
            found.context = Context(record.input + record.cache_read + record.cache_write, record.ts, model)
    return found
