"""Codex's rollout files (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`).

Its `token_count` events carry the session's running total (`total_token_usage`), the newest response's usage
(`last_token_usage`) and the window (`model_context_window`); an event may repeat without a new response (rate
limit updates), so a response is the step from one total to the next, keyed by the total it reached. OpenAI
counts cached input (and, from Codex 0.171, `cache_write_input_tokens`) inside `input_tokens` and reasoning inside
`output_tokens`. The model comes from the `turn_context` (or `session_meta`) before the events. Side requests (the
session's title) are not in the rollout, so not counted.
"""

from __future__ import annotations

import time
from typing import Any

from supervisor.usage.records import Context, Found, Record, number, parse, timestamp

_FIELDS = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens")


def read(lines: list[bytes], state: dict[str, Any]) -> Found:
    found = Found([])
    now = time.time()
    for line in lines:
        if not any(word in line for word in (b'"token_count"', b'"turn_context"', b'"session_meta"')):
            continue
        entry = parse(line)
        payload = entry.get("payload") if entry is not None else None
        if entry is None or not isinstance(payload, dict):
            continue
        kind = entry.get("type")
        if kind in ("session_meta", "turn_context"):
            if isinstance(payload.get("model"), str):
                state["model"] = payload["model"]
            if kind == "session_meta" and isinstance(payload.get("id"), str):
                state["session"] = payload["id"]
            continue
        info = payload.get("info") if payload.get("type") == "token_count" else None
        total = info.get("total_token_usage") if isinstance(info, dict) else None
        if not isinstance(total, dict):
            continue
        assert isinstance(info, dict)
        now_total = {name: number(total.get(name)) for name in _FIELDS}
        before = state.get("total") or {}
        step = {name: now_total[name] - number(before.get(name)) for name in _FIELDS}
        if any(value < 0 for value in step.values()):
            step = now_total  # the running total started again (a new session in this file)
        if not any(step.values()):
            continue  # the same total again: no new response
        state["total"] = now_total
        ts = timestamp(entry.get("timestamp"), now)
        model = state.get("model")
        reached = number(total.get("total_tokens")) or sum(now_total.values())
        found.records.append(Record(
            key=f"codex:{state.get('session', '')}:{reached}:{now_total['output_tokens']}", ts=ts, model=model,
            input=max(step["input_tokens"] - step["cached_input_tokens"] - step["cache_write_input_tokens"], 0),
            output=step["output_tokens"], cache_read=step["cached_input_tokens"],
            cache_write=step["cache_write_input_tokens"]))
        last = info.get("last_token_usage")
        if isinstance(last, dict):
            window = number(info.get("model_context_window")) or None
            found.context = Context(number(last.get("input_tokens")), ts, model, window)
    return found
