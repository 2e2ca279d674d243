"""Durations in the demo agent's scripts and options, and the error a bad script gives."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ScriptError(Exception):
    """The script is not valid."""



def parse_duration(value: object) -> float:
    """``3s``, ``1.5s``, ``500ms``, ``2m``, ``1h30m`` or a plain number of seconds → seconds."""
    if isinstance(value, bool):
        raise ScriptError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        try:
            return float(text)
        except ValueError:
            raise ScriptError(f"not a duration: {value!r}") from None
    return sum(float(n) * _UNITS[u] for n, u in parts)

