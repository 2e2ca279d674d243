"""The demo agent's usage limit (its `limit: DURATION` step): the words each CLI it looks like prints.

The step ends the turn on a usage limit that resets DURATION from now. Until then, every prompt is answered with
the same limit (no turn of the script is used, as the real CLIs do); after it, prompts run as usual, so a
`continue` typed after the reset goes on with the next turn. With `--claude`, the turn ends with Claude Code's
StopFailure hook (`error: rate_limit`, the limit's words as `last_assistant_message`).

- `--look claude`: Claude Code 2.1.332's words for a subscription's limit, its reset cut to the minute, in the
  zone of $TZ (else the machine's): `⎿  You've hit your 5-hour limit · resets 6:08pm (Europe/Paris)`. It does not
  draw the footer with which the real CLI continues by itself (`Continuing automatically at …`), as after Esc.
- `--look gemini`: Gemini CLI 0.61.0's, `Usage limit reached for all Pro models.` / `Access resets at 7:08 PM`.
- the demo's own look: `Usage limit reached · resets in 5s`, its reset to the second.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def limit_message(look: str, reset_at: float) -> str:
    """The lines the CLI of `look` (claude, gemini, demo) prints for a usage limit that resets at `reset_at`."""
    when = time.localtime(reset_at)
    if look == "claude":
        hour = when.tm_hour % 12 or 12
        minute = f":{when.tm_min:02d}" if when.tm_min else ""
        half = "am" if when.tm_hour < 12 else "pm"
        zone = _zone_name()
        return f"  ⎿ \u00a0You've hit your 5-hour limit · resets {hour}{minute}{half}" + (f" ({zone})" if zone else "")
    if look == "gemini":
        hour = when.tm_hour % 12 or 12
        half = "AM" if when.tm_hour < 12 else "PM"
        return f"Usage limit reached for all Pro models.\nAccess resets at {hour}:{when.tm_min:02d} {half}."
    return f"Usage limit reached · resets in {max(0, math.ceil(reset_at - time.time()))}s"


def _zone_name() -> str | None:
    """The IANA name of the local time zone, as Claude Code prints it: $TZ, else /etc/localtime's target."""
    named = os.environ.get("TZ", "").lstrip(":")
    if named:
        try:
            ZoneInfo(named)
            return named
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return None
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else None
