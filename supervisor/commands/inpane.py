"""What runs inside an agent's pane: `msg` and `report` (the agent's own commands), and the internal
`hook` and `guard` (run by its CLI's hooks and by the pre-commit hook of its worktree)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from supervisor.commands.common import Add, call
from supervisor.errors import SupervisorError
from supervisor.hostside.pane_options import add_msg_options, add_report_options


def register_msg(add: Add) -> None:
    p = add("msg", cmd_msg, "from inside a pane: leave a message for another agent of the same tree")
    add_msg_options(p)


def register_report(add: Add) -> None:
    p = add("report", cmd_report, "from inside a pane: say which agents this one waits for (deadlock detection)")
    add_report_options(p)


def cmd_msg(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    sent = call("msg", {"to": args.to, "text": text})
    print(f"to {sent['to']}: saved in {sent['file']}; delivered {sent['delivered']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    agent = call("report", {"waiting_for": args.waiting_for})
    waits = ", ".join(args.waiting_for) or "nobody"
    print(f"{agent['name']}: waiting for {waits}")
    return 0


def cmd_hook(args: argparse.Namespace) -> int:
    """Run by agent-CLI hooks: hand the event on stdin to the engine and return at once. It never fails
    the agent: with no engine running, the event is spooled for the next engine to read."""
    socket_path = os.environ.get("SUPERVISOR_SOCKET")
    agent = os.environ.get("SUPERVISOR_AGENT")
    if not socket_path or not agent:
        return 0  # not an agent supervisor started
    from supervisor.engine.hooks import HOOK_INPUT, fit, unread

    raw = sys.stdin.buffer.read(HOOK_INPUT + 1)  # a prompt can be megabytes (a pasted task)
    try:
        event = unread(raw) if len(raw) > HOOK_INPUT else json.loads(raw or b"{}")
    except ValueError:
        event = {"hook_event_name": "unparsable", "raw": raw[:200].decode(errors="replace")}
    if not isinstance(event, dict):
        event = {"hook_event_name": "unparsable"}
    if isinstance(event.get("prompt"), str):
        event["prompt"] = event["prompt"][:4096]  # the engine keeps none of it: the CLI's transcript has it
    event = fit(event)  # whatever its size, it reaches the engine (or the spool)
    from supervisor.client import EngineGone, EngineNotRunning, EngineTimeout, request_at

    # A permission request is held until a human answers (the engine lets go after approval.timeout).
    held = event.get("hook_event_name") == "PermissionRequest"
    at = time.time()
    key = f"{at:.6f}-{os.getpid()}"  # the event's id, in the request and in its spooled copy alike
    try:
        result = request_at(socket_path, "hook", {"event": event, "at": at, "key": key},
                            timeout=None if held else 5)
        if isinstance(result, dict) and result.get("output"):
            print(json.dumps(result["output"]))
    except (SupervisorError, OSError) as exc:
        if isinstance(exc, SupervisorError) and not isinstance(exc, EngineNotRunning | EngineGone | EngineTimeout):
            return 0  # the engine answered (e.g. refused a caller that is no agent): nothing to keep
        from supervisor.engine.hooks import spool
        from supervisor.engine.spools import spool_of

        folder = spool_of(socket_path)  # the agent's own: it says whose the event is
        if folder is not None:
            with contextlib.suppress(OSError):
                spool(folder, event, at=at, key=key)
    return 0


def cmd_guard(args: argparse.Namespace) -> int:
    """Run by the pre-commit hook installed in each agent worktree: refuse a commit outside the contract."""
    from supervisor.git.guard import main as guard_main

    return guard_main(Path.cwd())
