"""Durations as users write them: `90s`, `10m`, `1h30m`, `1d`; plain numbers are seconds."""

from __future__ import annotations

import math
import re

from supervisor.hostside.texts import format_duration  # the same words on hosts

__all__ = ["MAX_DAYS", "MAX_SECONDS", "format_duration", "parse_duration"]

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")

MAX_DAYS = 36500
MAX_SECONDS = float(MAX_DAYS * 86400)
"""100 years: longer than any timeout, and short enough for every timed wait (`threading.TIMEOUT_MAX`)."""


def parse_duration(text: str | int | float) -> float:
    """Seconds in `text`, at most MAX_SECONDS; raises ValueError with a readable message when it is not a
    duration or is longer than that."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r} (write e.g. 90s, 10m, 1h30m)")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative: {text}")
        return _bounded(text, text)
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return _bounded(float(value), text)
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        raise ValueError(f"not a duration: {text!r} (write e.g. 90s, 10m, 1h30m)")
    days, hours, minutes, seconds = match.groups()
    try:  # Python ints have no limit, but turning thousands of digits into one is refused (ValueError)
        whole = int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60
    except ValueError:
        raise _too_long(text) from None
    if whole > MAX_SECONDS:  # before the float sum, which overflows for ints past ~1e308
        raise _too_long(text)
    return _bounded(whole + float(seconds or 0), text)


def _bounded(seconds: float, text: object) -> float:
    if math.isnan(seconds):
        raise ValueError(f"not a duration: {text!r} (write e.g. 90s, 10m, 1h30m)")
    if seconds > MAX_SECONDS:  # inf too: float("9" * 400)
        raise _too_long(text)
    return float(seconds)


def _too_long(text: object) -> ValueError:
    shown = repr(text) if len(repr(text)) <= 40 else f"{repr(text)[:20]}…{repr(text)[-8:]}"
    return ValueError(f"{shown} is too long to be a duration (at most {MAX_DAYS}d)")
