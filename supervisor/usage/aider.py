"""aider's analytics log (`--analytics-log FILE`, set by the profile through AIDER_ANALYTICS_LOG to the agent's
own folder): a JSON line per event; a `message_send` event is one exchange with the model, with its
`prompt_tokens` and `completion_tokens`. aider names the model only when its own catalog knows it (else
`provider/REDACTED`): then the model given on its command line (`--model`, kept in the state) stands in."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from supervisor.usage.records import Context, Found, Record, number, parse, timestamp


def read(lines: list[bytes], state: dict[str, Any]) -> Found:
    found = Found([])
    now = time.time()
    for line in lines:
        if b'"message_send"' not in line:
            continue
        entry = parse(line)
        if entry is None:
            continue
        properties = entry.get("properties")
        if entry.get("event") != "message_send" or not isinstance(properties, dict):
            continue
        named = properties.get("main_model")
        model = named if isinstance(named, str) and named and not named.endswith("REDACTED") and named != "None" \
            else state.get("model")
        prompt = number(properties.get("prompt_tokens"))
        record = Record(key=f"aider:{hashlib.sha1(line.strip()).hexdigest()[:16]}",
                        ts=timestamp(entry.get("time"), now), model=model if isinstance(model, str) else None,
                        input=prompt, output=number(properties.get("completion_tokens")))
        found.records.append(record)
        found.context = Context(prompt, record.ts, record.model)
    return found
