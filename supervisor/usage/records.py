"""What a reader of a CLI's records yields: each model response's tokens, once, and the context in use."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Record:
    """One model response. `key` is the same every time the response is read (so a file read again, or a
    response written on several lines, is counted once); tokens are as billed: `input` without the cached part."""

    key: str
    ts: float
    model: str | None
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0


@dataclass(frozen=True)
class Context:
    """How much of the context window the newest turn used: `tokens` of `window` (None: the CLI did not say;
    the price table may know it from the model)."""

    tokens: int
    ts: float
    model: str | None
    window: int | None = None


@dataclass
class Found:
    records: list[Record]
    context: Context | None = None


# A reader: the file's new complete lines, and its state (JSON-able, kept between reads and in the store,
# empty when the file is read from its start) → what those lines hold.
Reader = Callable[[list[bytes], dict[str, Any]], Found]


MAX_COUNT = 10**10  # tokens one record may claim: far above any response, far below what SQLite's sums overflow at
MAX_TIME = 2.0**33  # seconds since the epoch (the year 2242): past it, a float of it is no time
SKEW = 300.0  # seconds a record may be dated after it was read: more is no time (it would count in days to come)


def parse(line: bytes) -> dict[str, Any] | None:
    """A JSON object on one line; None for anything else (not JSON, another JSON value, nested past Python's
    recursion limit: a file in an agent's folder is the agent's to write, so nothing in it may raise)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def number(value: Any) -> int:
    """A token count as written (absent, null, negative or not a finite number: 0; above MAX_COUNT: MAX_COUNT)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        value = int(min(value, MAX_COUNT))
    return min(value, MAX_COUNT) if value > 0 else 0


def timestamp(value: Any, now: float) -> float:
    """An ISO 8601 time (`2026-12-06T10:00:00.123Z`) or epoch seconds; `now` (the time it is read) when there is
    none, or when it is no time a record can have: not finite, before 1970, or after `now` (a record dated in the
    future would count toward every day's budget until then)."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if -MAX_TIME <= value <= MAX_TIME else None  # a 400-digit int: no float at all
    elif isinstance(value, str) and len(value) <= 64:
        with contextlib.suppress(ValueError, OverflowError, OSError):
            seconds = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= now + SKEW:
        return now
    return seconds
