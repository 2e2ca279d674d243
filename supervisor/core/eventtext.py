"""An event of the log as a sentence for people: `idle (was working)`, `alert 3 about done sent to tmux`,
`approved in the dashboard: Bash rm -rf build/`, never `channels=['tmux']` or `since=1796560288.66`.

Events are the engine's records (`kind` plus fields, see supervisor.engine.views.event_view); this is how
every listing meant for a person words them. Unknown kinds still read: their fields as `name value` pairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

_META = frozenset({"id", "ts", "agent", "kind", "screen", "task", "previous", "state"})
_BY = {"cli": "from the command line", "dashboard": "in the dashboard"}
# Kinds whose own word says what happened; the state it left the agent in follows when it differs.
_WORDS = {
    "launched": "launched", "dequeued": "started (its turn in the plan came)", "exited": "exited",
    "failed": "failed to start", "killed": "killed", "stopped": "stopped", "task_pending": "task held until the "
    "prompt shows", "task_undelivered": "task not delivered", "adopted": "adopted by the engine",
    "worktree_created": "worktree created", "restarting": "restarting", "restored": "restored",
}
_TIME_FIELDS = frozenset({"since", "until", "at", "reset", "resets_at"})


def describe(event: dict[str, Any]) -> str:
    """One line saying what the event records."""
    kind = str(event.get("kind", "event"))
    special = _SPECIAL.get(kind)
    if special is not None:
        return special(event)
    if "state" in event and "previous" in event:
        return _transition(kind, event)
    return _plain(kind, _rest(event))


def _transition(kind: str, event: dict[str, Any]) -> str:
    state, previous = str(event["state"]), str(event["previous"])
    if kind == "state":
        text = f"{state} (was {previous})" if previous != state else state
    else:
        text = _WORDS.get(kind, kind.replace("_", " "))
        if state != previous and state != kind:
            text += f", now {state}"
    reason = event.get("reason")
    if reason and str(reason) != text:
        text += f": {reason}"
    rest = _rest(event, skip={"reason"})
    return f"{text} ({_fields(rest)})" if rest else text


def _plain(kind: str, fields: dict[str, Any]) -> str:
    words = _WORDS.get(kind, kind.replace("_", " "))
    return f"{words}: {_fields(fields)}" if fields else words


def _rest(event: dict[str, Any], skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in _META and k not in skip and v not in (None, "", [], {})}


def _fields(fields: dict[str, Any]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {_value(key, value)}" for key, value in fields.items())


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and key in _TIME_FIELDS and value > 1e9:
        return clock(float(value))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_value(key, item) for item in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')} {_value(k, v)}" for k, v in value.items())
    return str(value)


def clock(at: float) -> str:
    """A moment as the local time of day (with the date when it is not today)."""
    local = time.localtime(at)
    today = time.localtime()
    same_day = local.tm_yday == today.tm_yday and local.tm_year == today.tm_year
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", local)


def _who(by: Any) -> str:
    by = str(by or "cli")
    if by.startswith("slack:"):
        return f"from Slack by {by.split(':', 1)[1]}"
    return _BY.get(by, f"by {by}")


def _answered(event: dict[str, Any]) -> str:
    text = f"{event['kind']} {_who(event.get('by'))}"
    if event.get("always"):
        text += " (always)"
    if event.get("request"):
        text += f": {event['request']}"
    if event.get("reason"):
        text += f" (reason: {event['reason']})"
    return text


def _trigger(event: dict[str, Any]) -> str:
    name = str(event.get("trigger", "?"))
    active = event.get("active", True)
    text = f"{name} began" if active else f"{name} ended"
    if event.get("summary"):
        text += f": {event['summary']}"
    if active and isinstance(event.get("since"), int | float):
        text += f" (since {clock(float(event['since']))})"
    return text


def _alert(event: dict[str, Any]) -> str:
    triggers = ", ".join(map(str, event.get("triggers") or [])) or "?"
    subject = f" about {event['subject']}" if event.get("subject") else ""
    if event.get("to"):
        where = f"for its parent {event['to']}"
    elif event.get("channels"):
        where = f"for {', '.join(map(str, event['channels']))}"
    else:
        where = "recorded (no channel configured)"
    status = str(event.get("status") or "")
    held = f", {status}" if status and status not in ("pending", "sent") else ""
    return f"alert {event.get('alert', '?')}{subject} ({triggers}) {where}{held}"


def _alert_sent(event: dict[str, Any]) -> str:
    attempts = event.get("attempts") or 1
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return f"alert {event.get('alert', '?')} delivered by {event.get('channel', '?')}{tries}"


def _alert_failed(event: dict[str, Any]) -> str:
    return f"alert {event.get('alert', '?')} not delivered by {event.get('channel', '?')}: {event.get('error', '?')}" \
           " (retrying)"


def _hook(event: dict[str, Any]) -> str:
    name = event.get("hook_event_name", "?")
    rest = _rest(event, skip={"hook_event_name"})
    return f"hook {name}" + (f" ({_fields(rest)})" if rest else "")


_SPECIAL: dict[str, Callable[[dict[str, Any]], str]] = {
    "approved": _answered, "denied": _answered, "trigger": _trigger, "alert": _alert, "alert_sent": _alert_sent,
    "alert_failed": _alert_failed, "hook": _hook,
    "approval_required": lambda e: f"asks: {e.get('request') or 'an approval'}",
    "conflicts": lambda e: str(e.get("summary") or "conflicts with another branch"),  # the radar words it
}
