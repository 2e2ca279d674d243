"""A CLI's usage or rate limit message, read: which kind of limit, and when it lifts.

Each CLI words its reset its own way (recorded from Claude Code 2.1.332, Codex 0.171.0 and Gemini CLI 0.61.0 against
local stand-ins of their APIs: tests/fixtures/<cli>/screens/*limit*):
- Claude Code: `You've hit your 5-hour limit · resets 6:08pm (Europe/Paris)`, `… resets Dec 9, 1:39am
  (Europe/Paris)`, its footer `Usage limit reached · limit resets 7:05pm`; a limit of the API servers,
  `API Error: Server is temporarily limiting requests (not your usage limit) · …`, gives no time;
- Codex: `You’ve hit your usage limit. Upgrade to Pro (…) or try again at 7:07 PM.`, or `… at Dec 9th, 2026 1:40 AM.`
  (wrapped over two rows: read a line with the rows after it);
- Gemini CLI: `Usage limit reached for all Pro models.` and, on the next row, `Access resets at 7:08 PM GMT+1.`;
  once stopped, `You exceeded your current quota. Please retry in 3600s.`
A clock time is shown to the minute and cut, not rounded: the limit lifts within the minute after the one shown.
A time without a zone is in the local zone of the machine the CLI runs on (the user's), with that zone's offset
on the day of the reset (not the day it was seen: a reset across a change of summer time).
A time of day without a date is always ahead when printed (Codex prints a date for a reset on another day, Claude
Code for one more than a day out, its 5-hour limit within 5 hours): one found up to STALE_WINDOW in the past is an
old line read again, whose limit has lifted (its reset is in the past), not tomorrow's.

A CLI that retries within its turn (Claude Code's `… · retrying in 3s · attempt 1/10`, aider's `Retrying in 0.2
seconds...`, Codex's `retrying 1/5 in 2.4s`) is not limited: `retrying` tells it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTE_CUT = 60.0  # a reset shown to the minute lifts at most this long after the minute shown
CONTEXT_ROWS = 4  # a limit line and the rows after it that may word its reset
STALE_WINDOW = 6 * 3600.0  # a time of day this far in the past is an old line's, not tomorrow's
RETRY_WITHIN = 60.0  # a delay this short, seen while the CLI still works, is its own retry within the turn

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CLOCK = re.compile(
    r"(?:\breset|\bresets|\btry again|\bcontinue automatically|\bContinuing automatically)(?: at)?\s+"
    r"(?:(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+"
    r"(?:(?P<year>\d{4}),?\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?(?::(?P<second>\d{2}))?\s*(?P<half>[ap]\.?m\b\.?)?"
    r"(?:\s*\((?P<zone>[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)*)\)"
    r"|\s+(?P<offset>(?:GMT|UTC)(?:[+-]\d{1,2}(?::?\d{2})?)?)\b)?",
    re.IGNORECASE)
_UNIT = r"(?:ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b"
_DELAY = re.compile(
    rf"\b(?:retry|try again|resets?)\s+(?:in|after)\s+(?P<delay>\d+(?:\.\d+)?\s*{_UNIT}"
    rf"(?:,?\s*(?:and\s+)?\d+(?:\.\d+)?\s*{_UNIT})*)", re.IGNORECASE)
_DELAY_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)
# Not `Rate limit reached for gpt-… on tokens per min (TPM)`: an API's rate limit, no plan's usage limit.
_USAGE = re.compile(r"(?<!not your )usage limit|hit your (?:[\w-]+ )?limit|\bquota\b|(?<!rate )limit reached for",
                    re.IGNORECASE)
_RETRYING = re.compile(r"\bretrying\b|\battempt \d+\s*/\s*\d+", re.IGNORECASE)
_OFFSET = re.compile(r"(?:GMT|UTC)(?:(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?)?", re.IGNORECASE)


@dataclass(frozen=True)
class LimitReading:
    """A limit message read: `kind` ("usage limit" or "rate limit"), and the reset when it gives one."""

    kind: str
    reset_at: float | None = None  # epoch seconds
    precise: bool = False  # the reset is known to the second (a delay), not only to the minute

    @property
    def lifts_at(self) -> float | None:
        """When the limit has surely lifted: the reset, or the end of the minute a clock time names."""
        if self.reset_at is None:
            return None
        return self.reset_at + (1.0 if self.precise else MINUTE_CUT)


def read_limit(text: str, seen_at: float | None = None, zone: tzinfo | None = None) -> LimitReading:
    """The limit `text` tells of (a limit line and the rows after it), seen at `seen_at` (now by default); a
    time without a zone is in `zone` (the local zone by default)."""
    seen = time.time() if seen_at is None else seen_at
    kind = "usage limit" if _USAGE.search(text) else "rate limit"
    clock = _CLOCK.search(text)
    while clock is not None and not (clock.group("half") or clock.group("minute")):
        clock = _CLOCK.search(text, clock.end())  # `resets 3 times`: no time of day
    if clock is not None:
        reset = _clock_time(clock, seen, zone)
        if reset is not None:
            return LimitReading(kind, reset, precise=clock.group("second") is not None)
    delay = _DELAY.search(text)
    if delay is not None:
        return LimitReading(kind, seen + _seconds(delay.group("delay")), precise=True)
    return LimitReading(kind)


def retrying(text: str) -> bool:
    """Whether a limit line (with the rows after it) tells of the CLI retrying by itself within its turn: a passing
    limit, not one that holds the agent."""
    return _RETRYING.search(text) is not None


def around(rows: list[str], index: int) -> str:
    """The limit line at `index` of `rows` with the rows after it, as one text (a dialog's borders dropped)."""
    return " ".join(row.strip(" │") for row in rows[index:index + CONTEXT_ROWS])


def read_limits(texts: list[str], seen_at: float | None = None, zone: tzinfo | None = None
                ) -> tuple[int, LimitReading]:
    """Of several limit texts printed together (a message and its footer), the last that gives a reset, else
    the last: its index and its reading."""
    readings = [read_limit(text, seen_at, zone) for text in texts]
    return next(((i, r) for i, r in reversed(list(enumerate(readings))) if r.reset_at is not None),
                (len(readings) - 1, readings[-1]))


def describe(reading: LimitReading, now: float | None = None) -> str:
    """What `ls` and alerts say a limited agent waits for: `usage limit: resets at 18:08`, in the local zone."""
    if reading.reset_at is None:
        return f"{reading.kind}: no reset time given"
    when = time.localtime(reading.reset_at)
    today = time.localtime(time.time() if now is None else now)
    same_day = (when.tm_year, when.tm_yday) == (today.tm_year, today.tm_yday)
    return f"{reading.kind}: resets at {time.strftime('%H:%M' if same_day else '%a %d %b %H:%M', when)}"


def _clock_time(match: re.Match[str], seen: float, zone: tzinfo | None) -> float | None:
    tz = _zone(match.group("zone"), match.group("offset")) or zone
    # Without a zone: a naive local time, whose timestamp() applies the local offset of its own date (an aware
    # astimezone() would keep the offset of the day it was seen across a change of summer time).
    base = datetime.fromtimestamp(seen, tz) if tz is not None else datetime.fromtimestamp(seen)
    hour, minute = int(match.group("hour")), int(match.group("minute") or 0)
    second = int(match.group("second") or 0)
    half = (match.group("half") or "").lower()
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half.startswith("p") else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    try:
        if match.group("month"):
            month = _MONTHS.index(match.group("month")[:3].lower()) + 1
            year = int(match.group("year") or base.year)
            when = base.replace(year=year, month=month, day=int(match.group("day")), hour=hour, minute=minute,
                                second=second, microsecond=0)
            if not match.group("year") and when < base - timedelta(days=1):
                when = when.replace(year=year + 1)  # December's message about a reset in January
        else:
            when = base.replace(hour=hour, minute=minute, second=second, microsecond=0)
            if when.timestamp() + MINUTE_CUT + STALE_WINDOW < seen:
                when += timedelta(days=1)  # a time of day long past today: tomorrow's (else an old line's)
    except ValueError:
        return None
    return when.timestamp()


def _zone(name: str | None, offset: str | None) -> tzinfo | None:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    if offset:
        match = _OFFSET.fullmatch(offset)
        if match is None:
            return None
        if not match.group("sign"):
            return UTC
        sign = 1 if match.group("sign") == "+" else -1
        return timezone(sign * timedelta(hours=int(match.group("hours")), minutes=int(match.group("minutes") or 0)))
    return None


def _seconds(text: str) -> float:
    total = 0.0
    for number, unit in _DELAY_PART.findall(text):
        unit = unit.lower()
        scale = 0.001 if unit == "ms" else 86400.0 if unit.startswith("d") else 3600.0 if unit.startswith("h") \
            else 60.0 if unit.startswith("m") else 1.0
        total += float(number) * scale
    return total
