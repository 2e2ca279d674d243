"""Claude Code's hook payloads, as the real CLI sent them (tests/fixtures/claude/hooks), read into states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supervisor.agents.claude import HOOK_EVENTS
from supervisor.core.model import State
from supervisor.engine.hooks import read_hook

RECORDED = Path(__file__).parent / "fixtures" / "claude" / "hooks"


def recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDED / f"{name}.json").read_text()))


@pytest.mark.parametrize(("name", "state"), [
    ("SessionStart-startup", State.IDLE),
    ("UserPromptSubmit", State.WORKING),
    ("PreToolUse", State.WORKING),
    ("PostToolUse", State.WORKING),
    ("PostToolUseFailure", State.WORKING),
    ("PermissionRequest", State.WAITING),
    ("PermissionDenied", State.WORKING),  # auto mode blocked a call: the turn goes on
    ("Notification-permission_prompt", State.WAITING),
    ("Notification-agent_needs_input", State.WAITING),
    ("Notification-idle_prompt", State.IDLE),
    ("Stop", State.IDLE),
    ("StopFailure", State.IDLE),  # the turn ended on an API error, with no Stop
    ("SessionEnd-other", None),  # the pane's exit decides
    ("SessionEnd-prompt_input_exit", None),
])
def test_each_recorded_event_reads_as_the_state_it_means(name: str, state: State | None) -> None:
    assert read_hook(recorded(name)).state == state


def test_every_recorded_event_is_one_supervisor_installs() -> None:
    names = {json.loads(path.read_text())["hook_event_name"] for path in RECORDED.glob("*.json")}
    assert names <= set(HOOK_EVENTS)


def test_waiting_reasons_say_what_is_waited_for() -> None:
    request = read_hook(recorded("PermissionRequest"))
    assert request.reason is not None and request.reason.startswith("approval: ")
    needs = recorded("Notification-agent_needs_input")
    assert read_hook(needs).reason == needs["message"]


def test_a_session_start_after_compaction_says_nothing_of_the_state() -> None:
    """Claude Code compacts its context mid-turn too; that SessionStart is no end of a turn."""
    compacted = {**recorded("SessionStart-startup"), "source": "compact"}
    assert read_hook(compacted).state is None
    assert read_hook({**compacted, "source": "resume"}).state == State.IDLE
