"""Gemini CLI's chat files (`$GEMINI_CLI_HOME/.gemini/tmp/<project>/chats/session-<time>-<id>.jsonl`, 0.61).

A JSON line per record: the session's metadata first, then messages, `$set` updates, and a message written again
whenever it changes (its tokens arrive after its text): a message `id` is one response, counted once. A
`gemini` message's `tokens` are Gemini's usage metadata (`input` = promptTokenCount, cached included; `output`
= candidates; `thoughts` billed as output; `tool` = tool-use prompt tokens, billed as input).
"""

from __future__ import annotations

import time
from typing import Any

from supervisor.usage.records import Context, Found, Record, number, parse, timestamp


def read(lines: list[bytes], state: dict[str, Any]) -> Found:
    found = Found([])
    now = time.time()
    for line in lines:
        if b'"tokens"' not in line:
            continue
        entry = parse(line)
        if entry is None or entry.get("type") != "gemini" or not isinstance(entry.get("id"), str):
            continue
        tokens = entry.get("tokens")
        if not isinstance(tokens, dict):
            continue
        model = entry.get("model") if isinstance(entry.get("model"), str) else None
        prompt = number(tokens.get("input")) + number(tokens.get("tool"))
        cached = min(number(tokens.get("cached")), prompt)
        record = Record(key=f"gemini:{entry['id']}", ts=timestamp(entry.get("timestamp"), now), model=model,
                        input=prompt - cached, output=number(tokens.get("output")) + number(tokens.get("thoughts")),
                        cache_read=cached)
        found.records.append(record)
        found.context = Context(prompt, record.ts, model)
    return found
