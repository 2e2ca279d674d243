"""Claude Code's hook events, turned into states (SPEC §4: the CLI's own report decides).

`supervisor hook` is what each hook runs: it hands the event JSON (stdin) to the engine and exits at once.
When the engine is down, or too slow to answer, it spools the event to a file instead; the engine reads the
spool when it starts and whenever the spool changes, so no event is lost and the agent is never slowed or
broken by supervisor. An event carries the time its hook ran: one that arrives after a newer one says
nothing about the state any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.agents.session_ids import valid
from supervisor.core.model import State
from supervisor.hostside import hookevents
from supervisor.hostside.hookevents import CUT, EVENT_BUDGET, HOOK_INPUT, STRING_CUT, fit, unread

__all__ = ["CUT", "EVENT_BUDGET", "HOOK_INPUT", "STRING_CUT", "HookReading", "brief", "fit", "read_hook", "spool",
           "told_session", "tool_summary", "unjudged", "unread"]

WORKING_EVENTS = frozenset({"UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure", "PreCompact",
                            "PostCompact", "SubagentStop", "PermissionDenied"})
# Notification types that do not mean a human is needed; any other type (permission_prompt,
# elicitation_dialog, agent_needs_input, and types not known today) means waiting.
NOTIFICATIONS = {"idle_prompt": State.IDLE, "auth_success": None, "elicitation_complete": State.WORKING,
                 "elicitation_response": State.WORKING,
                 # Claude Code 2.1.332 continues by itself once a usage limit resets: a turn begins.
                 "quota_auto_resume_fired": State.WORKING}


@dataclass(frozen=True)
class HookReading:
    event: str
    state: State | None  # None: the event says nothing about the state (SessionEnd: the pane's exit decides)
    reason: str | None = None  # what a waiting agent waits for


def tool_summary(payload: dict[str, Any]) -> str:
    """`Bash(git push origin main)`: the tool and the gist of its input, as approval patterns read it."""
    tool = str(payload.get("tool_name") or "tool")
    data = payload.get("tool_input")
    if isinstance(data, dict):
        for key in ("command", "file_path", "path", "url", "pattern", "prompt"):
            if isinstance(data.get(key), str):
                return f"{tool}({data[key][:200]})"
    return tool


def read_hook(payload: dict[str, Any]) -> HookReading:
    event = str(payload.get("hook_event_name") or "")
    if event in WORKING_EVENTS:
        return HookReading(event, State.WORKING)
    if event == "PermissionRequest":
        return HookReading(event, State.WAITING, f"approval: {tool_summary(payload)}")
    if event == "Notification":
        kind = str(payload.get("notification_type") or "")
        if kind in NOTIFICATIONS:
            return HookReading(event, NOTIFICATIONS[kind])
        return HookReading(event, State.WAITING, str(payload.get("message") or kind or "needs attention"))
    if event == "SessionStart" and payload.get("source") == "compact":
        return HookReading(event, None)  # the context was compacted, maybe mid-turn: no word on the state
    if event in ("Stop", "StopFailure", "SessionStart"):  # StopFailure: the turn ended on an API error
        return HookReading(event, State.IDLE)
    return HookReading(event, None)


def told_session(hooked: bool, known: str | None, payload: dict[str, Any]) -> str | None:
    """The conversation id to keep from a hook event (None: keep what is known). `hooked`: the agent's CLI
    reports through hooks (any other agent's events are its own say-so, never its CLI's).

    Only SessionStart tells it, only a UUID is taken, and only the launch's first, or a new one the CLI itself
    began with `/clear` (source `clear`): every `claude` the agent runs in its worktree inherits the hooks, and
    a nested `claude -p` (source `startup` or `resume`, and then all its events) would otherwise put its own
    conversation in place of the agent's. A conversation the human switches to inside the CLI (`/resume`) is
    not followed: restart resumes the one the launch began with."""
    if not hooked or payload.get("hook_event_name") != "SessionStart":
        return None
    session = valid(payload.get("session_id"))
    if session is None or session == known:
        return None
    return session if known is None or payload.get("source") == "clear" else None


def brief(payload: dict[str, Any]) -> dict[str, Any]:
    """What is kept of an event in the store: names and a summary, not whole tool inputs or transcripts."""
    names = ("hook_event_name", "notification_type", "tool_name", "source", "reason")
    kept: dict[str, Any] = {k: payload[k] for k in names if k in payload}
    if "message" in payload:
        kept["message"] = str(payload["message"])[:300]
    if "tool_name" in payload:
        kept["tool"] = tool_summary(payload)
    return kept


def unjudged(event: dict[str, Any]) -> bool:
    """Whether a tool call cannot be checked against `approval.require`: its input was not read, or left out
    with nothing that names what it does."""
    if event.get(CUT) == "unread":
        return True
    return event.get(CUT) == "input" and tool_summary(event) == str(event.get("tool_name") or "tool")


def spool(directory: Path, payload: dict[str, Any], *, at: float, key: str) -> Path:
    """Keep an event the engine did not take in the agent's own spool folder (see `hookevents.spool`)."""
    return Path(hookevents.spool(str(directory), payload, at=at, key=key))
