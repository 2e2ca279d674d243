"""What a reader of a CLI's records yields: each model response's tokens, once, and the context in use."""

from __future__ import annotations

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


def number(value: Any) -> int:
    """A token count as written (absent, null or not a number: 0)."""
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


def timestamp(value: Any, default: float) -> float:
    """An ISO 8601 time (`2026-12-06T10:00:00.123Z`) or epoch seconds; `default` when there is none."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return default
