"""Claude Code's session transcript (`$CLAUDE_CONFIG_DIR/projects/<cwd, dashed>/<session id>.jsonl`).

An assistant message is written once per content block (thinking, text, each tool_use), every line repeating
the message's `message.id`, the `requestId` and the `usage`: a (message id, request id) pair is one response,
counted once (with the largest figures any of its lines carries: an early line may hold a partial output count).
Subagents' messages (`isSidechain`) cost tokens but are not the main conversation's context. The context in use
is the newest main-line response's input + cache read + cache creation.

The transcript names the model as the API answered (`claude-opus-4-6`), never the window Claude Code gave it: that
is 1M when the model was chosen with the `[1m]` tag (`--model opus[1m]`, or `model` in its settings), else the
model's standard window (200k for Opus 4.6 and the Sonnet 4s, which reach 1M only with the tag). The caller puts
the tag's window in the reader's state (`window`); without it, the price table's window for the model stands.
"""

from __future__ import annotations

import re
import time
from typing import Any

from supervisor.usage.records import Context, Found, Record, number, parse, timestamp

SYNTHETIC = "<synthetic>"  # the model Claude Code names on messages it made itself (errors): no tokens
ONE_M = 1_000_000
_TAG = re.compile(r"\[1m\]", re.IGNORECASE)


def window(chosen: str | None) -> int | None:
    """The context window Claude Code gives a session whose model was chosen as `chosen` (its `--model`, or its
    settings' `model`): 1M with the `[1m]` tag (Claude Code 2.1.332 takes 1M for any model named with it), else
    None (the model's standard window, from the price table)."""
    return ONE_M if chosen and _TAG.search(chosen) else None


def read(lines: list[bytes], state: dict[str, Any]) -> Found:
    found = Found([])
    now = time.time()
    for line in lines:
        if b'"usage"' not in line or b'"assistant"' not in line:
            continue  # most lines (user turns, tool results, summaries) cost nothing to skip
        entry = parse(line)
        if entry is None:
            continue
        message = entry.get("message") if entry.get("type") == "assistant" else None
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
            tagged = state.get("window")
            found.context = Context(record.input + record.cache_read + record.cache_write, record.ts, model,
                                    tagged if isinstance(tagged, int) and tagged > 0 else None)
    return found
